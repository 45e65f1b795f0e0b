"""Review actions, their audit trail, the reviewed record and summary, and the FHIR export."""
from __future__ import annotations

import pytest

from consult import fhir
from consult.models import AuditEvent, ConsultationReview, Entity, EntityReview, Message
from consult.triage import knowledge_load
from consult.selectors.annotations import Annotation, messages_with_annotations, text_segments
from consult.selectors.audit import audit_events_get
from consult.selectors.case import CaseFilters, case_get, case_serialize, consultation_list
from consult.services.consultations import consultation_create
from consult.services.review import (
    NOTE_MAX_CHARS,
    ReviewError,
    clinician_note_save,
    consultation_review_mark,
    context_review_apply,
    entity_add,
    entity_review_apply,
)
from review_helpers import FIRST, SECOND, case_create, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinician(db):
    return user_create(username="dr_who", role="clinician")


@pytest.fixture
def case(db):
    return case_create()[0]


def entity(consultation, text):
    return Entity.objects.get(message__consultation=consultation, text=text)


def first_message(consultation):
    return consultation.messages.get(text=FIRST)


def test_accept_records_review_and_audit_but_leaves_model_output(case, clinician):
    headache = entity(case, "headache")
    annotation = entity_review_apply(consultation=case, actor=clinician, action="accept", entity_id=headache.id)
    assert annotation.status == "accepted"
    event = AuditEvent.objects.get(consultation=case)
    assert (event.actor, event.actor_name, event.action) == (clinician, "dr_who", "entity_accept")
    assert event.before["status"] == "pending" and event.after["status"] == "accepted"
    headache.refresh_from_db()
    assert headache.review_status == "accepted" and headache.type == "SYMPTOM"
    # Accepting twice changes nothing and writes nothing.
    entity_review_apply(consultation=case, actor=clinician, action="accept", entity_id=headache.id)
    assert AuditEvent.objects.filter(consultation=case).count() == 1


def test_correct_type_span_and_assertion_keeps_original(case, clinician):
    fever = entity(case, "fever")
    start = FIRST.index("fever")
    annotation = entity_review_apply(
        consultation=case, actor=clinician, action="correct", entity_id=fever.id, type="DISEASE",
        start=start, end=start + len("fever since Monday"), assertion="possible",
    )
    assert annotation.status == "corrected"
    assert annotation.text == "fever since Monday"
    assert annotation.original == {"type": "SYMPTOM", "start": start, "end": start + 5, "text": "fever",
                                   "assertion": "present"}
    fever.refresh_from_db()
    assert (fever.type, fever.start, fever.end, fever.text, fever.assertion) == ("SYMPTOM", start, start + 5,
                                                                                 "fever", "present")
    event = AuditEvent.objects.get(consultation=case, action="entity_correct")
    assert event.before["type"] == "SYMPTOM" and event.after["type"] == "DISEASE"
    assert event.after["assertion"] == "possible"
    # Correcting back to the model's values makes it a plain acceptance again.
    again = entity_review_apply(consultation=case, actor=clinician, action="correct", entity_id=fever.id,
                                type="SYMPTOM", start=start, end=start + 5, assertion="present")
    assert again.status == "accepted" and again.original is None


def test_reject_then_accept_and_assertion_cleared(case, clinician):
    drug = entity(case, "ibuprofen")
    assert entity_review_apply(consultation=case, actor=clinician, action="reject",
                               entity_id=drug.id).status == "rejected"
    drug.refresh_from_db()
    assert drug.review_status == "rejected"
    cleared = entity_review_apply(consultation=case, actor=clinician, action="correct", entity_id=drug.id,
                                  assertion=None)
    assert cleared.status == "corrected" and cleared.assertion is None
    assert [e.action for e in audit_events_get(consultation=case)] == ["entity_reject", "entity_correct"]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"type": "BANANA"}, "Unknown entity type"),
        ({"start": 0, "end": 10_000}, "outside the message"),
        ({"start": 5, "end": 3}, "outside the message"),
        ({"start": 1, "end": 7}, "whitespace"),
        ({"assertion": "maybe"}, "Unknown assertion"),
        ({"start": "x"}, "whole numbers"),
    ],
)
def test_invalid_corrections_are_refused_without_audit(case, clinician, changes, message):
    with pytest.raises(ReviewError, match=message):
        entity_review_apply(consultation=case, actor=clinician, action="correct",
                            entity_id=entity(case, "headache").id, **changes)
    assert not AuditEvent.objects.exists()
    assert not EntityReview.objects.exists()


