"""Write-side business logic: starting consultations, accepting messages, processing them."""
from __future__ import annotations

import functools
import logging
import secrets
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from consult import delivery, extraction, selectors
from consult.triage.evidence import habit_words_match
from consult.models import Consultation, Entity, Message, RecordItem, TriageEvent, Urgency

logger = logging.getLogger(__name__)

RECORD_TYPES = frozenset(RecordItem.Type.values)
RECORD_KEY_MAX_CHARS = 255
# Edge characters that are never part of what a record item is ("headache." == "Headache").
RECORD_KEY_TRIM = " \t\r\n.,;:!?\"'()[]{}"
FALLBACK_REPLY = "Thank you. Is there anything else you would like to tell me about how you feel?"


class MessageRejected(ValueError):
    """A patient message that is not accepted; `message` is safe to show to the patient."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# Consultations -------------------------------------------------------------------------------------


def consultation_create() -> tuple[Consultation, str]:
    """A new consultation and its patient token. The token is returned once and only its hash is kept."""
    token = secrets.token_urlsafe(32)
    consultation = Consultation.objects.create(token_hash=selectors.patient_token_hash(token=token))
    return consultation, token


def consultation_update_push(*, consultation_id: uuid.UUID) -> None:
    """Send the full state to every open page of this consultation. Best effort: a page that misses
    a push re-reads the state when it reconnects."""
    consultation = Consultation.objects.get(pk=consultation_id)
    state = selectors.consultation_state_get(consultation=consultation)
    channel_layer = get_channel_layer()
    if channel_layer is None:
        return
    try:
        async_to_sync(channel_layer.group_send)(
            consultation.group_name, {"type": "consultation.update", "state": state}
        )
    except Exception:
        logger.exception("Could not push the update of consultation %s", consultation_id)


# Messages ------------------------------------------------------------------------------------------


def message_text_validate(*, text: Any) -> str:
    """The text to store, or MessageRejected. Long messages are refused, never silently truncated."""
    if not isinstance(text, str):
        raise MessageRejected("The message must be text.", code="invalid")
    text = text.strip()
    if not text:
        raise MessageRejected("The message is empty.", code="empty")
    max_chars = settings.MESSAGE_MAX_CHARS
    if len(text) > max_chars:
        raise MessageRejected(
            f"The message is too long ({len(text)} characters; the limit is {max_chars}). "
            "Please shorten it or send it in parts.",
            code="too_long",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MessageRejected("The message contains invalid characters.", code="invalid") from None
    if any(unicodedata.category(char) == "Cc" and char not in "\n\t" for char in text):
        raise MessageRejected("The message contains control characters.", code="invalid")
    return text


def message_create(*, consultation: Consultation, text: Any) -> Message:
    """Store the patient's message first, then queue it for processing once the row is committed,
    so that a worker can never pick up a message that is not in the database yet. If Redis is
    unreachable the message stays queued (the page shows it pending) rather than being lost."""
    text = message_text_validate(text=text)
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().get(pk=consultation.pk)
        # A concluded consultation takes more messages: the patient may add "my neck is stiff" after the
        # verdict, and the interview re-triages (the urgency never falls).
        message = Message.objects.create(
            consultation=consultation, role=Message.Role.PATIENT, text=text, status=Message.Status.QUEUED
        )
        Consultation.objects.filter(pk=consultation.pk).update(updated_at=timezone.now())
        transaction.on_commit(lambda: delivery.message_enqueue(message_id=message.id), robust=True)
        transaction.on_commit(lambda: consultation_update_push(consultation_id=consultation.pk), robust=True)
    return message


def message_fail(*, message_id: int, error: str) -> None:
    updated = Message.objects.filter(pk=message_id).exclude(status=Message.Status.PROCESSED).update(
        status=Message.Status.FAILED, error=error[:1000]
    )
    if updated:
        message = Message.objects.only("consultation_id").get(pk=message_id)
        consultation_update_push(consultation_id=message.consultation_id)


def record_key_normalize(*, text: str) -> str:
    return " ".join(text.casefold().split()).strip(RECORD_KEY_TRIM)[:RECORD_KEY_MAX_CHARS]


def prompt_templates_sync() -> None:
    overrides, version = selectors.prompt_templates_active()
    extraction.templates_apply(overrides=overrides, version=version)


def _entities_valid(*, text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    valid = []
    for entity in entities:
        start, end = entity["start"], entity["end"]
        if 0 <= start < end <= len(text) and text[start:end] == entity["text"]:
            valid.append(entity)
        else:
            logger.warning("Dropping an entity whose offsets do not match its text: %r", entity)
    return valid


def message_entities_replace(
    *, message: Message, entities: list[dict[str, Any]], model_version: str, template_version: str
) -> list[Entity]:
    """Write the message's entities, replacing any from an earlier run, and merge the record.

    Idempotent: processing the same message again leaves one set of entities and no duplicate
    record items. Call inside a transaction holding the consultation's row lock.
    """
    consultation = message.consultation
    previous_item_ids = set(
        Entity.objects.filter(message=message, record_item__isnull=False).values_list("record_item_id", flat=True)
    )
    Entity.objects.filter(message=message).delete()

    created: list[Entity] = []
    for entity in _entities_valid(text=message.text, entities=entities):
        attributes = dict(entity.get("attributes") or {})
        assertion = attributes.get("assertion")
        record_item = None
        # A habit the extractor typed as a medicine ("I smoke") is a habit, never a medicine in the record.
        is_habit = entity["type"] == "DRUG" and habit_words_match(text=entity["text"])
        if entity["type"] in RECORD_TYPES and not is_habit:
            key = record_key_normalize(text=entity["text"])
            if key:
                record_item, was_created = RecordItem.objects.get_or_create(
                    consultation=consultation,
                    type=entity["type"],
                    key=key,
                    defaults={
                        "text": entity["text"].strip()[:RECORD_KEY_MAX_CHARS],
                        "first_seen_message": message,
                        "assertion": assertion,
                    },
                )
                if not was_created and assertion and record_item.assertion != assertion:
                    # The latest statement wins: "no fever" after "fever" means the fever has gone.
                    record_item.assertion = assertion
                    record_item.save(update_fields=["assertion"])
        created.append(
            Entity.objects.create(
                message=message,
                record_item=record_item,
                type=entity["type"],
                text=entity["text"],
                start=entity["start"],
                end=entity["end"],
                score=entity["score"],
                model_version=model_version,
                template_version=template_version,
                assertion=assertion,
                attributes=attributes or None,
            )
        )
    # Items that only an earlier run of this message produced are no longer supported by any mention.
    RecordItem.objects.filter(pk__in=previous_item_ids, mentions__isnull=True).delete()
    return created


# Triage --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def triage_engine_get():
    """The interview engine, built once per process: the knowledge base, the DDXPlus differential when
    settings.DDXPLUS_DIR holds DDXPlus (else the knowledge base alone) and ner_engine's assertion rules."""
    from consult.triage import DifferentialModel, TriageEngine, knowledge_load

    knowledge = knowledge_load()
    differential = None
    directory = settings.DDXPLUS_DIR
    if directory and (directory / "release_conditions.json").exists():
        differential = DifferentialModel.from_directory(directory, groups=knowledge.ddxplus_groups())
    else:
        logger.warning("DDXPlus not found at %s: the interview runs without its differential", directory)
    return TriageEngine(knowledge, differential=differential, assertion_of=extraction.assertions_detect)


