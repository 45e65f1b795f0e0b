"""Clinician review of a case, the write side: review actions on mentions (accept, reject, correct, add, and
their context), the case note, the clinician's urgency, the patient's details and the reviewed mark; each
audited. The reviewed view they change is selectors.annotations.

The extractor's Entity rows are never edited here (apart from mirroring the verdict in
`Entity.review_status`): every correction lives in an EntityReview, so the model's original output is
always available next to what the clinician made of it.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from consult import extraction
from consult.extraction import CORE_TYPES
from consult.models import (
    SEX_CHOICES,
    ClinicianNote,
    ClinicianUrgency,
    Consultation,
    ConsultationReview,
    Entity,
    EntityReview,
    Message,
)
from consult.selectors.annotations import PENDING, Annotation, annotation_build, entity_values, review_values
from consult.services.audit import actor_name, audit_record
from consult.services.consultations import consultation_update_push
from consult.vocabulary import ASSERTIONS, REVIEW_TYPES, URGENCY_LEVELS

class ReviewError(ValueError):
    """A review action that cannot be applied; the message is safe to show to the clinician."""



class _Unset:
    def __repr__(self) -> str:
        return "UNSET"



UNSET: Any = _Unset()

NOTE_MAX_CHARS = 5000

URGENCY_REASON_MAX_CHARS = 1000

AGE_MAX_YEARS = 130

SEXES: tuple[str, ...] = tuple(value for value, _ in SEX_CHOICES)



def _codes_brief(annotation: Annotation) -> list[str]:
    return [f"{c['system']} {c['code']}".strip() for c in annotation.codes]



def _snapshot(*, entity: Entity | None, review: EntityReview | None) -> dict[str, Any] | None:
    """What the audit trail records of a mention: review status, values, and its codes ("SYSTEM CODE")."""
    if entity is None and review is None:
        return None
    status = review.status if review is not None else PENDING
    values = review_values(review=review) if review is not None else entity_values(entity=entity)
    return {"status": status, **values, "codes": _codes_brief(annotation_build(entity=entity, review=review))}



def _status_compute(*, entity: Entity | None, values: dict[str, Any]) -> str:
    if entity is None:
        return EntityReview.Status.ADDED
    return EntityReview.Status.ACCEPTED if entity_values(entity=entity) == values else EntityReview.Status.CORRECTED



def _values_validate(*, message: Message, type: str, start: int, end: int, assertion: str | None) -> dict[str, Any]:
    if message.role != Message.Role.PATIENT:
        raise ReviewError("Only the patient's messages are annotated.")
    if type not in REVIEW_TYPES:
        raise ReviewError(f"Unknown entity type {type!r}; choose one of {', '.join(REVIEW_TYPES)}.")
    if assertion is not None and assertion not in ASSERTIONS:
        raise ReviewError(f"Unknown assertion {assertion!r}; choose one of {', '.join(ASSERTIONS)}.")
    try:
        start, end = int(start), int(end)
    except (TypeError, ValueError):
        raise ReviewError("Start and end must be whole numbers.") from None
    if not 0 <= start < end <= len(message.text):
        raise ReviewError(f"The span {start}-{end} is outside the message (0-{len(message.text)}).")
    text = message.text[start:end]
    if not text.strip():
        raise ReviewError("The span covers only whitespace.")
    if text != text.strip():
        raise ReviewError("The span starts or ends with whitespace; move its boundaries onto the words.")
    return {"type": type, "start": start, "end": end, "text": text, "assertion": assertion}



def _entity_review_status_mirror(*, entity: Entity | None, status: str) -> None:
    if entity is None:
        return
    mirrored = {EntityReview.Status.REJECTED: Entity.ReviewStatus.REJECTED,
                EntityReview.Status.CORRECTED: Entity.ReviewStatus.CORRECTED}.get(status, Entity.ReviewStatus.ACCEPTED)
    Entity.objects.filter(pk=entity.pk).update(review_status=mirrored)



def review_target_get(*, consultation: Consultation, entity_id: int | None = None,
                      review_id: int | None = None) -> tuple[Entity | None, EntityReview | None]:
    """The model entity and/or review row an action addresses, only within this consultation."""
    if (entity_id is None) == (review_id is None):
        raise ReviewError("Name exactly one of entity_id (a model mention) or review_id (an added mention).")
    if entity_id is not None:
        entity = (Entity.objects.select_related("message").filter(message__consultation=consultation, pk=entity_id)
                  .first())
        if entity is None:
            raise ReviewError("No such entity in this consultation.")
        return entity, EntityReview.objects.filter(entity=entity).first()
    review = (EntityReview.objects.select_related("message")
              .filter(message__consultation=consultation, pk=review_id, entity__isnull=True).first())
    if review is None:
        raise ReviewError("No such added mention in this consultation.")
    return None, review



def _review_target_lock(*, consultation: Consultation, entity_id: int | None, review_id: int | None):
    """(entity, review, message, snapshot before the change) for a review write; the review row is locked.
    Call inside a transaction. Raises ReviewError as review_target_get does."""
    entity, review = review_target_get(consultation=consultation, entity_id=entity_id, review_id=review_id)
    if review is not None:
        review = EntityReview.objects.select_for_update().get(pk=review.pk)
    return entity, review, (entity or review).message, _snapshot(entity=entity, review=review)



def _context_compute(*, message: Message, values: dict[str, Any]) -> dict[str, Any]:
    """ner_engine.context's assertion, attributes and codes for the reviewed span and type, with the
    message's other model mentions as attribute candidates (consult.extraction.mention_context)."""
    others = [(e.start, e.end, e.type) for e in Entity.objects.filter(message=message)
              if (e.start, e.end) != (values["start"], values["end"])]
    return extraction.mention_context(text=message.text, start=values["start"], end=values["end"],
                                      type=values["type"], others=others)



