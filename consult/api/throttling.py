from rest_framework.throttling import SimpleRateThrottle


class ConsultationCreateThrottle(SimpleRateThrottle):
    """Limits how many consultations one client address starts; shared by the API and the start page."""

    scope = "consultation_create"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
