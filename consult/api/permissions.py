from rest_framework.permissions import BasePermission

from consult.models import Consultation


class IsPatient(BasePermission):
    """A valid patient token was presented. Which consultation it opens is checked by the view,
    which answers 404 (not 403) for any other consultation so that ids cannot be probed."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Consultation)
