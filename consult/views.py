"""Patient pages. They hold no patient data: the chat page reads its state with the patient token,
which lives in the URL fragment (never sent to the server, so never in server logs or Referer)."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from consult.api.throttling import ConsultationCreateThrottle
from consult.services.consultations import consultation_create


def _content_security_policy(request: HttpRequest) -> str:
    # Scripts and styles only from our own static files; websockets only back to this host.
    scheme = "wss" if request.is_secure() else "ws"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {scheme}://{request.get_host()}; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    )


def _page(request: HttpRequest, template: str, context: dict | None = None) -> HttpResponse:
    response = render(request, template, context or {})
    response["Content-Security-Policy"] = _content_security_policy(request)
    return response


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    return _page(request, "consult/home.html")


@require_POST
def consultation_start(request: HttpRequest) -> HttpResponse:
    if not ConsultationCreateThrottle().allow_request(request, None):
        response = _page(request, "consult/home.html", {"throttled": True})
        response.status_code = 429
        return response
    consultation, token = consultation_create()
    url = reverse("consultation-chat", kwargs={"consultation_id": consultation.id})
    response = HttpResponseRedirect(f"{url}#{token}")
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def consultation_chat(request: HttpRequest, consultation_id: uuid.UUID) -> HttpResponse:
    response = _page(request, "consult/chat.html", {"consultation_id": str(consultation_id), "message_max_chars": settings.MESSAGE_MAX_CHARS})
    response["Cache-Control"] = "no-store"
    return response