def test_actions_on_another_consultations_entity_are_refused(case, clinician):
    other, _ = case_create()
    with pytest.raises(ReviewError, match="No such entity"):
        entity_review_apply(consultation=case, actor=clinician, action="accept",
                            entity_id=entity(other, "headache").id)
    with pytest.raises(ReviewError, match="No such message"):
        entity_add(consultation=case, actor=clinician, message_id=first_message(other).id, type="SYMPTOM",
                   start=0, end=1)


def test_add_missed_entity_then_reject_it(case, clinician):
    second = case.messages.get(text=SECOND)
    start = SECOND.index("stiff neck")
    added = entity_add(consultation=case, actor=clinician, message_id=second.id, type="SYMPTOM",
                       start=start, end=start + len("stiff neck"), assertion="present")
    assert (added.status, added.text, added.entity_id) == ("added", "stiff neck", None)
    with pytest.raises(ReviewError, match="already annotated"):
        entity_add(consultation=case, actor=clinician, message_id=second.id, type="SYMPTOM",
                   start=start, end=start + len("stiff neck"), assertion="present")
    with pytest.raises(ReviewError, match="patient's messages"):
        reply = case.messages.get(role=Message.Role.ASSISTANT)
        entity_add(consultation=case, actor=clinician, message_id=reply.id, type="SYMPTOM", start=0, end=2)
    rejected = entity_review_apply(consultation=case, actor=clinician, action="reject",
                                   review_id=added.review_id)
    assert rejected.status == "rejected"
    restored = entity_review_apply(consultation=case, actor=clinician, action="accept",
                                   review_id=added.review_id)
    assert restored.status == "added"
    assert [e.action for e in audit_events_get(consultation=case)] == [
        "entity_add", "entity_reject", "entity_accept"]


def test_mark_reviewed_and_unmark_are_audited(case, clinician):
    consultation_review_mark(consultation=case, actor=clinician, reviewed=True)
    consultation_review_mark(consultation=case, actor=clinician, reviewed=True)
    assert ConsultationReview.objects.get(consultation=case).reviewed_by == clinician
    consultation_review_mark(consultation=case, actor=clinician, reviewed=False)
    assert not ConsultationReview.objects.exists()
    assert [e.action for e in audit_events_get(consultation=case)] == [
        "consultation_reviewed", "consultation_unreviewed"]


def test_text_segments_cover_text_and_overlaps():
    annotations = [
        Annotation(key="e1", message_id=1, entity_id=1, review_id=None, status="pending", type="SYMPTOM",
                   start=0, end=10, text="chest pain", assertion=None),
        Annotation(key="e2", message_id=1, entity_id=2, review_id=None, status="pending", type="ANATOMY",
                          start=0, end=5, text="chest", assertion=None),
    ]
    segments = text_segments(text="chest pain now", annotations=annotations)
    assert "".join(s.text for s in segments) == "chest pain now"
    assert [(s.text, [a.key for a in s.annotations]) for s in segments] == [
        ("chest", ["e1", "e2"]), (" pain", ["e1"]), (" now", [])]


def test_text_segments_put_the_mention_in_force_before_a_rejected_one(case, clinician):
    """A model mention rejected and the same words added by the clinician: the highlight is the added one's,
    and both stay annotations of the message (the review table lists them)."""
    first = first_message(case)
    fever = entity(case, "fever")
    entity_review_apply(consultation=case, actor=clinician, action="reject", entity_id=fever.id)
    added = entity_add(consultation=case, actor=clinician, message_id=first.id, type="DISEASE",
                       start=fever.start, end=fever.end, assertion="present")
    [(message, annotations)] = [(m, a) for m, a in messages_with_annotations(consultation=case)
                                if m.id == first.id]
    assert {a.key: a.status for a in annotations if a.text == "fever"} == {f"e{fever.id}": "rejected",
                                                                           added.key: "added"}
    segments = text_segments(text=message.text, annotations=annotations)
    [covered] = [s for s in segments if s.text == "fever"]
    assert [(a.key, a.status, a.type) for a in covered.annotations] == [
        (added.key, "added", "DISEASE"), (f"e{fever.id}", "rejected", "SYMPTOM")]

    # Overlapping, not the same span: the rejected outer mention keeps the words only it covers.
    outer = Annotation(key="e1", message_id=1, entity_id=1, review_id=None, status="rejected",
                       type="DISEASE", start=0, end=10, text="chest pain", assertion=None)
    inner = Annotation(key="r2", message_id=1, entity_id=None, review_id=2, status="corrected",
                       type="SYMPTOM", start=6, end=10, text="pain", assertion=None)
    segments = text_segments(text="chest pain now", annotations=[outer, inner])
    assert [(s.text, [a.key for a in s.annotations]) for s in segments] == [
        ("chest ", ["e1"]), ("pain", ["r2", "e1"]), (" now", [])]