def _review_stage(*, message: Message, entity: Entity | None, review: EntityReview | None,
                  values: dict[str, Any], status: str, attributes: dict | None, context_state: str,
                  actor) -> EntityReview:
    """The review row with the new values set, not saved yet (so that the audit can compare first)."""
    staged = review if review is not None else EntityReview(message=message, entity=entity)
    for field_name, value in values.items():
        setattr(staged, field_name, value)
    staged.status = status
    staged.attributes = attributes
    staged.context_state = context_state
    staged.reviewed_by = actor if actor_name(actor) else None
    return staged



def entity_review_apply(*, consultation: Consultation, actor, action: str, entity_id: int | None = None,
                        review_id: int | None = None, type: str | None = None, start: int | None = None,
                        end: int | None = None, assertion: str | None = UNSET) -> Annotation:
    """Accept, reject or correct one mention (a model entity or an added one) and audit the change.

    `correct` changes any of type, span and assertion; the values not given stay as they are. When it changes
    the span or the type, the mention's context (assertion, linked attributes, codes) is recomputed for the new
    span and type through ner_engine.context and kept as *proposed* values (EntityReview.context_state
    "proposed") until the clinician accepts (`context_accept`) or edits them (`context_edit`); an assertion the
    clinician changed in the same correction wins over the recomputed one. Correcting back to the model's own
    span and type restores the model's context. Accepting a corrected mention keeps the correction. A change
    that changes nothing writes no audit event. Raises ReviewError.
    """
    if action not in {"accept", "reject", "correct"}:
        raise ReviewError(f"Unknown review action {action!r}.")
    with transaction.atomic():
        entity, review, message, before = _review_target_lock(
            consultation=consultation, entity_id=entity_id, review_id=review_id)
        current = review_values(review=review) if review is not None else entity_values(entity=entity)
        attributes = review.attributes if review is not None else None
        context_state = review.context_state if review is not None else ""
        if action == "correct":
            values = _values_validate(
                message=message,
                type=current["type"] if type is None else type,
                start=current["start"] if start is None else start,
                end=current["end"] if end is None else end,
                assertion=current["assertion"] if assertion is UNSET else assertion,
            )
            where = (values["type"], values["start"], values["end"])
            if entity is not None and where == (entity.type, entity.start, entity.end):
                attributes, context_state = None, ""  # the model's own span and type: its context applies
            elif where != (current["type"], current["start"], current["end"]):
                attributes = _context_compute(message=message, values=values)
                context_state = EntityReview.ContextState.PROPOSED if attributes else ""
                clinician_chose = assertion is not UNSET and assertion != current["assertion"]
                if attributes.get("assertion") and not clinician_chose:
                    values["assertion"] = attributes["assertion"]
        else:
            values = current
        status = EntityReview.Status.REJECTED if action == "reject" else _status_compute(entity=entity, values=values)
        staged = _review_stage(message=message, entity=entity, review=review, values=values, status=status,
                               attributes=attributes, context_state=context_state, actor=actor)
        after = _snapshot(entity=entity, review=staged)
        if after == before:
            return annotation_build(entity=entity, review=review)
        staged.save()
        _entity_review_status_mirror(entity=entity, status=status)
        audit_record(consultation_id=consultation.pk, actor=actor, action=f"entity_{action}", entity=entity,
                      entity_review=staged, before=before, after=after)
    return annotation_build(entity=entity, review=staged)