def triage_input_build(*, consultation: Consultation, messages: Sequence[tuple[Message, Iterable[Any]]],
                       current: Message, answered: Mapping[str, str], previous_urgency: str | None):
    """The interview's input for `messages` (patient messages in order, each with its mentions: objects with
    start, end, type, text, attributes and assertion, i.e. Entity rows or review Annotations). `answered` maps a
    message id (str) to the question it answered; the questions asked after every message but `current` come
    from the consultation's triage state (`current`'s own question is decided now)."""
    from consult.triage import TriageInput, Turn

    turns = tuple(
        Turn(text=message.text, answered=answered.get(str(message.id)), entities=tuple(
            {"start": m.start, "end": m.end, "type": m.type, "text": m.text,
             "attributes": {**(m.attributes or {}), "assertion": m.assertion}} for m in mentions))
        for message, mentions in messages
    )
    asked_after = (consultation.triage_state or {}).get("asked") or {}
    asked = tuple(asked_after[str(m.id)] for m, _ in messages if m.id != current.id and asked_after.get(str(m.id)))
    return TriageInput(turns=turns, asked=asked, previous_urgency=previous_urgency,
                       age=consultation.age, sex=consultation.sex or None)


def _triage_input_build(*, consultation: Consultation, message: Message, answered: dict[str, str]):
    messages = list(
        consultation.messages.filter(role=Message.Role.PATIENT, created_at__lte=message.created_at)
        .exclude(status=Message.Status.FAILED)
        .order_by("created_at", "id")
        .prefetch_related("entities")
    )
    return triage_input_build(consultation=consultation, messages=[(m, m.entities.all()) for m in messages],
                              current=message, answered=answered, previous_urgency=consultation.urgency)


def _reply_text_build(*, decision) -> str:
    if decision.concluded:
        return decision.summary or FALLBACK_REPLY
    parts = [decision.advice, decision.question.text if decision.question else None]
    return "\n\n".join(part for part in parts if part) or FALLBACK_REPLY


