"""Read side of the clinician workspace: the case list, and one case as a clinician reads it (reviewed
record, triage path, a pasteable summary). Shared by the pages, the REST API and the FHIR export."""
from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce

from consult.interview import triage_engine_get, triage_input_build
from consult.models import (
    ClinicianNote,
    ClinicianUrgency,
    Consultation,
    Message,
    RecordItem,
    TriageEvent,
    Urgency,
    record_key_normalize,
)
from consult.selectors.annotations import PENDING, Annotation, messages_with_annotations
from consult.selectors.audit import audit_event_serialize, audit_events_get
# The reviewed record has the live record's sections ({type: section}), so that clients read both alike.
from consult.selectors.consultation import RECORD_SECTIONS
from consult.triage import knowledge_load

# Assertions that mean the patient does not have the finding now; the summary lists them as "denies".
NOT_PRESENT = frozenset({"absent"})
NOT_THE_PATIENTS = frozenset({"family", "hypothetical"})


@functools.lru_cache(maxsize=1)
def _triage_rules() -> dict[str, Any]:
    return {rule.id: rule for rule in knowledge_load().red_flags}


def triage_rule_kind(*, rule_id: str) -> str | None:
    """'red_flag' for a knowledge-base red flag, 'question' for an interview question, 'disposition' for the
    other reasons behind a level (a complaint's baseline, the differential, an earlier level kept)."""
    if rule_id in _triage_rules():
        return "red_flag"
    if rule_id == "complaint" or ":" in rule_id:
        return "question"
    return "disposition"


def red_flag_rule_ids() -> list[str]:
    return list(_triage_rules())


def triage_decision(*, consultation: Consultation) -> dict[str, Any]:
    """The interview's latest decision as stored by services.triage.consultation_triage (TriageDecision.to_dict())."""
    return (consultation.triage_state or {}).get("decision") or {}


# Case list ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilters:
    status: str | None = None
    urgency: str | None = None
    reviewed: bool | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None
    # Words in the patient's messages or the record, or the start of the consultation's id.
    search: str | None = None


def consultation_list(*, filters: CaseFilters | None = None) -> QuerySet[Consultation]:
    """Consultations for clinicians, most urgent first (emergency_ambulance first, not yet assessed last),
    newest first within a level, with the number of red flags that fired. The level is the one in force
    (`effective_urgency`): a clinician's (ClinicianUrgency) where set, else the interview's; the urgency filter
    reads it too."""
    filters = filters or CaseFilters()
    urgency_order = Case(
        *(When(effective_urgency=level, then=Value(rank)) for rank, level in enumerate(Urgency.values)),
        default=Value(len(Urgency.values)),
        output_field=IntegerField(),
    )
    queryset = (
        Consultation.objects.select_related("review", "review__reviewed_by", "clinician_urgency")
        .annotate(effective_urgency=Coalesce(F("clinician_urgency__urgency"), F("urgency")))
        .annotate(
            urgency_order=urgency_order,
            red_flag_count=Count("triage_events", filter=Q(triage_events__rule_id__in=red_flag_rule_ids()),
                                 distinct=True),
            patient_message_count=Count("messages", filter=Q(messages__role=Message.Role.PATIENT), distinct=True),
        )
        .order_by("urgency_order", "-created_at")
    )
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.urgency:
        queryset = queryset.filter(effective_urgency=filters.urgency)
    if filters.reviewed is not None:
        queryset = queryset.filter(review__isnull=not filters.reviewed)
    if filters.created_from:
        queryset = queryset.filter(created_at__date__gte=filters.created_from)
    if filters.created_to:
        queryset = queryset.filter(created_at__date__lte=filters.created_to)
    search = (filters.search or "").strip()
    if search:
        # Subqueries, not joins: a join on messages would multiply the rows the counts above are made of.
        matches = (Q(id__in=Message.objects.filter(role=Message.Role.PATIENT, text__icontains=search)
                     .values("consultation_id"))
                   | Q(id__in=RecordItem.objects.filter(text__icontains=search).values("consultation_id")))
        if re.fullmatch(r"[0-9a-fA-F-]{4,36}", search):
            matches |= Q(id__startswith=search.lower()) if len(search) < 36 else Q(id=search)
        queryset = queryset.filter(matches)
    return queryset


CHIEF_COMPLAINT_CHARS = 80