def entity_add(*, consultation: Consultation, actor, message_id: int, type: str, start: int, end: int,
               assertion: str | None = None) -> Annotation:
    """Record a mention the model missed (selected by the clinician in a patient message).

    Its context (assertion, linked attributes, codes) is computed through ner_engine.context and proposed
    for the clinician to accept or edit; an assertion given here wins over the computed one."""
    message = Message.objects.filter(consultation=consultation, pk=message_id).first()
    if message is None:
        raise ReviewError("No such message in this consultation.")
    values = _values_validate(message=message, type=type, start=start, end=end, assertion=assertion)
    where = {key: values[key] for key in ("type", "start", "end")}
    duplicate = (
        EntityReview.objects.filter(message=message, entity__isnull=True, **where).exists()
        or Entity.objects.filter(message=message, **where).exists()
    )
    if duplicate:
        raise ReviewError("This mention is already annotated; accept or correct it instead.")
    attributes = _context_compute(message=message, values=values)
    if assertion is None and attributes.get("assertion"):
        values["assertion"] = attributes["assertion"]
    with transaction.atomic():
        review = _review_stage(message=message, entity=None, review=None, values=values,
                               status=EntityReview.Status.ADDED, attributes=attributes,
                               context_state=EntityReview.ContextState.PROPOSED if attributes else "", actor=actor)
        review.save()
        audit_record(consultation_id=consultation.pk, actor=actor, action="entity_add", entity_review=review,
                      before=None, after=_snapshot(entity=None, review=review))
    return annotation_build(entity=None, review=review)



def _codes_of(*, entity: Entity | None, review: EntityReview | None) -> list[dict[str, Any]]:
    """The mention's code candidates in ner_engine.context's shape, the stored code first."""
    if review is not None and review.attributes is not None:
        return [dict(c) for c in (review.attributes.get("codes") or []) if isinstance(c, dict)]
    codes = []
    if entity is not None and entity.code:
        codes.append({"system": entity.code_system or "", "code": entity.code, "name": "", "score": 1.0})
    raw = (entity.attributes or {}).get("codes") if entity is not None else None
    codes += [dict(c) for c in (raw or []) if isinstance(c, dict)
              and (c.get("system"), c.get("code")) not in {(d["system"], d["code"]) for d in codes}]
    return codes