def consultation_triage(*, consultation: Consultation, message: Message) -> Message:
    """Run the interview over the whole conversation; store its reply, urgency, state and reasons.

    Call inside a transaction holding the consultation's row lock. Returns the assistant's reply. The message
    answers the question that was pending when it was processed; the urgency never falls.
    """
    state = dict(consultation.triage_state or {})
    answered = dict(state.get("answered") or {})
    pending = state.get("pending_question") or {}
    answered.setdefault(str(message.id), pending.get("id"))
    decision = triage_engine_get().decide(
        _triage_input_build(consultation=consultation, message=message, answered=answered)
    )
    # {patient message id: the question asked after it}: re-processing a message rewrites its own entry.
    asked = {key: value for key, value in (state.get("asked") or {}).items() if key != str(message.id)}
    question = decision.question
    if question is not None:
        asked[str(message.id)] = question.id
    consultation.triage_state = {
        "answered": answered,
        "asked": asked,
        "pending_question": {"id": question.id, "text": question.text} if question else None,
        "decision": decision.to_dict(),
    }
    if Urgency.rank(decision.urgency) > Urgency.rank(consultation.urgency):
        consultation.urgency = decision.urgency
    consultation.summary = decision.summary or ""
    consultation.status = Consultation.Status.CLOSED if decision.concluded else Consultation.Status.OPEN
    consultation.save(update_fields=["triage_state", "urgency", "summary", "status", "updated_at"])

    TriageEvent.objects.filter(message=message).delete()
    events = [
        TriageEvent(consultation=consultation, message=message, rule_id=reason.rule_id, reason=reason.describe(),
                     urgency=reason.urgency)
        for reason in decision.reasons
    ]
    if question is not None:
        events.append(TriageEvent(consultation=consultation, message=message, rule_id=question.id,
                                  reason=f"Asked: {question.text}", urgency=None))
    TriageEvent.objects.bulk_create(events)

    reply, _ = Message.objects.update_or_create(
        reply_to=message,
        defaults={
            "consultation": consultation,
            "role": Message.Role.ASSISTANT,
            "text": _reply_text_build(decision=decision),
            "status": Message.Status.PROCESSED,
            "processed_at": timezone.now(),
        },
    )
    return reply


# Processing ----------------------------------------------------------------------------------------

NOT_ENGLISH_REPLY = (
    "Sorry, I can only understand English for now, so I have not added this message to your record. "
    "Please write in English, or ask someone to help you. If you think this is an emergency, call your local "
    "emergency number (999 in the UK, 112 in Europe) now."
)


def _message_not_english(*, message_id: int, language: str) -> Message:
    """A message in another language: stored and answered, but nothing extracted and no triage from it."""
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().get(pk=Message.objects.get(pk=message_id).consultation_id)
        message = Message.objects.select_for_update().get(pk=message_id)
        if message.status == Message.Status.PROCESSED:
            return message
        message_entities_replace(message=message, entities=[], model_version="", template_version="")
        Message.objects.update_or_create(
            reply_to=message,
            defaults={"consultation": consultation, "role": Message.Role.ASSISTANT, "text": NOT_ENGLISH_REPLY,
                      "status": Message.Status.PROCESSED, "processed_at": timezone.now()},
        )
        message.status = Message.Status.PROCESSED
        message.error = ""
        message.processed_at = timezone.now()
        message.save(update_fields=["status", "error", "processed_at"])
        logger.info("Message %s looks like %r, not English: not extracted", message_id, language)
        transaction.on_commit(lambda: consultation_update_push(consultation_id=consultation.pk), robust=True)
    return message



def message_process(*, message_id: int) -> Message:
    """Extract entities from a queued patient message, merge them into the record, triage, reply.

    Safe to run more than once for the same message (broker redelivery, retries): entities are
    replaced, the reply is rewritten, and a message already processed is left alone. The slow
    extraction runs outside any transaction; everything it produces is written in one.
    """
    message = Message.objects.select_related("consultation").get(pk=message_id, role=Message.Role.PATIENT)
    if message.status == Message.Status.PROCESSED:
        return message

    Message.objects.filter(pk=message_id).update(status=Message.Status.PROCESSING, error="")
    consultation_update_push(consultation_id=message.consultation_id)

    language = extraction.language_detect(text=message.text)
    if not language["english"]:
        return _message_not_english(message_id=message_id, language=language["language"])

    prompt_templates_sync()
    result = extraction.entities_extract(text=message.text)

    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().get(pk=message.consultation_id)
        message = Message.objects.select_for_update().select_related("consultation").get(pk=message_id)
        if message.status == Message.Status.PROCESSED:
            return message
        message.consultation = consultation
        message_entities_replace(
            message=message,
            entities=result.entities,
            model_version=result.model_version,
            template_version=result.template_version,
        )
        consultation_triage(consultation=consultation, message=message)
        message.status = Message.Status.PROCESSED
        message.error = ""
        message.processed_at = timezone.now()
        message.model_version = result.model_version
        message.template_version = result.template_version
        message.save(update_fields=["status", "error", "processed_at", "model_version", "template_version"])
        transaction.on_commit(lambda: consultation_update_push(consultation_id=consultation.pk), robust=True)
    return message
