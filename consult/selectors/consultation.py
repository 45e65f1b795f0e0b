"""A consultation as the patient sees it: the token lookup, and the one serialisation of a consultation shared by
the API and the websocket."""
from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Any

from django.db.models import Count, Prefetch

from consult.models import (
    ClinicianUrgency,
    Consultation,
    Entity,
    Message,
    RecordItem,
    TriageEvent,
    Urgency,
)

RECORD_SECTIONS: dict[str, str] = {
    RecordItem.Type.SYMPTOM: "symptoms",
    RecordItem.Type.DISEASE: "diseases",
    RecordItem.Type.DRUG: "drugs",
}


def patient_token_hash(*, token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def consultation_get_by_token(*, token: str) -> Consultation | None:
    """The consultation a patient token opens, or None. Tokens are 256-bit random, so an indexed
    lookup by their hash cannot be used to guess one."""
    if not token or len(token) > 256:
        return None
    try:
        token_hash = patient_token_hash(token=token)
    except UnicodeEncodeError:
        return None
    consultation = Consultation.objects.filter(token_hash=token_hash).first()
    if consultation is None or not hmac.compare_digest(consultation.token_hash, token_hash):
        return None
    return consultation


def consultation_get_for_patient(*, consultation_id: uuid.UUID | str, token: str) -> Consultation | None:
    """The consultation if `token` opens exactly this one; None for unknown ids and foreign tokens alike."""
    consultation = consultation_get_by_token(token=token)
    if consultation is None or str(consultation.id) != str(consultation_id):
        return None
    return consultation


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def entity_serialize(*, entity: Entity) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": entity.id,
        "start": entity.start,
        "end": entity.end,
        "type": entity.type,
        "text": entity.text,
        "score": round(entity.score, 4),
        "assertion": entity.assertion,
        "review_status": entity.review_status,
        "record_item_id": entity.record_item_id,
    }
    if entity.code:
        data["code"] = entity.code
        data["code_system"] = entity.code_system
    if entity.attributes:
        data["attributes"] = entity.attributes
    return data


def message_serialize(*, message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "text": message.text,
        "status": message.status,
        "error": message.error,
        "reply_to": message.reply_to_id,
        "created_at": _iso(message.created_at),
        "processed_at": _iso(message.processed_at),
        "model_version": message.model_version,
        "template_version": message.template_version,
        "entities": [entity_serialize(entity=entity) for entity in message.entities.all()],
    }


def record_item_serialize(*, record_item: RecordItem) -> dict[str, Any]:
    return {
        "id": record_item.id,
        "type": record_item.type,
        "text": record_item.text,
        "key": record_item.key,
        "assertion": record_item.assertion,
        "first_seen_at": _iso(record_item.first_seen_at),
        "first_seen_message_id": record_item.first_seen_message_id,
        "mentions": getattr(record_item, "mention_count", None),
    }


def triage_event_serialize(*, event: TriageEvent) -> dict[str, Any]:
    return {
        "rule_id": event.rule_id,
        "reason": event.reason,
        "urgency": event.urgency,
        "message_id": event.message_id,
        "created_at": _iso(event.created_at),
    }


def clinician_review_serialize(*, consultation: Consultation) -> dict[str, Any] | None:
    """What the patient reads of a clinician's review: the urgency a clinician set and their reason (the
    clinician's name and internal note are not shown). None until a clinician sets an urgency."""
    override = ClinicianUrgency.objects.filter(consultation=consultation).first()
    if override is None:
        return None
    return {"urgency": override.urgency, "urgency_label": Urgency(override.urgency).label,
            "reason": override.reason, "reviewed_at": _iso(override.set_at)}


def consultation_state_get(*, consultation: Consultation) -> dict[str, Any]:
    """Everything the patient's page shows. JSON- and msgpack-safe (sent through the channel layer)."""
    consultation = (
        Consultation.objects.filter(pk=consultation.pk)
        .prefetch_related(
            Prefetch(
                "messages",
                queryset=Message.objects.order_by("created_at", "id").prefetch_related(
                    Prefetch("entities", queryset=Entity.objects.order_by("start", "end", "id"))
                ),
            ),
            Prefetch(
                "record_items",
                queryset=RecordItem.objects.annotate(mention_count=Count("mentions")).order_by("first_seen_at", "id"),
            ),
            Prefetch("triage_events", queryset=TriageEvent.objects.order_by("created_at", "id")),
        )
        .get()
    )
    record: dict[str, list[dict[str, Any]]] = {section: [] for section in RECORD_SECTIONS.values()}
    for record_item in consultation.record_items.all():
        section = RECORD_SECTIONS.get(record_item.type)
        if section is not None:
            record[section].append(record_item_serialize(record_item=record_item))

    pending_question = (consultation.triage_state or {}).get("pending_question")
    next_question = (
        {"id": pending_question.get("id"), "text": pending_question.get("text")}
        if consultation.status == Consultation.Status.OPEN and pending_question
        else None
    )
    decision = (consultation.triage_state or {}).get("decision") or {}
    return {
        "id": str(consultation.id),
        "status": consultation.status,
        # What the patient should do: the interview's advice for the level it reached (red flag or disposition).
        "advice": decision.get("advice") or "",
        "urgency": consultation.urgency,
        "urgency_label": Urgency(consultation.urgency).label if consultation.urgency else None,
        "summary": consultation.summary,
        "created_at": _iso(consultation.created_at),
        "updated_at": _iso(consultation.updated_at),
        "record": record,
        "messages": [message_serialize(message=message) for message in consultation.messages.all()],
        "next_question": next_question,
        "triage": [triage_event_serialize(event=event) for event in consultation.triage_events.all()],
        # The urgency a clinician set after reviewing, with their reason; `urgency` stays the interview's.
        "clinician_review": clinician_review_serialize(consultation=consultation),
    }
