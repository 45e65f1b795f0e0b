"""Celery tasks: thin wrappers around services, routed to the `ner` queue."""
from __future__ import annotations

import logging

from django.conf import settings

from config.celery_app import app
from consult import delivery, extraction
from consult.models import Message
from consult.services import messages as message_services

logger = logging.getLogger(__name__)


@app.task(
    bind=True,
    name=delivery.MESSAGE_PROCESS_TASK,
    acks_late=True,
    max_retries=settings.MESSAGE_PROCESS_MAX_RETRIES,
)
def message_process(self, message_id: int) -> None:
    # While this worker holds the message the sweeper leaves it alone; if the worker dies, the lease
    # runs out and the sweeper re-queues it (consult/delivery.py).
    delivery.message_lease_set(message_id=message_id, seconds=settings.MESSAGE_LEASE_S)
    try:
        message_services.message_process(message_id=message_id)
    except Message.DoesNotExist:
        logger.warning("Message %s no longer exists; nothing to process", message_id)
    except Exception as exc:
        attempt = self.request.retries + 1
        if self.request.retries >= self.max_retries:
            logger.exception("Message %s failed after %d attempts", message_id, attempt)
            reason = (
                "its language model is not available"
                if isinstance(exc, extraction.ModelUnavailable)
                else exc.__class__.__name__
            )
            message_services.message_fail(
                message_id=message_id,
                error=f"The assistant could not process this message after {attempt} attempts "
                f"({reason}). Please try sending it again.",
            )
        else:
            countdown = 2**self.request.retries
            logger.warning("Message %s failed (attempt %d), retrying in %d s: %r", message_id, attempt, countdown, exc)
            delivery.message_lease_set(message_id=message_id, seconds=countdown + settings.MESSAGE_LEASE_S)
            raise self.retry(exc=exc, countdown=countdown)
    delivery.message_lease_release(message_id=message_id)
