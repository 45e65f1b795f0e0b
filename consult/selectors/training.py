"""Reviewed consultations exported as ner_engine training documents (manage.py export_reviewed)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from consult.models import Consultation, Message
from consult.selectors.annotations import messages_with_annotations
from consult.vocabulary import REVIEW_TYPES

def reviewed_documents(*, types: tuple[str, ...] = REVIEW_TYPES) -> Iterator[dict[str, Any]]:
    """Reviewed consultations as ner_engine JSON-lines documents, one per patient message.

    Spans are what the clinician signed off: accepted, corrected and added mentions; rejected ones are left
    out. A mention still pending in a consultation marked reviewed counts as accepted, because marking the
    consultation reviewed means every mention was looked at.
    """
    consultations = Consultation.objects.filter(review__isnull=False).order_by("created_at", "id")
    for consultation in consultations.iterator():
        for message, mentions in messages_with_annotations(consultation=consultation):
            if message.role != Message.Role.PATIENT:
                continue
            spans = sorted({(a.start, a.end, a.type) for a in mentions if a.kept and a.type in types})
            yield {
                "id": f"{consultation.id}-{message.id}",
                "text": message.text,
                "types": list(types),
                "spans": [{"start": start, "end": end, "type": type_} for start, end, type_ in spans],
            }
