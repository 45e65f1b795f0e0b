"""Who may call which endpoint: patients (a token opens its own consultation), clinicians, template admins and
integrators."""
from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from consult import access
from consult.models import Consultation


class IsPatient(BasePermission):
    """A valid patient token was presented. Which consultation it opens is checked by the view,
    which answers 404 (not 403) for any other consultation so that ids cannot be probed."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Consultation)


class IsClinician(BasePermission):
    message = "Only clinicians may do this."

    def has_permission(self, request, view) -> bool:
        return access.user_is_clinician(user=request.user)


class IsClinicianOrPatient(BasePermission):
    """Clinicians, or a patient token; which consultation a patient may open is checked by the view
    (404 for any other, so that ids cannot be probed)."""

    def has_permission(self, request, view) -> bool:
        return access.user_is_clinician(user=request.user) or isinstance(request.auth, Consultation)


class IsTemplateAdminOrClinicianReadOnly(BasePermission):
    message = "Only administrators may change prompt templates."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return access.user_is_clinician(user=request.user) or access.user_is_template_admin(user=request.user)
        return access.user_is_template_admin(user=request.user)


class MayExtract(BasePermission):
    message = "This account may not use the extraction API."

    def has_permission(self, request, view) -> bool:
        return access.user_may_extract(user=request.user)
