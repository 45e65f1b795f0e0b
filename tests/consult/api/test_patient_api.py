"""REST API and patient pages through Django's test client, against the real database."""
import re
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from consult.api.throttling import ConsultationCreateThrottle
from consult.models import Consultation, Message
from consult.services.consultations import consultation_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def post_json(client, url, body, token):
    return client.generic("POST", url, body, content_type="application/json", **bearer(token))


def messages_url(consultation_id):
    return f"/api/consultations/{consultation_id}/messages/"


# Creating and reading -----------------------------------------------------------------------------


def test_create_returns_id_and_token_that_opens_the_consultation(api):
    response = api.post("/api/consultations/")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "patient_token"}
    detail = api.get(f"/api/consultations/{body['id']}/", **bearer(body["patient_token"]))
    assert detail.status_code == 200
    state = detail.json()
    assert state["id"] == body["id"]
    assert state["status"] == "open"
    assert state["urgency"] is None
    assert state["record"] == {"symptoms": [], "diseases": [], "drugs": []}
    assert state["messages"] == []
    assert state["next_question"] is None
    assert state["triage"] == []


def test_create_is_rate_limited(api, monkeypatch):
    monkeypatch.setattr(ConsultationCreateThrottle, "THROTTLE_RATES", {"consultation_create": "2/hour"})
    assert [api.post("/api/consultations/").status_code for _ in range(3)] == [201, 201, 429]


def test_post_message_is_stored_queued_and_shows_in_state(api, consultation, patient_token):
    response = post_json(api, messages_url(consultation.id), '{"text": "I have a headache"}', patient_token)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    message = Message.objects.get(pk=body["id"])
    assert (message.text, message.status, message.consultation_id) == ("I have a headache", "queued", consultation.id)

    state = api.get(f"/api/consultations/{consultation.id}/", **bearer(patient_token)).json()
    [shown] = state["messages"]
    assert shown == {**shown, "id": message.id, "role": "patient", "text": "I have a headache",
                     "status": "queued", "error": "", "entities": []}


# Who may see what ---------------------------------------------------------------------------------


def test_other_patients_consultation_is_404(api, consultation, patient_token):
    other, other_token = consultation_create()
    assert api.get(f"/api/consultations/{other.id}/", **bearer(patient_token)).status_code == 404
    response = post_json(api, messages_url(other.id), '{"text": "hi"}', patient_token)
    assert response.status_code == 404
    assert not Message.objects.exists()


def test_unknown_id_is_404_like_a_foreign_one(api, patient_token):
    assert api.get(f"/api/consultations/{uuid.uuid4()}/", **bearer(patient_token)).status_code == 404


@pytest.mark.parametrize("headers", [
    {},
    {"HTTP_AUTHORIZATION": "Bearer"},
    {"HTTP_AUTHORIZATION": "Bearer not-a-real-token"},
    {"HTTP_AUTHORIZATION": "Token abc"},
    {"HTTP_AUTHORIZATION": "Bearer a b"},
])
def test_missing_or_bad_token_is_401_for_any_id(api, consultation, headers):
    for consultation_id in (consultation.id, uuid.uuid4()):
        response = api.get(f"/api/consultations/{consultation_id}/", **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"


def test_token_is_not_accepted_in_the_query_string(api, consultation, patient_token):
    assert api.get(f"/api/consultations/{consultation.id}/?token={patient_token}").status_code == 401


# Bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, fragment", [
    ('{"text": ', "JSON parse error"),
    ("not json", "JSON parse error"),
    ('["I have a headache"]', "JSON object"),
    ("{}", "required"),
    ('{"text": ""}', "empty"),
    ('{"text": "   \\n "}', "empty"),
    ('{"text": null}', "null"),
    ('{"text": "nul \\u0000 byte"}', "Null characters"),
])
def test_bad_message_is_400_with_a_clear_reason(api, consultation, patient_token, body, fragment):
    response = post_json(api, messages_url(consultation.id), body, patient_token)
    assert response.status_code == 400
    assert fragment.lower() in response.content.decode().lower()
    assert not Message.objects.exists()


def test_oversize_message_is_refused_not_truncated(api, consultation, patient_token, settings):
    settings.MESSAGE_MAX_CHARS = 50
    response = post_json(api, messages_url(consultation.id), '{"text": "%s"}' % ("a" * 51), patient_token)
    assert response.status_code == 400
    body = response.json()
    assert "too long" in body["errors"]["text"][0] and body["detail"] == body["errors"]["text"][0]
    assert not Message.objects.exists()
    exact = post_json(api, messages_url(consultation.id), '{"text": "%s"}' % ("a" * 50), patient_token)
    assert exact.status_code == 202
    assert Message.objects.get().text == "a" * 50


def test_concluded_consultation_still_takes_messages(api, consultation, patient_token):
    # After the verdict a patient may add what they forgot; the interview re-triages it.
    Consultation.objects.filter(pk=consultation.pk).update(status="closed")
    response = post_json(api, messages_url(consultation.id), '{"text": "my neck is stiff too"}', patient_token)
    assert response.status_code == 202
    assert Message.objects.get().text == "my neck is stiff too"


# Pages --------------------------------------------------------------------------------------------


def test_start_needs_csrf():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/start/").status_code == 403
    assert not Consultation.objects.exists()


def test_start_redirects_to_a_private_link_that_opens_the_consultation(api):
    client = Client(enforce_csrf_checks=True)
    home = client.get("/")
    assert home.status_code == 200
    assert b"Start consultation" in home.content
    csrf = client.cookies["csrftoken"].value
    response = client.post("/start/", {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    match = re.fullmatch(r"/c/([0-9a-f-]{36})/#([A-Za-z0-9_-]{40,})", response["Location"])
    assert match, response["Location"]
    consultation_id, token = match.groups()
    assert api.get(f"/api/consultations/{consultation_id}/", **bearer(token)).status_code == 200


def test_chat_page_has_the_stable_hooks_and_a_strict_csp(consultation):
    response = Client().get(f"/c/{consultation.id}/")
    assert response.status_code == 200
    html = response.content.decode()
    for hook in ('id="message-input"', 'id="send-button"', 'id="messages"', 'id="record-symptoms"',
                 'id="record-diseases"', 'id="record-drugs"', 'id="urgency"', "consult/chat.js"):
        assert hook in html
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "maxlength" not in html  # browsers would silently cut pasted text


def test_static_chat_script_is_served():
    response = Client().get("/static/consult/chat.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"innerHTML" not in body
