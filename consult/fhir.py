"""A consultation as a FHIR R4 Bundle (type "collection") of plain JSON-ready dicts.

Built from the reviewed view (`consult.selectors.case`): rejected mentions are left out, corrections applied. The
consultation is anonymous, so the Patient carries only an identifier that links back to it. Conditions
take their verificationStatus from the assertion; symptoms are Observations whose value says whether the
patient has them; drugs are MedicationStatements; follow-up questions and answers a QuestionnaireResponse.
Mentions asserted for a family member are not the patient's and are not exported as the patient's.
Codes are those of the reviewed record: recomputed for a corrected span or type (see consult.services.review),
never the model's codes of the span it had found. The clinician's note on the case is a ClinicalImpression (its
`summary`, and a `note` naming the author). An urgency a clinician set is the Encounter's priority (the
interview's level is then named in a ClinicalImpression with the clinician's reason). The patient's sex is
Patient.gender and their age an Observation (LOINC 30525-0): the clinician's values where set, else the
interview's answers.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from django.utils import timezone

from consult.models import Consultation, Urgency
from consult.selectors.case import CaseView, RecordEntry

CONSULTATION_SYSTEM = "urn:consult:consultation"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# Known code systems of the terminology coding step, mapped to their canonical FHIR URIs.
CODE_SYSTEMS = {
    "snomed": "http://snomed.info/sct", "snomedct": "http://snomed.info/sct", "sct": "http://snomed.info/sct",
    "icd10": "http://hl7.org/fhir/sid/icd-10", "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "atc": "http://www.whocc.no/atc", "umls": "http://www.nlm.nih.gov/research/umls",
    "loinc": "http://loinc.org", "mesh": "http://id.nlm.nih.gov/mesh",
    "hpo": "http://human-phenotype-ontology.org", "drugbank": "http://www.drugbank.ca",
}
# assertion -> (verificationStatus, clinicalStatus or None). clinicalStatus must be absent when refuted.
CONDITION_STATUS = {
    "present": ("confirmed", "active"),
    "possible": ("provisional", "active"),
    "historical": ("confirmed", "resolved"),
    "absent": ("refuted", None),
    "hypothetical": ("unconfirmed", None),
    None: ("unconfirmed", "active"),  # patient-reported, assertion not assessed
}
MEDICATION_STATUS = {"present": "active", "historical": "completed", "absent": "not-taken", "possible": "unknown",
                     "hypothetical": "intended", None: "unknown"}
ENCOUNTER_PRIORITY = {
    Urgency.EMERGENCY_AMBULANCE: ("EM", "emergency"), Urgency.EMERGENCY: ("EM", "emergency"),
    Urgency.CONSULTATION_24: ("UR", "urgent"), Urgency.CONSULTATION: ("R", "routine"),
    Urgency.SELF_CARE: ("EL", "elective"),
}


def _id(consultation: Consultation, *parts: object) -> str:
    # Stable ids: exporting the same consultation twice gives the same resource ids.
    return str(uuid.uuid5(consultation.id, "/".join(str(p) for p in parts)))


def _ref(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource['id']}"}


def _concept(entry: RecordEntry) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": entry.text}
    codings = []
    for code in entry.codes:
        system = CODE_SYSTEMS.get(re.sub(r"[\s_-]", "", code["system"].lower()), code["system"])
        coding = {"code": code["code"]}
        if code.get("name"):
            coding["display"] = code["name"]
        if ":" in system:  # FHIR wants a URI; an unknown bare name is left out rather than guessed
            coding["system"] = system
        codings.append(coding)
    if codings:
        concept["coding"] = codings
    return concept


def _note(entry: RecordEntry) -> list[dict[str, str]]:
    parts = [f"assertion: {entry.assertion}"] if entry.assertion else []
    parts += [f"{key.replace('_', ' ')}: {value}" for key, value in sorted(entry.attributes.items())]
    parts.append("reviewed by a clinician" if entry.reviewed else "not yet reviewed by a clinician")
    if entry.proposed:
        parts.append("codes recomputed after a correction, not yet confirmed by a clinician")
    return [{"text": "; ".join(parts)}]


def _instant(value) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _patient(*, case: CaseView) -> dict[str, Any]:
    consultation = case.consultation
    patient = {
        "resourceType": "Patient",
        "id": _id(consultation, "Patient"),
        "identifier": [{"system": CONSULTATION_SYSTEM, "value": str(consultation.id)}],
    }
    details = case.patient
    if details is not None and details.sex in {"female", "male"}:
        patient["gender"] = details.sex
    return patient


def _encounter(*, case: CaseView, patient: dict[str, Any]) -> dict[str, Any]:
    consultation = case.consultation
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": _id(consultation, "Encounter"),
        "identifier": [{"system": CONSULTATION_SYSTEM, "value": str(consultation.id)}],
        "status": "finished" if consultation.status == Consultation.Status.CLOSED else "in-progress",
        "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
        "subject": _ref(patient),
        "period": {"start": _instant(consultation.created_at)},
    }
    if consultation.status == Consultation.Status.CLOSED:
        encounter["period"]["end"] = _instant(consultation.updated_at)
    override = case.clinician_urgency
    urgency = override.urgency if override is not None else consultation.urgency
    if urgency in ENCOUNTER_PRIORITY:
        code, display = ENCOUNTER_PRIORITY[urgency]
        encounter["priority"] = {
            "coding": [{"system": ACT_PRIORITY, "code": code, "display": display}],
            "text": Urgency(urgency).label + (" (set by a clinician)" if override is not None else ""),
        }
    return encounter


def _age_observations(*, case: CaseView, patient: dict[str, Any], encounter: dict[str, Any]) -> list[dict[str, Any]]:
    details = case.patient
    if details is None or details.age is None:
        return []
    return [{
        "resourceType": "Observation",
        "id": _id(case.consultation, "Observation", "age"),
        "status": "final" if details.age_source == "clinician" else "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": "30525-0", "display": "Age"}], "text": "Age"},
        "subject": _ref(patient),
        "encounter": _ref(encounter),
        "valueQuantity": {"value": details.age, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"},
        "note": [{"text": "set by a clinician" if details.age_source == "clinician" else "the patient's answer"}],
    }]


def _patients_own(entries: list[RecordEntry]) -> list[tuple[int, RecordEntry]]:
    # (index in the section, entry): the index keeps resource ids stable whatever is left out.
    return [(index, entry) for index, entry in enumerate(entries) if entry.assertion != "family"]


def _conditions(*, case: CaseView, patient: dict[str, Any], encounter: dict[str, Any]) -> list[dict[str, Any]]:
    conditions = []
    for index, entry in _patients_own(case.record["diseases"]):
        verification, clinical = CONDITION_STATUS.get(entry.assertion, CONDITION_STATUS[None])
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "id": _id(case.consultation, "Condition", index, entry.text),
            "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": verification}]},
            "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
            "code": _concept(entry),
            "subject": _ref(patient),
            "encounter": _ref(encounter),
            "note": _note(entry),
        }
        if clinical:
            condition["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL, "code": clinical}]}
        conditions.append(condition)
    return conditions


def _symptom_observations(*, case: CaseView, patient: dict[str, Any], encounter: dict[str, Any],
                          reviewed: bool) -> list[dict[str, Any]]:
    return [{
        "resourceType": "Observation",
        "id": _id(case.consultation, "Observation", index, entry.text),
        "status": "final" if reviewed else "preliminary",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}],
        "code": _concept(entry),
        "subject": _ref(patient),
        "encounter": _ref(encounter),
        # The patient reported it: present unless the assertion says otherwise.
        "valueBoolean": entry.assertion not in {"absent", "hypothetical"},
        "note": _note(entry),
    } for index, entry in _patients_own(case.record["symptoms"])]


def _medication_statements(*, case: CaseView, patient: dict[str, Any],
                           encounter: dict[str, Any]) -> list[dict[str, Any]]:
    return [{
        "resourceType": "MedicationStatement",
        "id": _id(case.consultation, "MedicationStatement", index, entry.text),
        "status": MEDICATION_STATUS.get(entry.assertion, "unknown"),
        "medicationCodeableConcept": _concept(entry),
        "subject": _ref(patient),
        "context": _ref(encounter),
        "informationSource": _ref(patient),
        "note": _note(entry),
    } for index, entry in _patients_own(case.record["drugs"])]


def _questionnaire_response(*, case: CaseView, patient: dict[str, Any], encounter: dict[str, Any]) -> dict[str, Any]:
    consultation = case.consultation
    items = []
    for question in case.questions:
        item: dict[str, Any] = {"linkId": question.slot, "text": question.text}
        if question.answer_text:
            item["answer"] = [{"valueString": question.answer_text}]
        items.append(item)
    questionnaire_response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": _id(consultation, "QuestionnaireResponse"),
        "status": "completed" if consultation.status == Consultation.Status.CLOSED else "in-progress",
        "subject": _ref(patient),
        "encounter": _ref(encounter),
        "authored": _instant(consultation.updated_at),
        "source": _ref(patient),
    }
    if items:
        questionnaire_response["item"] = items
    return questionnaire_response


def _clinical_impressions(*, case: CaseView, patient: dict[str, Any], encounter: dict[str, Any],
                          reviewed: bool) -> list[dict[str, Any]]:
    """The clinician's note on the case, and the urgency a clinician set with their reason."""
    consultation = case.consultation
    impressions = []
    if case.note is not None:
        annotation: dict[str, Any] = {"text": case.note.text, "time": _instant(case.note.updated_at)}
        if case.note.updated_by_name:
            annotation["authorString"] = case.note.updated_by_name
        impressions.append({
            "resourceType": "ClinicalImpression",
            "id": _id(consultation, "ClinicalImpression", "clinician-note"),
            "status": "completed" if reviewed else "in-progress",
            "description": "Clinician's note on the consultation",
            "subject": _ref(patient),
            "encounter": _ref(encounter),
            "date": _instant(case.note.updated_at),
            "summary": case.note.text,
            "note": [annotation],
        })
    override = case.clinician_urgency
    if override is not None:
        interview = Urgency(consultation.urgency).label if consultation.urgency else "not assessed"
        annotation = {"text": override.reason, "time": _instant(override.set_at)}
        if override.set_by_name:
            annotation["authorString"] = override.set_by_name
        impressions.append({
            "resourceType": "ClinicalImpression",
            "id": _id(consultation, "ClinicalImpression", "clinician-urgency"),
            "status": "completed",
            "description": f"Urgency set by a clinician (the interview's level: {interview})",
            "subject": _ref(patient),
            "encounter": _ref(encounter),
            "date": _instant(override.set_at),
            "summary": f"{Urgency(override.urgency).label}: {override.reason}",
            "note": [annotation],
        })
    return impressions


def consultation_fhir_bundle(*, case: CaseView) -> dict[str, Any]:
    consultation = case.consultation
    reviewed = getattr(consultation, "review", None) is not None
    patient = _patient(case=case)
    encounter = _encounter(case=case, patient=patient)
    parts = {"case": case, "patient": patient, "encounter": encounter}
    resources: list[dict[str, Any]] = [
        patient,
        encounter,
        *_age_observations(**parts),
        *_conditions(**parts),
        *_symptom_observations(**parts, reviewed=reviewed),
        *_medication_statements(**parts),
        _questionnaire_response(**parts),
        *_clinical_impressions(**parts, reviewed=reviewed),
    ]
    return {
        "resourceType": "Bundle",
        "id": _id(consultation, "Bundle"),
        "type": "collection",
        "timestamp": _instant(timezone.now()),
        "entry": [{"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource} for resource in resources],
    }