def context_review_apply(*, consultation: Consultation, actor, action: str, entity_id: int | None = None,
                         review_id: int | None = None, assertion: str | None = UNSET,
                         codes_keep: list[str] | None = None, code_term: str | None = None) -> Annotation:
    """Accept (`context_accept`) or edit (`context_edit`) a mention's context, audited.

    `context_accept` confirms the values proposed for a corrected or added mention. `context_edit` sets the
    assertion (a value of ASSERTIONS, or None for unknown), keeps only the codes named in `codes_keep`
    ("SYSTEM|CODE" strings), or replaces the codes by those ner_engine.context finds for `code_term` (a term
    the clinician typed, e.g. "neck stiffness"); it works on the model's own mentions too. Raises ReviewError.
    """
    if action not in {"context_accept", "context_edit"}:
        raise ReviewError(f"Unknown review action {action!r}.")
    with transaction.atomic():
        entity, review, message, before = _review_target_lock(
            consultation=consultation, entity_id=entity_id, review_id=review_id)
        values = review_values(review=review) if review is not None else entity_values(entity=entity)
        if action == "context_accept":
            if review is None or review.context_state != EntityReview.ContextState.PROPOSED:
                raise ReviewError("There are no proposed values to accept for this mention.")
            attributes, context_state = review.attributes, EntityReview.ContextState.CONFIRMED
        else:
            if values["type"] not in CORE_TYPES:
                raise ReviewError("Only symptoms, conditions and medicines have an assertion and codes.")
            if review is not None and review.attributes is not None:
                attributes = dict(review.attributes)
            else:
                attributes = dict(entity.attributes or {}) if entity is not None else {}
            codes = _codes_of(entity=entity, review=review)
            if code_term is not None and code_term.strip():
                codes = extraction.term_codes(term=code_term, type=values["type"])
                if not codes:
                    raise ReviewError(f"No code matches “{code_term.strip()}”; try another term.")
                attributes["coded_from_term"] = code_term.strip()
            elif codes_keep is not None:
                keep = set(codes_keep)
                codes = [c for c in codes if f"{c.get('system')}|{c.get('code')}" in keep]
            attributes["codes"] = codes
            if assertion is not UNSET:
                if assertion is not None and assertion not in ASSERTIONS:
                    raise ReviewError(f"Unknown assertion {assertion!r}; choose one of {', '.join(ASSERTIONS)}.")
                values = {**values, "assertion": assertion}
            context_state = EntityReview.ContextState.EDITED
        status = review.status if review is not None else _status_compute(entity=entity, values=values)
        if status not in {EntityReview.Status.REJECTED, EntityReview.Status.ADDED}:
            status = _status_compute(entity=entity, values=values)
        staged = _review_stage(message=message, entity=entity, review=review, values=values, status=status,
                               attributes=attributes, context_state=context_state, actor=actor)
        after = {**_snapshot(entity=entity, review=staged), "context": context_state}
        staged.save()
        _entity_review_status_mirror(entity=entity, status=status)
        audit_record(consultation_id=consultation.pk, actor=actor, action=action, entity=entity,
                      entity_review=staged, before={**before, "context": review.context_state if review else ""},
                      after=after)
    return annotation_build(entity=entity, review=staged)



def clinician_note_save(*, consultation: Consultation, actor, text: str) -> ClinicianNote:
    """Set the clinician's free-text note on a case (empty text clears it); audited as "note_edit" with the
    text before and after. At most NOTE_MAX_CHARS characters; raises ReviewError."""
    text = (text or "").replace("\r\n", "\n").strip()
    if len(text) > NOTE_MAX_CHARS:
        raise ReviewError(f"The note is {len(text)} characters long; at most {NOTE_MAX_CHARS} are kept.")
    with transaction.atomic():
        note, _ = ClinicianNote.objects.select_for_update().get_or_create(consultation=consultation)
        if note.text == text:
            return note
        before = note.text
        note.text = text
        note.updated_by = actor if actor_name(actor) else None
        note.updated_by_name = actor_name(actor)
        note.save()
        audit_record(consultation_id=consultation.pk, actor=actor, action="note_edit",
                      before={"note": before}, after={"note": text})
    return note



def _patient_push(*, consultation: Consultation) -> None:
    """Once committed, push the patient's page its new state (it shows the clinician's urgency and reason)."""
    transaction.on_commit(lambda: consultation_update_push(consultation_id=consultation.pk), robust=True)



