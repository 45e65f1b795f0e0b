"""Clinician review of extracted entities: the reviewed view of a consultation, review actions with their
audit trail, and the export of reviewed consultations as training documents.

The extractor's Entity rows are never edited here (apart from mirroring the verdict in
`Entity.review_status`): every correction lives in an EntityReview, so the model's original output is
always available next to what the clinician made of it.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from consult import extraction
from consult.extraction import CORE_TYPES
from consult.models import (
    SEX_CHOICES,
    AuditEvent,
    ClinicianNote,
    ClinicianUrgency,
    Consultation,
    ConsultationReview,
    Entity,
    EntityReview,
    Message,
)
from consult.vocabulary import ASSERTIONS, URGENCY_LABELS, URGENCY_LEVELS

# What a clinician may annotate; also the `types` of exported documents, which tells training that every
# mention of these types in the text was annotated (a missing one is a true negative).
REVIEW_TYPES: tuple[str, ...] = ("SYMPTOM", "DISEASE", "DRUG", "ANATOMY", "DURATION", "SEVERITY")
PENDING = "pending"
KEPT_STATUSES = frozenset({PENDING, EntityReview.Status.ACCEPTED, EntityReview.Status.CORRECTED,
                           EntityReview.Status.ADDED})
# Keys the extractor's clinical-context stage (ner_engine.context) adds to Entity.attributes about how it typed
# a mention, not about the patient: they stay in the stored attributes (API, audit) and are never shown as one
# of the finding's attributes. `retyped_from` is set only when a DISEASE span whose best ICD-10-CM candidate is
# in chapter R (symptoms and signs) is retyped to SYMPTOM. `coded_from_term` is the term a clinician had coded
# instead of the mention's own words (context_review_apply).
PROVENANCE_KEYS = frozenset({"retyped_from", "coded_from_term"})


class ReviewError(ValueError):
    """A review action that cannot be applied; the message is safe to show to the clinician."""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Annotation:
    """One mention as the clinician sees it: the model's entity with any review applied, or an added one."""

    key: str  # "e<entity id>" or "r<review id>": unique within a consultation
    message_id: int
    entity_id: int | None
    review_id: int | None
    status: str  # pending | accepted | rejected | corrected | added
    type: str
    start: int
    end: int
    text: str
    assertion: str | None
    score: float | None = None
    model_version: str = ""
    template_version: str = ""
    attributes: dict | None = None
    code: str | None = None
    code_system: str | None = None
    original: dict | None = None  # the model's values, when a clinician changed them
    # "" while the model's context (assertion, attributes, codes) applies; else EntityReview.ContextState:
    # "proposed" (recomputed for a corrected or added mention, awaiting the clinician), "confirmed", "edited".
    context_state: str = ""

    @property
    def kept(self) -> bool:
        return self.status in KEPT_STATUSES

    @property
    def attribute_texts(self) -> dict[str, str]:
        """Linked attributes as {kind: text}, e.g. {"duration": "since Monday"}.

        Reads ner_engine.context's shape ({"attributes": {kind: {"text", "start", "end"}}}) and plain
        {kind: text} pairs alike.
        """
        raw = self.attributes or {}
        found: dict[str, str] = {}
        for kind, value in (raw.get("attributes") or {}).items():
            text = value.get("text") if isinstance(value, dict) else value
            if isinstance(text, (str, int, float)) and str(text).strip():
                found[kind] = str(text)
        for key, value in raw.items():
            if (key not in {"assertion", "attributes", "codes"} | PROVENANCE_KEYS
                    and isinstance(value, (str, int, float))):
                found.setdefault(key, str(value))
        return found

    @property
    def provenance(self) -> list[str]:
        """How the extractor arrived at this mention's type, as notes for a tooltip (never the summary), e.g.
        "model type: DISEASE, retyped by ICD-10-CM chapter R (R50.9)"."""
        notes = []
        retyped_from = (self.attributes or {}).get("retyped_from")
        if isinstance(retyped_from, str) and retyped_from and not self.context_state:
            icd = next((c["code"] for c in self.codes if c["system"] == "ICD-10-CM" and c["code"].startswith("R")),
                       None)
            notes.append(f"model type: {retyped_from}, retyped by ICD-10-CM chapter R" + (f" ({icd})" if icd else ""))
        term = (self.attributes or {}).get("coded_from_term")
        if isinstance(term, str) and term:
            notes.append(f"coded by a clinician from the term “{term}”")
        return notes

    @property
    def preferred_term(self) -> str | None:
        """The name of the best code (e.g. HPO "Stiff neck" for "neck feels really stiff"), or None when the
        mention is uncoded or its best code has no name."""
        named = [c for c in self.codes if c["name"]]
        return named[0]["name"] if named else None

    @property
    def context_pending(self) -> bool:
        return self.context_state == EntityReview.ContextState.PROPOSED

    @property
    def codes(self) -> list[dict[str, str]]:
        """Terminology codes as [{"system", "code", "name"}]: the stored code, then the best one per system
        from ner_engine.context's candidates."""
        codes = []
        if self.code:
            codes.append({"system": self.code_system or "", "code": self.code, "name": ""})
        seen = {c["system"] for c in codes}
        candidates = (self.attributes or {}).get("codes") or []
        for candidate in sorted((c for c in candidates if isinstance(c, dict) and c.get("code")),
                                key=lambda c: -float(c.get("score") or 0)):
            system = str(candidate.get("system") or "")
            if system not in seen:
                seen.add(system)
                codes.append({"system": system, "code": str(candidate["code"]), "name": str(candidate.get("name") or "")})
        return codes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "codes": self.codes, "preferred_term": self.preferred_term}