RETYPED_ATTRIBUTES = {
    "assertion": "present",
    "attributes": {"duration": {"text": "since Monday", "start": 37, "end": 49}},
    "codes": [{"system": "ICD-10-CM", "code": "R50.9", "name": "Fever, unspecified", "score": 0.95}],
    "retyped_from": "DISEASE",  # ner_engine.context: a DISEASE span with a chapter-R code became a SYMPTOM
}


def test_retyped_from_is_provenance_not_an_attribute_of_the_finding(case, clinician):
    Entity.objects.filter(pk=entity(case, "fever").pk).update(attributes=RETYPED_ATTRIBUTES)
    view = case_get(consultation=case)
    fever = next(e for e in view.record["symptoms"] if e.text == "fever")
    assert fever.attributes == {"duration": "since Monday"}
    assert fever.provenance == ["model type: DISEASE, retyped by ICD-10-CM chapter R (R50.9)"]
    assert "retyped" not in view.summary_text.lower() and "DISEASE" not in view.summary_text
    assert "fever = Fever, unspecified (ICD-10-CM R50.9) [duration since Monday]" in view.summary_text
    [annotation] = [a for a in view.annotations if a.text == "fever"]
    assert annotation.attribute_texts == {"duration": "since Monday"}
    # Still in the data: the API's annotation keeps the extractor's attributes as stored.
    data = case_serialize(case=view)
    annotations = [a for m in data["messages"] for a in m["annotations"] if a["text"] == "fever"]
    assert annotations[0]["attributes"]["retyped_from"] == "DISEASE"
    [record_fever] = [e for e in data["record"]["symptoms"] if e["text"] == "fever"]
    assert "retyped_from" not in record_fever["attributes"] and record_fever["provenance"] == fever.provenance
    # Nor in the FHIR note, which is written for a reader as the summary is.
    notes = [n["text"] for e in fhir.consultation_fhir_bundle(case=view)["entry"]
             for n in e["resource"].get("note", [])]
    assert notes and not any("retyped" in n for n in notes)


def test_case_record_triage_and_summary_follow_review(case, clinician):
    second = case.messages.get(text=SECOND)
    start = SECOND.index("stiff neck")
    entity_add(consultation=case, actor=clinician, message_id=second.id, type="SYMPTOM", start=start,
               end=start + 10, assertion="present")
    entity_review_apply(consultation=case, actor=clinician, action="reject",
                        entity_id=entity(case, "ibuprofen").id)
    view = case_get(consultation=case)
    assert [e.text for e in view.record["symptoms"]] == ["headache", "fever", "chest pain", "stiff neck"]
    assert view.record["drugs"] == []
    assert view.record["symptoms"][1].attributes == {"duration": "since Monday"}
    assert [s.rule_id for s in view.red_flags] == [knowledge_load().red_flags[0].id]
    assert view.urgency_reasons == ["Fever with a stiff neck"]
    [question] = view.questions
    assert question.slot == "general:conditions" and question.answer_text == SECOND
    lines = view.summary_text.splitlines()
    assert lines[0] == "Chief complaint: headache, fever"
    assert "Denies: chest pain." in lines[1] and "Conditions: asthma." in lines[1]
    assert lines[2] == "Medications: not stated"
    assert lines[3] == "Red flags: Fever with a stiff neck"
    data = case_serialize(case=view)
    assert [a["action"] for a in data["audit"]] == ["entity_add", "entity_reject"]


def test_case_list_orders_by_urgency_and_filters(clinician):
    calm, _ = case_create(urgency="self_care")
    unassessed, _ = case_create(urgency=None)
    ambulance, _ = case_create(urgency="emergency_ambulance")
    urgent, _ = case_create(urgency="consultation_24", closed=True)
    consultation_review_mark(consultation=urgent, actor=clinician, reviewed=True)
    ordered = list(consultation_list())
    assert ordered == [ambulance, urgent, calm, unassessed]
    assert ordered[0].red_flag_count == 1
    filters = CaseFilters
    assert list(consultation_list(filters=filters(reviewed=True))) == [urgent]
    assert list(consultation_list(filters=filters(status="closed"))) == [urgent]
    assert list(consultation_list(filters=filters(urgency="self_care"))) == [calm]
    assert len(consultation_list(filters=filters(reviewed=False))) == 3


