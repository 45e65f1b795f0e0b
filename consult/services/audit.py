"""The audit trail's writes: who did what to a consultation, with the values before and after."""
from __future__ import annotations

import uuid

from consult.models import AuditEvent, Entity, EntityReview

def actor_name(actor) -> str:
    """The username of a signed-in actor; "" for none (a system change) or an anonymous one."""
    return actor.get_username() if actor is not None and getattr(actor, "is_authenticated", False) else ""



def audit_record(*, consultation_id: uuid.UUID, actor, action: str, entity: Entity | None = None,
                  entity_review: EntityReview | None = None, before: dict | None, after: dict | None) -> AuditEvent:
    return AuditEvent.objects.create(
        consultation_id=consultation_id,
        actor=actor if actor_name(actor) else None,
        actor_name=actor_name(actor),
        action=action,
        entity=entity,
        entity_review=entity_review,
        before=before,
        after=after,
    )