def _entity_values(entity: Entity) -> dict[str, Any]:
    return {"type": entity.type, "start": entity.start, "end": entity.end, "text": entity.text,
            "assertion": entity.assertion}


def _review_values(review: EntityReview) -> dict[str, Any]:
    return {"type": review.type, "start": review.start, "end": review.end, "text": review.text,
            "assertion": review.assertion}


def annotation_build(*, entity: Entity | None, review: EntityReview | None) -> Annotation:
    if entity is None and review is None:
        raise ValueError("an annotation needs an entity or a review")
    values = _review_values(review) if review is not None else _entity_values(entity)
    original = None
    if entity is not None and review is not None and _entity_values(entity) != values:
        original = _entity_values(entity)
    recomputed = review is not None and review.attributes is not None
    if recomputed:
        # The context was recomputed for the reviewed span and type: the model's codes no longer apply.
        attributes, code, code_system = (review.attributes or None), None, None
    elif entity is not None:
        attributes, code, code_system = (entity.attributes or None), entity.code, entity.code_system
    else:
        attributes, code, code_system = None, None, None
    return Annotation(
        key=f"e{entity.id}" if entity is not None else f"r{review.id}",
        message_id=(entity or review).message_id,
        entity_id=entity.id if entity is not None else None,
        review_id=review.id if review is not None else None,
        status=review.status if review is not None else PENDING,
        score=round(entity.score, 4) if entity is not None else None,
        model_version=entity.model_version if entity is not None else "",
        template_version=entity.template_version if entity is not None else "",
        attributes=attributes,
        code=code,
        code_system=code_system,
        original=original,
        context_state=review.context_state if recomputed else "",
        **values,
    )


def messages_with_annotations(*, consultation: Consultation) -> list[tuple[Message, list[Annotation]]]:
    """Every message of the consultation, oldest first, each with its annotations in text order."""
    messages = (
        Message.objects.filter(consultation=consultation)
        .order_by("created_at", "id")
        .prefetch_related(
            Prefetch("entities", queryset=Entity.objects.select_related("review").order_by("start", "end", "id")),
            Prefetch("entity_reviews", queryset=EntityReview.objects.filter(entity__isnull=True)),
        )
    )
    result = []
    for message in messages:
        annotations = []
        for entity in message.entities.all():
            # A missing reverse one-to-one raises an AttributeError subclass, which getattr turns into None.
            review = getattr(entity, "review", None)
            annotations.append(annotation_build(entity=entity, review=review))
        annotations += [annotation_build(entity=None, review=review) for review in message.entity_reviews.all()]
        annotations.sort(key=lambda a: (a.start, a.end, a.key))
        result.append((message, annotations))
    return result


def consultation_annotations(*, consultation: Consultation) -> list[Annotation]:
    return [a for _, annotations in messages_with_annotations(consultation=consultation) for a in annotations]


# Highlighting -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextSegment:
    text: str
    # Those covering this stretch: the ones in force (not rejected) first, then outermost (earliest, longest)
    # first. The first one is the highlight's style; the others are named in its title.
    annotations: tuple[Annotation, ...]


def text_segments(*, text: str, annotations: Iterable[Annotation]) -> list[TextSegment]:
    """Cut the text at every annotation boundary, so that overlapping mentions can all be highlighted in place
    by a template that escapes every piece (no HTML is ever built from patient text).

    Where a rejected mention and one in force (pending, accepted, corrected, added) cover the same words, the
    one in force comes first: e.g. a model's "sweating" rejected as a condition and re-added as a symptom is
    shown as a symptom."""
    annotations = [a for a in annotations if 0 <= a.start < a.end <= len(text)]
    cuts = sorted({0, len(text), *(a.start for a in annotations), *(a.end for a in annotations)})
    segments = []
    for start, end in zip(cuts, cuts[1:]):
        covering = tuple(sorted((a for a in annotations if a.start <= start and end <= a.end),
                                key=lambda a: (not a.kept, a.start, -a.end, a.key)))
        segments.append(TextSegment(text=text[start:end], annotations=covering))
    return segments


# Review actions -----------------------------------------------------------------------------------------


def _actor_name(actor) -> str:
    return actor.get_username() if actor is not None and getattr(actor, "is_authenticated", False) else ""