def chief_complaint(*, consultation: Consultation) -> str:
    """One line for the case list: the main symptom(s) triage recorded, else the first symptoms in the record
    that the patient does not deny, else the start of the first patient message; "" before any message.
    Reads `consultation.record_items` and `consultation.messages` (prefetch them for a list)."""
    complaints = (triage_decision(consultation=consultation).get("record") or {}).get("complaints") or []
    if complaints:
        text = ", ".join(complaints)
    else:
        symptoms = [item.text for item in consultation.record_items.all()
                    if item.type == RecordItem.Type.SYMPTOM and item.assertion not in NOT_PRESENT | NOT_THE_PATIENTS]
        first = next((m.text for m in consultation.messages.all() if m.role == Message.Role.PATIENT), "")
        text = ", ".join(symptoms[:3]) or " ".join(first.split())
    return text if len(text) <= CHIEF_COMPLAINT_CHARS else text[:CHIEF_COMPLAINT_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class PatientDetails:
    """The patient's age (years) and sex: the clinician's values where set, else the interview's answers."""

    age: float | None
    sex: str
    age_source: str | None  # "clinician" | "interview" | None (unknown)
    sex_source: str | None

    @property
    def text(self) -> str:
        """e.g. "34 y, female"; "" when neither is known."""
        parts = []
        if self.age is not None:
            parts.append(f"{round(self.age * 52)} wk" if self.age < 1 else f"{self.age:g} y")
        if self.sex:
            parts.append(self.sex)
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"age": self.age, "sex": self.sex or None, "age_source": self.age_source,
                "sex_source": self.sex_source}


def patient_details(*, consultation: Consultation) -> PatientDetails:
    decided = triage_decision(consultation=consultation).get("record") or {}
    interview_age = decided.get("age")
    interview_sex = decided.get("sex") or ""
    if consultation.age is not None:
        age, age_source = consultation.age, "clinician"
    else:
        age, age_source = interview_age, ("interview" if interview_age is not None else None)
    if consultation.sex:
        sex, sex_source = consultation.sex, "clinician"
    else:
        sex, sex_source = interview_sex, ("interview" if interview_sex else None)
    return PatientDetails(age=age, sex=sex, age_source=age_source, sex_source=sex_source)


def clinician_urgency_get(*, consultation: Consultation) -> ClinicianUrgency | None:
    # A query, not the reverse accessor: that one caches a miss on the instance, which a later save would not clear.
    return ClinicianUrgency.objects.filter(consultation=consultation).first()


@dataclass(frozen=True)
class Retriage:
    """The interview re-run on the reviewed findings (consultation_retriage)."""

    urgency: str | None
    concluded: bool
    question: str | None  # what it would ask next, while not concluded
    red_flags: list[str]  # reasons of the red flags that fire
    reasons: list[str]  # the reasons behind its level
    record: dict[str, Any]

    @property
    def urgency_label(self) -> str | None:
        return Urgency(self.urgency).label if self.urgency else None

    def to_dict(self) -> dict[str, Any]:
        return {"urgency": self.urgency, "urgency_label": self.urgency_label, "concluded": self.concluded,
                "question": self.question, "red_flags": self.red_flags, "reasons": self.reasons}


def consultation_retriage(*, consultation: Consultation,
                          messages: list[tuple[Message, list[Annotation]]] | None = None) -> Retriage | None:
    """The interview re-run on the clinician-reviewed findings; pure computation, nothing is written.

    The input is the one services.triage.consultation_triage builds for the latest processed patient message
    (interview.triage_input_build), except that each message's mentions are the reviewed ones
    (annotations.messages_with_annotations: accepted, corrected and added mentions with their reviewed assertion
    and context, pending ones as extracted, rejected ones left out). No earlier level is carried over
    (`previous_urgency` None): the level is what the reviewed findings reach on their own, so that a rejected
    mention can lower it. None before any processed patient message."""
    if messages is None:
        messages = messages_with_annotations(consultation=consultation)
    patient = [(m, a) for m, a in messages if m.role == Message.Role.PATIENT and m.status != Message.Status.FAILED]
    processed = [index for index, (m, _) in enumerate(patient) if m.status == Message.Status.PROCESSED]
    if not processed:
        return None
    patient = patient[:processed[-1] + 1]
    # No earlier level carried over: the level is what the reviewed findings reach on their own.
    triage_input = triage_input_build(
        consultation=consultation, messages=[(m, [a for a in annotations if a.kept]) for m, annotations in patient],
        current=patient[-1][0], answered=(consultation.triage_state or {}).get("answered") or {},
        previous_urgency=None)
    decision = triage_engine_get().decide(triage_input)
    red_flag_ids = set(decision.red_flags)
    return Retriage(
        urgency=decision.urgency,
        concluded=decision.concluded,
        question=decision.question.text if decision.question else None,
        red_flags=list(dict.fromkeys(r.describe() for r in decision.reasons if r.rule_id in red_flag_ids)),
        reasons=list(dict.fromkeys(r.describe() for r in decision.reasons if r.urgency == decision.urgency)),
        record=decision.record,
    )


