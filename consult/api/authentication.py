"""Patients have no accounts: the bearer token issued with a consultation is their credential."""
from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from consult.selectors.consultation import consultation_get_by_token



class PatientTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <patient token>` -> (AnonymousUser, Consultation) in request.auth."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        consultation = consultation_get_by_token(token=token)
        if consultation is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return AnonymousUser(), consultation

    def authenticate_header(self, request) -> str:
        return self.keyword


# The clinician, template and extraction endpoints: token first, so that an anonymous request is answered 401
# with a WWW-Authenticate challenge; a patient token opens its own case.
WORKSPACE_AUTHENTICATION = [TokenAuthentication, PatientTokenAuthentication, SessionAuthentication]