# FHIR ------------------------------------------------------------------------------------------------


def fhir_validate(bundle: dict):
    from fhir.resources.R4B.bundle import Bundle

    return Bundle.model_validate(bundle)


def test_fhir_bundle_validates_and_maps_assertions(case, clinician):
    entity_review_apply(consultation=case, actor=clinician, action="correct",
                        entity_id=entity(case, "asthma").id, assertion="possible")
    bundle = fhir.consultation_fhir_bundle(case=case_get(consultation=case))
    parsed = fhir_validate(bundle)
    assert parsed.type == "collection"
    by_type: dict[str, list] = {}
    for item in bundle["entry"]:
        by_type.setdefault(item["resource"]["resourceType"], []).append(item["resource"])
    assert sorted(by_type) == ["Condition", "Encounter", "MedicationStatement", "Observation", "Patient",
                               "QuestionnaireResponse"]
    [condition] = by_type["Condition"]
    assert condition["code"]["text"] == "asthma"
    assert condition["verificationStatus"]["coding"][0]["code"] == "provisional"
    observations = {o["code"]["text"]: o for o in by_type["Observation"]}
    assert observations["chest pain"]["valueBoolean"] is False
    assert observations["headache"]["valueBoolean"] is True
    assert observations["headache"]["status"] == "preliminary"
    [medication] = by_type["MedicationStatement"]
    assert medication["status"] == "active"
    assert medication["medicationCodeableConcept"]["coding"] == [
        {"code": "5640", "system": "http://www.nlm.nih.gov/research/umls/rxnorm"}]
    [response] = by_type["QuestionnaireResponse"]
    assert response["item"] == [{"linkId": "general:conditions", "text": response["item"][0]["text"],
                                 "answer": [{"valueString": SECOND}]}]
    patient_ref = {"reference": f"urn:uuid:{by_type['Patient'][0]['id']}"}
    assert all(r["subject"] == patient_ref for r in by_type["Condition"] + by_type["Observation"])
    assert by_type["Encounter"][0]["priority"]["coding"][0]["code"] == "UR"


def test_fhir_refuted_condition_has_no_clinical_status_and_family_is_left_out(case, clinician):
    entity_review_apply(consultation=case, actor=clinician, action="correct",
                        entity_id=entity(case, "asthma").id, assertion="absent")
    entity_review_apply(consultation=case, actor=clinician, action="correct",
                        entity_id=entity(case, "headache").id, assertion="family")
    consultation_review_mark(consultation=case, actor=clinician, reviewed=True)
    bundle = fhir.consultation_fhir_bundle(case=case_get(consultation=case))
    fhir_validate(bundle)
    resources = [item["resource"] for item in bundle["entry"]]
    [condition] = [r for r in resources if r["resourceType"] == "Condition"]
    assert condition["verificationStatus"]["coding"][0]["code"] == "refuted"
    assert "clinicalStatus" not in condition
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    assert "headache" not in [o["code"]["text"] for o in observations]
    assert {o["status"] for o in observations} == {"final"}


def test_fhir_bundle_of_an_empty_consultation_validates(db):

    consultation, _ = consultation_create()
    bundle = fhir.consultation_fhir_bundle(case=case_get(consultation=consultation))
    fhir_validate(bundle)
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Patient", "Encounter",
                                                                        "QuestionnaireResponse"]


def test_clinical_context_shape_feeds_record_summary_and_fhir(db, clinician):
    """ner_engine.context puts linked attributes and candidate codes inside Entity.attributes."""
    from consult.models import Message
    from review_helpers import entity_create

    consultation, _ = consultation_create()
    message = Message.objects.create(consultation=consultation, role=Message.Role.PATIENT,
                                     text="Severe headache for 3 days.", status=Message.Status.PROCESSED)
    entity_create(message, "headache", "SYMPTOM", assertion="present", attributes={
        "assertion": "present",
        "attributes": {"duration": {"text": "for 3 days", "start": 16, "end": 26},
                       "severity": {"text": "Severe", "start": 0, "end": 6}},
        "codes": [{"system": "ICD-10-CM", "code": "R51.9", "name": "Headache, unspecified", "score": 0.9},
                  {"system": "HPO", "code": "HP:0002315", "name": "Headache", "score": 1.0},
                  {"system": "HPO", "code": "HP:0000001", "name": "worse", "score": 0.5}],
    })
    view = case_get(consultation=consultation)
    [entry] = view.record["symptoms"]
    assert entry.attributes == {"duration": "for 3 days", "severity": "Severe"}
    assert [(c["system"], c["code"]) for c in entry.codes] == [("HPO", "HP:0002315"), ("ICD-10-CM", "R51.9")]
    assert "Reports: headache (HPO HP:0002315) [duration for 3 days; severity Severe]." in view.summary_text
    bundle = fhir.consultation_fhir_bundle(case=view)
    fhir_validate(bundle)
    [observation] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert observation["code"]["coding"] == [
        {"code": "HP:0002315", "display": "Headache", "system": "http://human-phenotype-ontology.org"},
        {"code": "R51.9", "display": "Headache, unspecified", "system": "http://hl7.org/fhir/sid/icd-10-cm"}]


