"""Who may do what: the one definition of clinician, template admin and integrator, shared by the
clinician pages and the REST API."""
from __future__ import annotations

CLINICIAN_GROUP = "clinician"
INTEGRATOR_GROUP = "integrator"


def _in_group(user, name: str) -> bool:
    return user.groups.filter(name=name).exists()


def user_is_clinician(*, user) -> bool:
    """Clinicians see every consultation and review it; superusers count as clinicians."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_superuser or _in_group(user, CLINICIAN_GROUP)


def user_is_template_admin(*, user) -> bool:
    """Only admins edit prompt templates: superusers, or accounts granted change_prompttemplate."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_superuser or user.has_perm("consult.change_prompttemplate")


def user_may_extract(*, user) -> bool:
    """The extraction API is for integrators' systems (and for clinicians and admins trying it out)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user_is_clinician(user=user) or user_is_template_admin(user=user) or _in_group(user, INTEGRATOR_GROUP)