# One case ----------------------------------------------------------------------------------------------


@dataclass
class RecordEntry:
    type: str
    text: str
    assertion: str | None
    mentions: int = 1
    attributes: dict[str, str] = field(default_factory=dict)  # {kind: text}
    codes: list[dict[str, str]] = field(default_factory=list)  # [{"system", "code", "name"}]
    statuses: set[str] = field(default_factory=set)
    # How the extractor typed its mentions (Annotation.provenance): for a tooltip, never the summary.
    provenance: list[str] = field(default_factory=list)
    # Some mention's context was recomputed after a correction and awaits the clinician.
    proposed: bool = False

    @property
    def preferred_term(self) -> str | None:
        """The best code's name (codes are best first), or None when uncoded."""
        return next((code["name"] for code in self.codes if code.get("name")), None)

    @property
    def reviewed(self) -> bool:
        return PENDING not in self.statuses

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "text": self.text, "assertion": self.assertion, "mentions": self.mentions,
                "attributes": self.attributes, "codes": self.codes, "preferred_term": self.preferred_term,
                "reviewed": self.reviewed, "proposed": self.proposed, "provenance": self.provenance}


def record_build(*, annotations: list[Annotation]) -> dict[str, list[RecordEntry]]:
    """The structured record from the reviewed mentions: rejected ones dropped, corrections applied,
    repeated mentions merged (as the live record does), the latest assertion winning."""
    record: dict[str, list[RecordEntry]] = {section: [] for section in RECORD_SECTIONS.values()}
    by_key: dict[tuple[str, str], RecordEntry] = {}
    for annotation in annotations:
        section = RECORD_SECTIONS.get(annotation.type)
        if section is None or not annotation.kept:
            continue
        key = (annotation.type, record_key_normalize(text=annotation.text))
        entry = by_key.get(key)
        if entry is None:
            entry = by_key[key] = RecordEntry(type=annotation.type, text=annotation.text.strip(),
                                              assertion=annotation.assertion)
            record[section].append(entry)
        else:
            entry.mentions += 1
            if annotation.assertion:
                entry.assertion = annotation.assertion
        entry.statuses.add(annotation.status)
        entry.proposed = entry.proposed or annotation.context_pending
        entry.attributes.update(annotation.attribute_texts)
        entry.provenance += [note for note in annotation.provenance if note not in entry.provenance]
        for code in annotation.codes:
            if all((c["system"], c["code"]) != (code["system"], code["code"]) for c in entry.codes):
                entry.codes.append(code)
    return record


@dataclass(frozen=True)
class AskedQuestion:
    slot: str
    label: str
    text: str
    asked_after_message_id: int | None
    answer_text: str | None  # the patient's next message, verbatim
    value: str | None  # what triage understood; None when the patient said there is none
    answered: bool


def questions_asked(*, consultation: Consultation, messages: list[Message]) -> list[AskedQuestion]:
    """The follow-up questions the assistant asked, each with the patient's reply (the message that answered it)."""
    answered = (consultation.triage_state or {}).get("answered") or {}
    by_question: dict[str, list[Message]] = {}
    for message in messages:
        if message.role == Message.Role.PATIENT and answered.get(str(message.id)):
            by_question.setdefault(answered[str(message.id)], []).append(message)
    questions = []
    for event in consultation.triage_events.order_by("created_at", "id"):
        if triage_rule_kind(rule_id=event.rule_id) != "question":
            continue
        replies = by_question.get(event.rule_id) or []
        reply = next((m for m in replies if m.id > (event.message_id or 0)), None)
        questions.append(AskedQuestion(
            slot=event.rule_id, label=event.rule_id.partition(":")[2] or event.rule_id,
            text=event.reason.removeprefix("Asked: "), asked_after_message_id=event.message_id,
            answer_text=reply.text if reply else None, value=reply.text if reply else None, answered=reply is not None,
        ))
    return questions