# Corrections recompute the context (ner_engine.context through consult.extraction) --------------------------

STIFF_TEXT = "I've been throwing up and my neck feels really stiff"


def fhir_codes(bundle, text):
    for entry in bundle["entry"]:
        resource = entry["resource"]
        concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
        if concept.get("text") == text:
            return [(c.get("system"), c["code"]) for c in concept.get("coding", [])]
    raise AssertionError(f"{text!r} not exported")


@pytest.fixture
def stiff_case(db):
    """The issue's case: the model typed "stiff" as a DISEASE coded as Stiff-Person Syndrome."""
    from review_helpers import entity_create

    consultation, _ = consultation_create()
    message = Message.objects.create(consultation=consultation, role=Message.Role.PATIENT, text=STIFF_TEXT,
                                     status=Message.Status.PROCESSED)
    stiff = entity_create(message, "stiff", "DISEASE", assertion="present", attributes={
        "assertion": "present", "attributes": {},
        "codes": [{"system": "MeSH", "code": "D016750", "name": "Stiff-Person Syndrome", "score": 0.85},
                  {"system": "ICD-10-CM", "code": "G25.82", "name": "Stiff-man syndrome", "score": 0.85}]})
    return consultation, message, stiff


def test_correction_recomputes_codes_for_the_new_span_and_type(stiff_case, clinician):
    consultation, message, stiff = stiff_case
    start = STIFF_TEXT.index("neck feels really stiff")
    before = case_get(consultation=consultation)
    assert [c["code"] for c in before.record["diseases"][0].codes] == ["D016750", "G25.82"]

    corrected = entity_review_apply(consultation=consultation, actor=clinician, action="correct",
                                    entity_id=stiff.id, type="SYMPTOM", start=start, end=len(STIFF_TEXT))
    assert (corrected.status, corrected.type, corrected.text) == ("corrected", "SYMPTOM", "neck feels really stiff")
    assert corrected.context_state == "proposed" and corrected.assertion == "present"
    assert all(c["code"] not in {"D016750", "G25.82"} for c in corrected.codes), corrected.codes
    # The body site is linked from the recomputed context ("neck" inside the new span).
    assert corrected.attribute_texts.get("body_site") == "neck"
    # The model's output is untouched; the entity's mirrored status says "corrected".
    stiff.refresh_from_db()
    assert (stiff.type, stiff.text, stiff.review_status) == ("DISEASE", "stiff", "corrected")
    assert stiff.attributes["codes"][0]["code"] == "D016750"
    event = AuditEvent.objects.get(consultation=consultation, action="entity_correct")
    assert event.before["codes"] == ["MeSH D016750", "ICD-10-CM G25.82"]
    assert event.after["codes"] == [f"{c['system']} {c['code']}" for c in corrected.codes]

    # The clinician codes it from a term of their own: the same vocabularies, no made-up codes.
    edited = context_review_apply(consultation=consultation, actor=clinician, action="context_edit",
                                  entity_id=stiff.id, code_term="neck stiffness")
    assert edited.context_state == "edited" and edited.preferred_term == "Stiff neck"
    assert ("HPO", "HP:0025258") in [(c["system"], c["code"]) for c in edited.codes]
    assert any("neck stiffness" in note for note in edited.provenance)
    with pytest.raises(ReviewError, match="No code matches"):
        context_review_apply(consultation=consultation, actor=clinician, action="context_edit",
                             entity_id=stiff.id, code_term="zzqx qqzz")

    view = case_get(consultation=consultation)
    assert view.record["diseases"] == []
    [entry] = view.record["symptoms"]
    assert (entry.text, entry.preferred_term, entry.proposed) == ("neck feels really stiff", "Stiff neck", False)
    assert "neck feels really stiff = Stiff neck (HPO HP:0025258)" in view.summary_text
    assert "Stiff-Person" not in view.summary_text and "G25.82" not in view.summary_text
    bundle = fhir.consultation_fhir_bundle(case=view)
    fhir_validate(bundle)
    assert ("http://human-phenotype-ontology.org", "HP:0025258") in fhir_codes(bundle, "neck feels really stiff")
    assert "G25.82" not in str(bundle) and "D016750" not in str(bundle)
    assert [e.action for e in audit_events_get(consultation=consultation)] == [
        "entity_correct", "context_edit"]


