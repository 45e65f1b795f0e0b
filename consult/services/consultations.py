"""Consultations: starting one, and pushing its state to the patient's open pages."""
from __future__ import annotations

import logging
import secrets
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from consult.models import Consultation
from consult.selectors.consultation import consultation_state_get, patient_token_hash

logger = logging.getLogger(__name__)


def consultation_create() -> tuple[Consultation, str]:
    """A new consultation and its patient token. The token is returned once and only its hash is kept."""
    token = secrets.token_urlsafe(32)
    consultation = Consultation.objects.create(token_hash=patient_token_hash(token=token))
    return consultation, token



def consultation_update_push(*, consultation_id: uuid.UUID) -> None:
    """Send the full state to every open page of this consultation. Best effort: a page that misses
    a push re-reads the state when it reconnects."""
    consultation = Consultation.objects.get(pk=consultation_id)
    state = consultation_state_get(consultation=consultation)
    channel_layer = get_channel_layer()
    if channel_layer is None:
        return
    try:
        async_to_sync(channel_layer.group_send)(
            consultation.group_name, {"type": "consultation.update", "state": state}
        )
    except Exception:
        logger.exception("Could not push the update of consultation %s", consultation_id)