@dataclass(frozen=True)
class TriageStep:
    rule_id: str
    kind: str | None
    reason: str
    urgency: str | None
    message_id: int | None

    @property
    def is_red_flag(self) -> bool:
        return self.kind == "red_flag"


def triage_path(*, consultation: Consultation) -> list[TriageStep]:
    return [
        TriageStep(rule_id=event.rule_id, kind=triage_rule_kind(rule_id=event.rule_id), reason=event.reason,
                   urgency=event.urgency, message_id=event.message_id)
        for event in TriageEvent.objects.filter(consultation=consultation).order_by("created_at", "id")
    ]


def urgency_reasons(*, consultation: Consultation, steps: list[TriageStep]) -> list[str]:
    """Why the consultation has its urgency: the reasons of the rules that set exactly that level."""
    if not consultation.urgency:
        return []
    return list(dict.fromkeys(s.reason for s in steps if s.urgency == consultation.urgency))


def _entry_phrase(entry: RecordEntry) -> str:
    """e.g. "neck feels really stiff = Stiff neck (HPO HP:0025258) [body site neck]": the patient's words, the
    preferred term with the best code, the qualifier and the linked attributes."""
    extras = [f"{key.replace('_', ' ')} {value}" for key, value in sorted(entry.attributes.items())]
    qualifier = f" ({entry.assertion})" if entry.assertion not in (None, "present", "absent") else ""
    coded = ""
    if entry.codes:
        best = entry.codes[0]
        term = best.get("name") or ""
        coded = (f" = {term}" if term and term.lower() != entry.text.lower() else "") + \
            f" ({best['system']} {best['code']})".replace("( ", "(")
    return entry.text + coded + qualifier + (f" [{'; '.join(extras)}]" if extras else "")


def case_summary_text(*, consultation: Consultation, record: dict[str, list[RecordEntry]],
                      questions: list[AskedQuestion], steps: list[TriageStep], note: str = "") -> str:
    """Plain text a clinician can paste into a note: chief complaint, history, medications, red flags."""
    decided = triage_decision(consultation=consultation).get("record") or {}

    def present(entries: list[RecordEntry]) -> list[RecordEntry]:
        return [e for e in entries if e.assertion not in NOT_PRESENT | NOT_THE_PATIENTS]

    symptoms = present(record["symptoms"])
    chief = ", ".join(decided.get("complaints") or []) or ", ".join(e.text for e in symptoms[:3]) or "not stated"
    history = []
    details = patient_details(consultation=consultation)
    demographics = [f"age {details.age:g}" if details.age is not None else "",
                    details.sex, "pregnant" if decided.get("pregnant") else ""]
    if any(demographics):
        history.append("Patient: " + ", ".join(d for d in demographics if d) + ".")
    if decided.get("duration"):
        history.append(f"Onset/duration: {decided['duration']}.")
    if decided.get("severity") is not None:
        history.append(f"Severity: {decided['severity']}/10.")
    if decided.get("habits"):
        history.append("Habits: " + ", ".join(decided["habits"]) + ".")
    if symptoms:
        history.append("Reports: " + "; ".join(_entry_phrase(e) for e in symptoms) + ".")
    denied = [e.text for section in record.values() for e in section if e.assertion in NOT_PRESENT]
    if denied:
        history.append("Denies: " + ", ".join(denied) + ".")
    diseases = present(record["diseases"])
    if diseases:
        history.append("Conditions: " + "; ".join(_entry_phrase(e) for e in diseases) + ".")
    elif "conditions" in (decided.get("declined") or []):
        history.append("Conditions: none reported.")
    family = [e.text for section in record.values() for e in section if e.assertion == "family"]
    if family:
        history.append("Family history: " + ", ".join(family) + ".")

    drugs = present(record["drugs"])
    if drugs:
        medications = "; ".join(_entry_phrase(e) for e in drugs)
    elif "medications" in (decided.get("declined") or []):
        medications = "none reported"
    else:
        medications = ", ".join(decided.get("medications") or []) or "not stated"

    red_flags = list(dict.fromkeys(s.reason for s in steps if s.is_red_flag))
    urgency = Urgency(consultation.urgency).label if consultation.urgency else "not assessed yet"
    lines = [
        f"Chief complaint: {chief}",
        "History: " + (" ".join(history) if history else "no further details."),
        f"Medications: {medications}",
        "Red flags: " + ("; ".join(red_flags) if red_flags else "none identified"),
        f"Triage: {urgency}",
    ]
    override = clinician_urgency_get(consultation=consultation)
    if override is not None:
        lines.append(f"Clinician's urgency: {Urgency(override.urgency).label} "
                     f"(set by {override.set_by_name or 'a clinician'}: {override.reason})")
    differential = [d for d in triage_decision(consultation=consultation).get("differential") or []
                    if d["probability"] >= 0.01]
    if differential:
        lines.append("Differential (DDXPlus, for clinicians only): " + "; ".join(
            f"{d['pathology']} ({d['icd10']}, severity {d['severity']}) {d['probability']:.0%}" for d in differential))
    if note:
        lines.append(f"Clinician note: {note}")
    return "\n".join(lines)