def test_proposed_values_are_accepted_or_the_assertion_edited(stiff_case, clinician):
    consultation, message, stiff = stiff_case
    start = STIFF_TEXT.index("throwing up")
    added = entity_add(consultation=consultation, actor=clinician, message_id=message.id, type="SYMPTOM",
                       start=start, end=start + len("throwing up"))
    assert added.context_state == "proposed" and added.assertion == "present"
    assert ("HPO", "HP:0002013") in [(c["system"], c["code"]) for c in added.codes]  # Vomiting
    [entry] = case_get(consultation=consultation).record["symptoms"]
    assert entry.proposed and entry.preferred_term == "Vomiting"
    bundle = fhir.consultation_fhir_bundle(case=case_get(consultation=consultation))
    fhir_validate(bundle)
    assert "not yet confirmed" in str(bundle)

    accepted = context_review_apply(consultation=consultation, actor=clinician, action="context_accept",
                                    review_id=added.review_id)
    assert accepted.context_state == "confirmed" and accepted.codes == added.codes
    with pytest.raises(ReviewError, match="no proposed values"):
        context_review_apply(consultation=consultation, actor=clinician, action="context_accept",
                             review_id=added.review_id)
    edited = context_review_apply(consultation=consultation, actor=clinician, action="context_edit",
                                  review_id=added.review_id, assertion="historical",
                                  codes_keep=["HPO|HP:0002013"])
    assert (edited.assertion, [c["code"] for c in edited.codes]) == ("historical", ["HP:0002013"])
    assert edited.status == "added"
    assert [e.action for e in audit_events_get(consultation=consultation)] == [
        "entity_add", "context_accept", "context_edit"]


def test_an_assertion_the_clinician_chose_wins_over_the_recomputed_one(stiff_case, clinician):
    consultation, _, stiff = stiff_case
    start = STIFF_TEXT.index("neck feels really stiff")
    corrected = entity_review_apply(consultation=consultation, actor=clinician, action="correct",
                                    entity_id=stiff.id, type="SYMPTOM", start=start, end=len(STIFF_TEXT),
                                    assertion="possible")
    assert corrected.assertion == "possible"
    # Back to the model's own span and type: the model's context (and codes) apply again.
    back = entity_review_apply(consultation=consultation, actor=clinician, action="correct",
                               entity_id=stiff.id, type="DISEASE", start=STIFF_TEXT.index("stiff"),
                               end=len(STIFF_TEXT), assertion="present")
    assert back.status == "accepted" and back.context_state == "" and back.codes[0]["code"] == "D016750"


def test_clinician_note_is_audited_and_exported(case, clinician):
    note = clinician_note_save(consultation=case, actor=clinician, text="  Seen by phone; safety-netted.  ")
    assert note.text == "Seen by phone; safety-netted." and note.updated_by_name == "dr_who"
    clinician_note_save(consultation=case, actor=clinician, text="Seen by phone; safety-netted.")
    view = case_get(consultation=case)
    assert view.summary_text.endswith("Clinician note: Seen by phone; safety-netted.")
    bundle = fhir.consultation_fhir_bundle(case=view)
    fhir_validate(bundle)
    [impression] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ClinicalImpression"]
    assert impression["summary"] == "Seen by phone; safety-netted."
    assert impression["note"][0]["authorString"] == "dr_who"
    with pytest.raises(ReviewError, match="at most"):
        clinician_note_save(consultation=case, actor=clinician, text="x" * (NOTE_MAX_CHARS + 1))
    clinician_note_save(consultation=case, actor=clinician, text="")
    events = [e for e in audit_events_get(consultation=case) if e.action == "note_edit"]
    assert [(e.before["note"], e.after["note"]) for e in events] == [
        ("", "Seen by phone; safety-netted."), ("Seen by phone; safety-netted.", "")]
    assert case_get(consultation=case).note is None
