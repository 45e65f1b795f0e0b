"""The interview's turn when a patient message is processed: run it over the whole conversation and store its
reply, urgency, state and reasons."""
from __future__ import annotations

from django.utils import timezone

from consult.interview import triage_engine_get, triage_input_build
from consult.models import Consultation, Message, TriageEvent, Urgency

FALLBACK_REPLY = "Thank you. Is there anything else you would like to tell me about how you feel?"



def _triage_input_build(*, consultation: Consultation, message: Message, answered: dict[str, str]):
    messages = list(
        consultation.messages.filter(role=Message.Role.PATIENT, created_at__lte=message.created_at)
        .exclude(status=Message.Status.FAILED)
        .order_by("created_at", "id")
        .prefetch_related("entities")
    )
    return triage_input_build(consultation=consultation, messages=[(m, m.entities.all()) for m in messages],
                              current=message, answered=answered, previous_urgency=consultation.urgency)



def _reply_text_build(*, decision, previous_advice: str | None) -> str:
    """The assistant's reply: the summary once concluded; else the advice, when it is new (a parent in the
    patient trial read the same croup paragraph above each of 24 questions; it stays in the chat above and comes
    back in the summary), then the next question."""
    if decision.concluded:
        return decision.summary or FALLBACK_REPLY
    advice = decision.advice if decision.advice != previous_advice else None
    parts = [advice, decision.question.text if decision.question else None]
    return "\n\n".join(part for part in parts if part) or FALLBACK_REPLY



def consultation_triage(*, consultation: Consultation, message: Message) -> Message:
    """Run the interview over the whole conversation; store its reply, urgency, state and reasons.

    Call inside a transaction holding the consultation's row lock. Returns the assistant's reply. The message
    answers the question that was pending when it was processed; the urgency never falls.
    """
    state = dict(consultation.triage_state or {})
    previous_advice = (state.get("decision") or {}).get("advice")
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
            "text": _reply_text_build(decision=decision, previous_advice=previous_advice),
            "status": Message.Status.PROCESSED,
            "processed_at": timezone.now(),
        },
    )
    return reply
