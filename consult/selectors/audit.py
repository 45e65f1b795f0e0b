"""The audit trail of a consultation, oldest first, as the case page and the API show it."""
from __future__ import annotations

from typing import Any

from consult.models import AuditEvent, Consultation

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
