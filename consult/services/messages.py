"""Patient messages: accepting one (validated, stored, then queued once committed) and processing it in a worker
(extraction, the record, the interview's reply). Processing is idempotent: delivery may run it more than once."""
from __future__ import annotations

import logging
import unicodedata
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from consult import delivery, extraction
from consult.models import RECORD_KEY_MAX_CHARS, Consultation, Entity, Message, RecordItem, record_key_normalize
from consult.services.consultations import consultation_update_push
from consult.services.prompt_templates import prompt_templates_sync
from consult.services.triage import consultation_triage
from consult.triage.evidence import habit_words_match

logger = logging.getLogger(__name__)

RECORD_TYPES = frozenset(RecordItem.Type.values)



class MessageRejected(ValueError):
    """A patient message that is not accepted; `message` is safe to show to the patient."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code



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
