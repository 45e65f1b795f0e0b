"""Building blocks for the clinician-workspace tests: consultations with stored entities, no model needed."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from consult.models import Consultation, Entity, Message, TriageEvent
from consult.triage import knowledge_load
from consult.services.consultations import consultation_create

FIRST = "I have had a bad headache and fever since Monday. I take ibuprofen. No chest pain."
SECOND = "I also have asthma and a stiff neck."


def user_create(*, username: str, role: str):
    """role: clinician | admin | plain."""
    User = get_user_model()
    user = User.objects.create_user(username=username, password="pw-" + username)
    if role == "clinician":
        group, _ = Group.objects.get_or_create(name="clinician")
        user.groups.add(group)
    elif role == "admin":
        user.is_staff = True
        user.is_superuser = True
        user.save()
    return user


def entity_create(message: Message, surface: str, type_: str, *, assertion: str | None = None,
                  occurrence: int = 0, **extra) -> Entity:
    start = -1
    for _ in range(occurrence + 1):
        start = message.text.index(surface, start + 1)
    return Entity.objects.create(
        message=message, type=type_, text=surface, start=start, end=start + len(surface), score=0.9,
        model_version="test-model-1", template_version="builtin", assertion=assertion, **extra,
    )


def case_create(*, urgency: str | None = "consultation_24", closed: bool = False) -> tuple[Consultation, str]:
    """A consultation with two processed patient messages, replies, entities and triage events."""
    consultation, token = consultation_create()
    first = Message.objects.create(consultation=consultation, role=Message.Role.PATIENT, text=FIRST,
                                   status=Message.Status.PROCESSED, model_version="test-model-1")
    reply = Message.objects.create(consultation=consultation, role=Message.Role.ASSISTANT, reply_to=first,
                                   status=Message.Status.PROCESSED,
                                   text="Do you have any other medical conditions?")
    second = Message.objects.create(consultation=consultation, role=Message.Role.PATIENT, text=SECOND,
                                    status=Message.Status.PROCESSED, model_version="test-model-1")
    entity_create(first, "headache", "SYMPTOM", assertion="present")
    entity_create(first, "fever", "SYMPTOM", assertion="present", attributes={"duration": "since Monday"})
    entity_create(first, "ibuprofen", "DRUG", assertion="present", code="5640", code_system="RXNORM")
    entity_create(first, "chest pain", "SYMPTOM", assertion="absent")
    entity_create(second, "asthma", "DISEASE", assertion="present")
    red_flag = knowledge_load().red_flags[0].id  # any red flag of the shipped knowledge base
    TriageEvent.objects.create(consultation=consultation, message=first, rule_id="general:conditions",
                               reason="Asked: Do you have any long-term conditions?", urgency=None)
    TriageEvent.objects.create(consultation=consultation, message=second, rule_id=red_flag,
                               reason="Fever with a stiff neck", urgency=urgency)
    consultation.urgency = urgency
    consultation.triage_state = {
        "answered": {str(second.id): "general:conditions"}, "asked": {str(first.id): "general:conditions"},
        "pending_question": None,
        "decision": {"record": {"complaints": ["headache", "fever"], "duration": "since Monday",
                                "conditions": ["asthma"], "medications": [], "declined": []},
                     "red_flags": [red_flag]},
    }
    if closed:
        consultation.status = Consultation.Status.CLOSED
    consultation.save()
    return consultation, token
