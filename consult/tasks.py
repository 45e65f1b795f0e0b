"""Celery tasks: thin wrappers around services, routed to the `ner` queue."""
from __future__ import annotations

import logging

from django.conf import settings

from consult import services
from consult.celery import app
from consult.models import Message

logger = logging.getLogger(__name__)


@app.task(
    bind=True,
    name="consult.tasks.message_process",
    acks_late=True,
    max_retries=settings.MESSAGE_PROCESS_MAX_RETRIES,
)
def message_process(self, message_id: int) -> None:
    try:
        services.message_process(message_id=message_id)
    except Message.DoesNotExist:
        logger.warning("Message %s no longer exists; nothing to process", message_id)
    except Exception as exc:
        attempt = self.request.retries + 1
        if self.request.retries >= self.max_retries:
            logger.exception("Message %s failed after %d attempts", message_id, attempt)
            services.message_fail(
                message_id=message_id,
                error=f"The assistant could not process this message after {attempt} attempts "
                f"({exc.__class__.__name__}). Please try sending it again.",
            )
            return
        logger.warning("Message %s failed (attempt %d), retrying: %r", message_id, attempt, exc)
        raise self.retry(exc=exc, countdown=2**self.request.retries)
