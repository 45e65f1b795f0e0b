"""One error shape for the whole API (REST_FRAMEWORK["EXCEPTION_HANDLER"]).

Every error body is a JSON object with a human-readable `detail` string:

    {"detail": "Not found."}                                    404, 401, 403, 405, 429, ...
    {"detail": "<first message>", "errors": {field: [messages]}} 400 validation errors

For a validation error `detail` is the first message as it stands (fit to show on its own, e.g. the patient's
"The message is too long ..."), and `errors` maps each field to its messages as DRF's serializers give them
(a list of strings, or for nested and list fields a dict/list of those); errors not about one field are under
"non_field_errors". A business rule the review service refuses (services.review.ReviewError) is a 400
{"detail": message}; a template that fails to parse on revert answers the same shape from its view. Headers set
by DRF (WWW-Authenticate, Retry-After) stay.
"""
from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from consult.services.review import ReviewError


def _first_message(errors: Any) -> str:
    if isinstance(errors, dict):
        for value in errors.values():
            message = _first_message(value)
            if message:
                return message
        return ""
    if isinstance(errors, (list, tuple)):
        for value in errors:
            message = _first_message(value)
            if message:
                return message
        return ""
    return str(errors)


def error_body(*, errors: Any) -> dict[str, Any]:
    """The body of a validation error from DRF's `ValidationError.detail` (a dict, a list or a string)."""
    if not isinstance(errors, dict):
        errors = {api_settings.NON_FIELD_ERRORS_KEY: errors if isinstance(errors, list) else [errors]}
    return {"detail": _first_message(errors) or "Invalid input.", "errors": errors}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ReviewError):
        return Response({"detail": str(exc)}, status=400)
    response = drf_exception_handler(exc, context)
    if response is None:  # not an API error (a bug): Django answers 500 and logs it
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(errors=response.data)
    elif not (isinstance(response.data, dict) and isinstance(response.data.get("detail"), str)):
        response.data = {"detail": _first_message(response.data) or "Error."}
    return response
