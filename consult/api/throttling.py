from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from consult import security


class ConsultationCreateThrottle(SimpleRateThrottle):
    """Limits how many consultations one client address starts; shared by the API and the start page."""

    scope = "consultation_create"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class PatientMessageThrottle(BaseThrottle):
    """PATIENT_MESSAGE_RATE per consultation, one budget shared with the websocket (consult.security)."""

    def allow_request(self, request, view) -> bool:
        # The token's own consultation, not the URL's: nobody can spend another patient's budget.
        consultation_id = getattr(request.auth, "pk", None)
        if consultation_id is None:
            return True  # not a patient: permissions answer 401/403 before anything is stored
        self.retry_after = security.patient_message_limit_hit(consultation_id=consultation_id)
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after
