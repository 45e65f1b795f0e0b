"""The reviewed view of a consultation's mentions: each model entity with the clinician's review of it, and the
mentions a clinician added, as one read model (Annotation); and the message text cut into highlightable pieces.

The extractor's Entity rows are never edited by a review (apart from mirroring the verdict in
`Entity.review_status`): every correction lives in an EntityReview, so the model's original output is
always available next to what the clinician made of it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Prefetch

from consult.models import Consultation, Entity, EntityReview, Message

PENDING = "pending"

KEPT_STATUSES = frozenset({PENDING, EntityReview.Status.ACCEPTED, EntityReview.Status.CORRECTED,
                           EntityReview.Status.ADDED})

# Keys the extractor's clinical-context stage (ner_engine.context) adds to Entity.attributes about how it typed
# a mention, not about the patient: they stay in the stored attributes (API, audit) and are never shown as one
# of the finding's attributes. `retyped_from` is set only when a DISEASE span whose best ICD-10-CM candidate is
# in chapter R (symptoms and signs) is retyped to SYMPTOM. `coded_from_term` is the term a clinician had coded
# instead of the mention's own words (context_review_apply).
PROVENANCE_KEYS = frozenset({"retyped_from", "coded_from_term"})



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



def entity_values(*, entity: Entity) -> dict[str, Any]:
    return {"type": entity.type, "start": entity.start, "end": entity.end, "text": entity.text,
            "assertion": entity.assertion}



def review_values(*, review: EntityReview) -> dict[str, Any]:
    return {"type": review.type, "start": review.start, "end": review.end, "text": review.text,
            "assertion": review.assertion}



def annotation_build(*, entity: Entity | None, review: EntityReview | None) -> Annotation:
    if entity is None and review is None:
        raise ValueError("an annotation needs an entity or a review")
    values = review_values(review=review) if review is not None else entity_values(entity=entity)
    original = None
    if entity is not None and review is not None and entity_values(entity=entity) != values:
        original = entity_values(entity=entity)
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