@dataclass
class CaseView:
    consultation: Consultation
    messages: list[tuple[Message, list[Annotation]]]
    record: dict[str, list[RecordEntry]]
    questions: list[AskedQuestion]
    steps: list[TriageStep]
    urgency_reasons: list[str]
    summary_text: str
    audit_events: list
    note: ClinicianNote | None = None
    clinician_urgency: ClinicianUrgency | None = None
    patient: PatientDetails | None = None

    @functools.cached_property
    def retriage(self) -> Retriage | None:
        """The interview re-run on the reviewed findings (computed when first read: the FHIR export needs none)."""
        return consultation_retriage(consultation=self.consultation, messages=self.messages)

    @property
    def annotations(self) -> list[Annotation]:
        return [a for _, annotations in self.messages for a in annotations]

    @property
    def red_flags(self) -> list[TriageStep]:
        return [s for s in self.steps if s.is_red_flag]


def case_get(*, consultation: Consultation) -> CaseView:
    messages = messages_with_annotations(consultation=consultation)
    annotations = [a for _, items in messages for a in items]
    record = record_build(annotations=annotations)
    questions = questions_asked(consultation=consultation, messages=[m for m, _ in messages])
    steps = triage_path(consultation=consultation)
    note = ClinicianNote.objects.filter(consultation=consultation).first()
    return CaseView(
        consultation=consultation,
        messages=messages,
        record=record,
        questions=questions,
        steps=steps,
        urgency_reasons=urgency_reasons(consultation=consultation, steps=steps),
        summary_text=case_summary_text(consultation=consultation, record=record, questions=questions, steps=steps,
                                       note=note.text if note else ""),
        audit_events=audit_events_get(consultation=consultation),
        note=note if note and note.text else None,
        clinician_urgency=clinician_urgency_get(consultation=consultation),
        patient=patient_details(consultation=consultation),
    )


def case_serialize(*, case: CaseView) -> dict[str, Any]:
    consultation = case.consultation
    mark = getattr(consultation, "review", None)
    return {
        "id": str(consultation.id),
        "status": consultation.status,
        "urgency": consultation.urgency,
        "urgency_reasons": case.urgency_reasons,
        "created_at": consultation.created_at.isoformat(),
        "reviewed": mark is not None,
        "reviewed_at": mark.reviewed_at.isoformat() if mark else None,
        "reviewed_by": mark.reviewed_by.get_username() if mark and mark.reviewed_by else None,
        "messages": [
            {
                "id": message.id, "role": message.role, "text": message.text, "status": message.status,
                "created_at": message.created_at.isoformat(), "model_version": message.model_version,
                "template_version": message.template_version,
                "annotations": [a.to_dict() for a in annotations],
            }
            for message, annotations in case.messages
        ],
        "record": {section: [e.to_dict() for e in entries] for section, entries in case.record.items()},
        "questions": [q.__dict__ for q in case.questions],
        "triage": [{**s.__dict__, "red_flag": s.is_red_flag} for s in case.steps],
        "summary_text": case.summary_text,
        "retriage": case.retriage.to_dict() if case.retriage else None,
        "clinician_urgency": clinician_urgency_serialize(urgency=case.clinician_urgency),
        "patient": case.patient.to_dict() if case.patient else None,
        "note": ({"text": case.note.text, "updated_by": case.note.updated_by_name or None,
                  "updated_at": case.note.updated_at.isoformat()} if case.note else None),
        "audit": [audit_event_serialize(event=e) for e in case.audit_events],
    }


def clinician_urgency_serialize(*, urgency: ClinicianUrgency | None) -> dict[str, Any] | None:
    if urgency is None:
        return None
    return {"urgency": urgency.urgency, "urgency_label": Urgency(urgency.urgency).label, "reason": urgency.reason,
            "set_by": urgency.set_by_name or None, "set_at": urgency.set_at.isoformat()}