def clinician_urgency_save(*, consultation: Consultation, actor, urgency: str, reason: str) -> ClinicianUrgency:
    """Set the consultation's urgency as a clinician decided it (one of URGENCY_LEVELS), with a required reason
    that the patient's page shows; audited as "urgency_override" with the level and reason before and after
    (before: the clinician's earlier ones, else the interview's level). The interview's own level
    (`Consultation.urgency`) is kept as it was. Raises ReviewError."""
    reason = (reason or "").replace("\r\n", "\n").strip()
    if urgency not in URGENCY_LEVELS:
        raise ReviewError(f"Unknown urgency {urgency!r}; choose one of {', '.join(URGENCY_LEVELS)}.")
    if not reason:
        raise ReviewError("Give a reason for the urgency; the patient reads it.")
    if len(reason) > URGENCY_REASON_MAX_CHARS:
        raise ReviewError(f"The reason is {len(reason)} characters long; at most {URGENCY_REASON_MAX_CHARS} "
                          "are kept.")
    with transaction.atomic():
        Consultation.objects.select_for_update().filter(pk=consultation.pk).first()
        current = ClinicianUrgency.objects.filter(consultation=consultation).first()
        if current is not None and (current.urgency, current.reason) == (urgency, reason):
            return current
        before = ({"urgency": current.urgency, "reason": current.reason, "set_by": "clinician"} if current else
                  {"urgency": consultation.urgency, "set_by": "interview"})
        current = current or ClinicianUrgency(consultation=consultation)
        current.urgency, current.reason = urgency, reason
        current.set_by = actor if actor_name(actor) else None
        current.set_by_name = actor_name(actor)
        current.save()
        audit_record(consultation_id=consultation.pk, actor=actor, action="urgency_override", before=before,
                      after={"urgency": urgency, "reason": reason, "set_by": "clinician"})
        _patient_push(consultation=consultation)
    return current



def patient_details_save(*, consultation: Consultation, actor, age: float | str | None,
                         sex: str | None) -> Consultation:
    """Set the patient's age (years, 0-130; None or "" clears it) and sex ("female" | "male"; None or "" clears
    it) as the clinician knows them; a cleared value falls back to the interview's answer. Audited as
    "patient_details_edit" with the clinician's values before and after. Raises ReviewError."""
    if age in (None, ""):
        age = None
    else:
        try:
            age = float(age)
        except (TypeError, ValueError):
            raise ReviewError("The age must be a number of years.") from None
        if not 0 <= age <= AGE_MAX_YEARS:
            raise ReviewError(f"The age must be between 0 and {AGE_MAX_YEARS} years.")
        age = round(age, 2)
    sex = sex or ""
    if sex and sex not in SEXES:
        raise ReviewError(f"Unknown sex {sex!r}; choose one of {', '.join(SEXES)}.")
    with transaction.atomic():
        locked = Consultation.objects.select_for_update().get(pk=consultation.pk)
        before = {"age": locked.age, "sex": locked.sex}
        after = {"age": age, "sex": sex}
        if before != after:
            locked.age, locked.sex = age, sex
            locked.save(update_fields=["age", "sex", "updated_at"])
            audit_record(consultation_id=consultation.pk, actor=actor, action="patient_details_edit",
                          before=before, after=after)
    consultation.age, consultation.sex = age, sex
    return consultation



def consultation_review_mark(*, consultation: Consultation, actor, reviewed: bool) -> ConsultationReview | None:
    """Mark the consultation reviewed (or take the mark back); only reviewed ones are exported for training."""
    with transaction.atomic():
        existing = ConsultationReview.objects.select_for_update().filter(consultation=consultation).first()
        if reviewed == (existing is not None):
            return existing
        if reviewed:
            mark = ConsultationReview.objects.create(
                consultation=consultation, reviewed_by=actor if actor_name(actor) else None,
                reviewed_at=timezone.now(),
            )
            audit_record(consultation_id=consultation.pk, actor=actor, action="consultation_reviewed",
                          before={"reviewed": False}, after={"reviewed": True})
            return mark
        existing.delete()
        audit_record(consultation_id=consultation.pk, actor=actor, action="consultation_unreviewed",
                      before={"reviewed": True}, after={"reviewed": False})
        return None