def _audit_record(*, consultation_id: uuid.UUID, actor, action: str, entity: Entity | None = None,
                  entity_review: EntityReview | None = None, before: dict | None, after: dict | None) -> AuditEvent:
    return AuditEvent.objects.create(
        consultation_id=consultation_id,
        actor=actor if _actor_name(actor) else None,
        actor_name=_actor_name(actor),
        action=action,
        entity=entity,
        entity_review=entity_review,
        before=before,
        after=after,
    )


def _codes_brief(annotation: Annotation) -> list[str]:
    return [f"{c['system']} {c['code']}".strip() for c in annotation.codes]


def _snapshot(*, entity: Entity | None, review: EntityReview | None) -> dict[str, Any] | None:
    """What the audit trail records of a mention: review status, values, and its codes ("SYSTEM CODE")."""
    if entity is None and review is None:
        return None
    status = review.status if review is not None else PENDING
    values = _review_values(review) if review is not None else _entity_values(entity)
    return {"status": status, **values, "codes": _codes_brief(annotation_build(entity=entity, review=review))}


def _status_compute(*, entity: Entity | None, values: dict[str, Any]) -> str:
    if entity is None:
        return EntityReview.Status.ADDED
    return EntityReview.Status.ACCEPTED if _entity_values(entity) == values else EntityReview.Status.CORRECTED


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
    staged.reviewed_by = actor if _actor_name(actor) else None
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
        current = _review_values(review) if review is not None else _entity_values(entity)
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
        _audit_record(consultation_id=consultation.pk, actor=actor, action=f"entity_{action}", entity=entity,
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
        _audit_record(consultation_id=consultation.pk, actor=actor, action="entity_add", entity_review=review,
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
        values = _review_values(review) if review is not None else _entity_values(entity)
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
        _audit_record(consultation_id=consultation.pk, actor=actor, action=action, entity=entity,
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
        note.updated_by = actor if _actor_name(actor) else None
        note.updated_by_name = _actor_name(actor)
        note.save()
        _audit_record(consultation_id=consultation.pk, actor=actor, action="note_edit",
                      before={"note": before}, after={"note": text})
    return note


NOTE_MAX_CHARS = 5000
URGENCY_REASON_MAX_CHARS = 1000
AGE_MAX_YEARS = 130
SEXES: tuple[str, ...] = tuple(value for value, _ in SEX_CHOICES)


def _patient_push(*, consultation: Consultation) -> None:
    """Once committed, push the patient's page its new state (it shows the clinician's urgency and reason)."""
    from consult import services  # services imports the extraction stack; only the push is needed here

    transaction.on_commit(lambda: services.consultation_update_push(consultation_id=consultation.pk), robust=True)


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
        current.set_by = actor if _actor_name(actor) else None
        current.set_by_name = _actor_name(actor)
        current.save()
        _audit_record(consultation_id=consultation.pk, actor=actor, action="urgency_override", before=before,
                      after={"urgency": urgency, "reason": reason, "set_by": "clinician"})
        _patient_push(consultation=consultation)
    return current


def urgency_label(*, urgency: str | None) -> str | None:
    return URGENCY_LABELS.get(urgency) if urgency else None


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
            _audit_record(consultation_id=consultation.pk, actor=actor, action="patient_details_edit",
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
                consultation=consultation, reviewed_by=actor if _actor_name(actor) else None,
                reviewed_at=timezone.now(),
            )
            _audit_record(consultation_id=consultation.pk, actor=actor, action="consultation_reviewed",
                          before={"reviewed": False}, after={"reviewed": True})
            return mark
        existing.delete()
        _audit_record(consultation_id=consultation.pk, actor=actor, action="consultation_unreviewed",
                      before={"reviewed": True}, after={"reviewed": False})
        return None


def audit_events_get(*, consultation: Consultation) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(consultation=consultation).order_by("created_at", "id"))


def audit_event_serialize(*, event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "action": event.action,
        "actor": event.actor_name or None,
        "entity_id": event.entity_id,
        "review_id": event.entity_review_id,
        "before": event.before,
        "after": event.after,
        "created_at": event.created_at.isoformat(),
    }


# Training export ----------------------------------------------------------------------------------------


def reviewed_documents(*, types: tuple[str, ...] = REVIEW_TYPES) -> Iterator[dict[str, Any]]:
    """Reviewed consultations as ner_engine JSON-lines documents, one per patient message.

    Spans are what the clinician signed off: accepted, corrected and added mentions; rejected ones are left
    out. A mention still pending in a consultation marked reviewed counts as accepted, because marking the
    consultation reviewed means every mention was looked at.
    """
    consultations = Consultation.objects.filter(review__isnull=False).order_by("created_at", "id")
    for consultation in consultations.iterator():
        for message, annotations in messages_with_annotations(consultation=consultation):
            if message.role != Message.Role.PATIENT:
                continue
            spans = sorted({(a.start, a.end, a.type) for a in annotations if a.kept and a.type in types})
            yield {
                "id": f"{consultation.id}-{message.id}",
                "text": message.text,
                "types": list(types),
                "spans": [{"start": start, "end": end, "type": type_} for start, end, type_ in spans],
            }
