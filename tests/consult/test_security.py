"""Hostile input and abuse: bad messages over the API and the websocket, markup and SQL in patient text,
probing other patients' ids, CSRF on every form, rate limits, sign-in lockout, production settings, and
property-based tests of the extractor's offsets. A few checks run against a real Daphne (frame-level
limits exist only there); the rest through Django's test client and Channels' communicator.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from consult import extraction, security
from consult.api.throttling import ConsultationCreateThrottle
from config.asgi import application
from tools.launcher import ROOT, Supervisor, free_port, http_wait, manage_command, web_command
from consult.models import Consultation, Message, PromptTemplate
from consult.services.consultations import consultation_create
from review_helpers import case_create, user_create

ORIGIN = (b"origin", b"http://localhost")
HOSTILE_HTML = '<script>alert("x")</script><img src=x onerror=alert(1)> I have a headache'
SQL_LIKE = "headache'); DROP TABLE consult_message; -- \" OR 1=1; SELECT * FROM auth_user"


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def messages_url(consultation_id):
    return f"/api/consultations/{consultation_id}/messages/"


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def started(db):
    return consultation_create()


# Bad messages over the API -------------------------------------------------------------------------


@pytest.mark.parametrize("body, code_fragment", [
    ({"text": ""}, "empty"),
    ({"text": "   \n\t  "}, "empty"),
    ({"text": "x" * 1_000_000}, "too long"),
    ({"text": "pain\u0000here"}, "null"),
    ({"text": "pain\u0007here"}, "control"),
    ({"text": "bad \ud800 surrogate"}, "surrogate"),
    ({"text": ["a", "list"]}, "string"),
    ({}, "required"),
])
def test_api_refuses_bad_messages_and_stores_nothing(api, started, body, code_fragment):
    consultation, token = started
    response = api.generic("POST", messages_url(consultation.id), json.dumps(body), content_type="application/json",
                           **bearer(token))
    assert response.status_code == 400, response.content[:200]
    assert code_fragment in json.dumps(response.json()).lower()
    assert not Message.objects.exists()


@pytest.mark.parametrize("raw, content_type, status", [
    (b"\xff\xfe{\"text\": \"hi\"}", "application/json", 400),   # invalid UTF-8
    (b'{"text": "\xc3\x28"}', "application/json", 400),         # invalid UTF-8 inside the string
    (bytes(range(256)) * 64, "application/octet-stream", 415),  # binary
    (b"{not json", "application/json", 400),
    (b'["a", "list"]', "application/json", 400),
])
def test_api_refuses_binary_and_undecodable_bodies(api, started, raw, content_type, status):
    consultation, token = started
    response = api.generic("POST", messages_url(consultation.id), raw, content_type=content_type, **bearer(token))
    assert response.status_code == status
    assert not Message.objects.exists()


@pytest.mark.parametrize("text", [HOSTILE_HTML, SQL_LIKE])
def test_markup_and_sql_are_stored_and_returned_verbatim(api, started, text):
    consultation, token = started
    response = api.generic("POST", messages_url(consultation.id), json.dumps({"text": text}),
                           content_type="application/json", **bearer(token))
    assert response.status_code == 202
    assert Message.objects.get().text == text
    state = api.get(f"/api/consultations/{consultation.id}/", **bearer(token))
    assert state["Content-Type"].startswith("application/json")
    assert state["X-Content-Type-Options"] == "nosniff"
    assert state.json()["messages"][0]["text"] == text
    # Nothing was executed: the tables are all still there.
    assert Consultation.objects.count() == 1 and Message.objects.count() == 1


def test_patient_text_is_escaped_on_every_clinician_page(db):
    consultation, _ = case_create()
    Message.objects.create(consultation=consultation, role=Message.Role.PATIENT, text=HOSTILE_HTML,
                           status=Message.Status.PROCESSED)
    Consultation.objects.filter(pk=consultation.pk).update(summary=HOSTILE_HTML)
    client = Client()
    client.force_login(user_create(username="doc", role="clinician"))
    for url in ("/clinician/", f"/clinician/consultations/{consultation.id}/",
                f"/clinician/consultations/{consultation.id}/summary/"):
        body = client.get(url).content.decode()
        assert '<script>alert("x")' not in body and "<img src=x" not in body, url
    assert "&lt;script&gt;" in client.get(f"/clinician/consultations/{consultation.id}/").content.decode()


def test_patient_page_scripts_never_write_html_from_data():
    # The chat page renders every message client-side: only textContent / createElement, never markup.
    for script in (ROOT / "static" / "consult").glob("*.js"):
        source = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, f"{script.name} uses {sink}"


# Other patients' and unknown ids: 404, never 403 -----------------------------------------------------


def test_probing_ids_is_always_404(api, db):
    mine, my_token = consultation_create()
    theirs, _ = consultation_create()
    unknown = uuid.uuid4()
    for consultation_id in (theirs.id, unknown):
        for method, url in (("GET", f"/api/consultations/{consultation_id}/"),
                            ("POST", messages_url(consultation_id)),
                            ("GET", f"/api/cases/{consultation_id}/fhir/")):
            response = api.generic(method, url, json.dumps({"text": "hi"}), content_type="application/json",
                                   **bearer(my_token))
            assert response.status_code == 404, (method, url, response.status_code)
        # Clinician-only endpoints refuse a patient whatever the id, their own included: no existence oracle.
        assert (api.get(f"/api/cases/{consultation_id}/", **bearer(my_token)).status_code
                == api.get(f"/api/cases/{mine.id}/", **bearer(my_token)).status_code)
    assert not Message.objects.exists()
    clinician = Client()
    clinician.force_login(user_create(username="doc", role="clinician"))
    for suffix in ("", "summary/", "fhir.json"):
        assert clinician.get(f"/clinician/consultations/{unknown}/{suffix}").status_code == 404


# CSRF on every form ------------------------------------------------------------------------------------


FORM = re.compile(r"<form\b[^>]*\bmethod=\"post\"[^>]*>", re.IGNORECASE)
ACTION = re.compile(r"\baction=\"([^\"]*)\"")


def test_every_post_form_carries_a_token_and_is_refused_without_it(db):
    consultation, _ = case_create()
    template = PromptTemplate.objects.create(entity_type="SYMPTOM", text="Find {anchor}.", anchor_words=["symptom"])
    user_create(username="boss", role="admin")
    pages = {
        None: ["/", "/accounts/login/"],
        "doc": ["/clinician/", f"/clinician/consultations/{consultation.id}/"],
        "boss": ["/admin/", "/admin/consult/prompttemplate/add/", f"/admin/consult/prompttemplate/{template.pk}/change/"],
    }
    user_create(username="doc", role="clinician")
    checked = []
    for username, urls in pages.items():
        client = Client(enforce_csrf_checks=True)
        if username:
            client.force_login(get_user(username))
        for url in urls:
            page = client.get(url)
            assert page.status_code == 200, url
            html = page.content.decode()
            for form in FORM.finditer(html):
                end = html.find("</form>", form.end())
                assert "csrfmiddlewaretoken" in html[form.end():end], f"form without a token on {url}"
                match = ACTION.search(form.group(0))
                action = match.group(1).replace("&amp;", "&") if match and match.group(1) else url
                response = client.post(action, {"username": "doc", "password": "pw-doc", "reviewed": "1"})
                assert response.status_code == 403, (url, action, response.status_code)
                checked.append(action)
    assert {"/start/", "/accounts/login/", "/accounts/logout/",
            f"/clinician/consultations/{consultation.id}/review/",
            f"/clinician/consultations/{consultation.id}/reviewed/"} <= set(checked), checked
    assert Consultation.objects.count() == 1
    assert not consultation.__class__.objects.filter(review__isnull=False).exists()


def get_user(username):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def test_session_authenticated_api_writes_need_csrf(db):
    consultation, _ = case_create()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user_create(username="doc", role="clinician"))
    response = client.post(f"/api/cases/{consultation.id}/reviewed/", {"reviewed": True}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


# Rate limits -------------------------------------------------------------------------------------------


def test_api_messages_are_rate_limited_per_consultation(api, started, settings):
    settings.PATIENT_MESSAGE_RATE = "3/minute"
    consultation, token = started
    codes = [api.post(messages_url(consultation.id), {"text": f"m{i}"}, format="json", **bearer(token)).status_code
             for i in range(4)]
    assert codes == [202, 202, 202, 429]
    assert Message.objects.count() == 3
    # Another patient's budget is their own.
    other, other_token = consultation_create()
    assert api.post(messages_url(other.id), {"text": "hi"}, format="json", **bearer(other_token)).status_code == 202


def test_consultation_creation_is_rate_limited(api, db, monkeypatch):
    monkeypatch.setattr(ConsultationCreateThrottle, "THROTTLE_RATES", {"consultation_create": "2/hour"})
    assert [api.post("/api/consultations/").status_code for _ in range(3)] == [201, 201, 429]
    page = Client().post("/start/")
    assert page.status_code == 429


def test_rate_parse_and_window():
    assert security.rate_parse(rate="20/minute") == security.Rate(20, 60)
    assert security.rate_parse(rate="5/s") == security.Rate(5, 1)
    with pytest.raises(ValueError):
        security.rate_parse(rate="lots")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_websocket_messages_share_the_rate_limit_with_the_api(settings):
    from asgiref.sync import sync_to_async

    settings.PATIENT_MESSAGE_RATE = "2/minute"
    consultation, token = await sync_to_async(consultation_create)()
    communicator = await ws_authenticated(consultation, token)
    replies = []
    for number in range(3):
        await communicator.send_json_to({"type": "message.send", "text": f"m{number}", "client_id": f"c{number}"})
        reply = await communicator.receive_json_from(timeout=5)
        while reply["type"] == "consultation.update":  # the state pushed for an earlier message
            reply = await communicator.receive_json_from(timeout=5)
        replies.append(reply)
    assert [r["type"] for r in replies] == ["message.queued", "message.queued", "error"]
    assert replies[2]["code"] == "rate_limited" and replies[2]["client_id"] == "c2"
    assert await Message.objects.acount() == 2
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()


# Bad websocket frames ----------------------------------------------------------------------------------


async def ws_authenticated(consultation, token):
    communicator = WebsocketCommunicator(application, f"/ws/consultations/{consultation.id}/", headers=[ORIGIN])
    ok, _ = await communicator.connect()
    assert ok
    await communicator.send_json_to({"type": "auth", "token": token})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "consultation.update"
    return communicator


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("frame, code", [
    ({"type": "message.send", "text": ""}, "empty"),
    ({"type": "message.send", "text": " \n\t "}, "empty"),
    ({"type": "message.send", "text": "x" * 1_000_000}, "too_long"),
    ({"type": "message.send", "text": {"nested": "object"}}, "invalid"),
    ({"type": "message.send", "text": "ok", "client_id": {"x": 1}}, None),
    ({"type": 12}, "unknown_type"),
])
async def test_websocket_bad_messages_get_an_error_and_nothing_is_stored(frame, code):
    from asgiref.sync import sync_to_async

    consultation, token = await sync_to_async(consultation_create)()
    communicator = await ws_authenticated(consultation, token)
    await communicator.send_to(text_data=json.dumps(frame))
    reply = await communicator.receive_json_from(timeout=10)
    if code is None:
        # An unusable client_id is dropped, the message itself is fine.
        assert reply["type"] == "message.queued" and reply["client_id"] is None
    else:
        assert (reply["type"], reply["code"]) == ("error", code)
        assert await Message.objects.acount() == 0
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_websocket_from_a_foreign_origin_is_refused():
    from asgiref.sync import sync_to_async

    consultation, _ = await sync_to_async(consultation_create)()
    for origin in (b"http://evil.example", b"null", b"http://localhost.evil.example"):
        communicator = WebsocketCommunicator(application, f"/ws/consultations/{consultation.id}/",
                                             headers=[(b"origin", origin)])
        ok, _ = await communicator.connect()
        assert not ok, origin
        await communicator.disconnect()


# Against a real Daphne: frame-level limits --------------------------------------------------------------


@pytest.fixture(scope="module")
def daphne(test_redis_url, tmp_path_factory):
    """Daphne as `make run` starts it (config.server), its own SQLite file, no worker (nothing is processed)."""
    directory = tmp_path_factory.mktemp("daphne")
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_VAR_DIR", "DJANGO_SETTINGS_MODULE", "CACHE_URL",
                          "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SECURE_COOKIES", "SECRET_KEY", "DJANGO_DEBUG"}}
    env.update(DJANGO_ENV="test", DJANGO_SETTINGS_MODULE="config.settings", DJANGO_VAR_DIR=str(directory / "var"),
               DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}", REDIS_URL=test_redis_url,
               MESSAGE_MAX_CHARS="2000", PYTHONPATH=str(ROOT))
    subprocess.run(manage_command("migrate", "--noinput", "-v", "0"), env=env, cwd=ROOT, check=True)
    supervisor = Supervisor()
    web = supervisor.start("web", web_command(host="127.0.0.1", port=port), env=env, log_path=directory / "web.log")
    try:
        http_wait(f"http://127.0.0.1:{port}/", timeout=60, alive=lambda: web.poll() is None)
        yield f"127.0.0.1:{port}"
    finally:
        supervisor.stop(timeout=10)
        import redis

        redis.Redis.from_url(test_redis_url).delete("ner")


def daphne_consultation(address: str) -> tuple[str, str]:
    import urllib.request

    request = urllib.request.Request(f"http://{address}/api/consultations/", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    return body["id"], body["patient_token"]


async def daphne_socket(address: str, consultation_id: str, token: str):
    import websockets

    socket = await websockets.connect(f"ws://{address}/ws/consultations/{consultation_id}/",
                                      origin=f"http://{address}", open_timeout=30, max_size=None)
    await socket.send(json.dumps({"type": "auth", "token": token}))
    assert json.loads(await asyncio.wait_for(socket.recv(), 30))["type"] == "consultation.update"
    return socket


async def closed_by_server(socket) -> bool:
    """True once the server ends the connection: with a close frame (1009 too big, 1007 bad UTF-8) or,
    Autobahn's default for protocol violations (failByDrop), by dropping the TCP connection at once."""
    import websockets

    try:
        async with asyncio.timeout(30):
            while True:
                frame = json.loads(await socket.recv())
                assert frame["type"] != "message.queued", frame
    except websockets.ConnectionClosed as closed:
        return closed.rcvd is None or closed.rcvd.code in {1007, 1009}
    return False


@pytest.mark.integration
@pytest.mark.asyncio
async def test_daphne_closes_sockets_that_send_oversized_or_undecodable_frames(daphne):
    consultation_id, token = await asyncio.to_thread(daphne_consultation, daphne)

    socket = await daphne_socket(daphne, consultation_id, token)
    await socket.send(json.dumps({"type": "message.send", "text": "x" * 1_000_000}))
    assert await closed_by_server(socket)  # message too big: refused while it arrives, never buffered

    socket = await daphne_socket(daphne, consultation_id, token)
    await socket.send(b'{"type": "message.send", "text": "\xc3\x28"}', text=True)
    assert await closed_by_server(socket)  # invalid UTF-8 in a text frame

    # The server is unharmed and nothing was stored: a well-behaved client carries on.
    socket = await daphne_socket(daphne, consultation_id, token)
    await socket.send(json.dumps({"type": "message.send", "text": "  ", "client_id": "a"}))
    assert json.loads(await asyncio.wait_for(socket.recv(), 30))["code"] == "empty"
    await socket.send(json.dumps({"type": "message.send", "text": "I have a headache", "client_id": "b"}))
    queued = json.loads(await asyncio.wait_for(socket.recv(), 30))
    assert queued["type"] == "message.queued" and queued["message"]["text"] == "I have a headache"
    await socket.close()


@pytest.mark.integration
@pytest.mark.asyncio
async def test_daphne_sends_a_state_larger_than_the_limit_on_what_clients_send(daphne):
    """The limit is on clients: a long consultation's state (here 8 stored messages of 1,900 characters, more
    than WEBSOCKET_MAX_MESSAGE_BYTES = 13,024) still reaches the page instead of closing its socket."""
    import urllib.request

    consultation_id, token = await asyncio.to_thread(daphne_consultation, daphne)

    def post(text: str) -> None:
        request = urllib.request.Request(
            f"http://{daphne}/api/consultations/{consultation_id}/messages/", data=json.dumps({"text": text}).encode(),
            method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202

    for i in range(8):
        await asyncio.to_thread(post, f"message {i} " + "my head hurts " * 135)
    socket = await daphne_socket(daphne, consultation_id, token)  # asserts the first frame is the state
    await socket.close()


@pytest.mark.integration
@pytest.mark.asyncio
async def test_daphne_refuses_websockets_from_foreign_origins(daphne):
    import websockets

    consultation_id, _ = await asyncio.to_thread(daphne_consultation, daphne)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"ws://{daphne}/ws/consultations/{consultation_id}/", origin="http://evil.example",
                                 open_timeout=30)
    assert refused.value.response.status_code == 403


# Sign-in lockout ---------------------------------------------------------------------------------------


def test_login_locks_after_repeated_failures_for_that_username_and_address(db, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    user_create(username="doc", role="clinician")
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(3):
        response = client.post("/accounts/login/", {"username": "doc", "password": "wrong"})
        assert response.status_code == 200 and b"did not match" in response.content
    # Locked: even the right password is refused, and the page says why.
    response = client.post("/accounts/login/", {"username": "doc", "password": "pw-doc"})
    assert response.status_code == 200 and b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session
    # The admin's login goes through the same backend.
    assert client.post("/admin/login/", {"username": "doc", "password": "pw-doc"}).status_code == 200
    assert "_auth_user_id" not in client.session
    # Another address is not locked out by this one's failures.
    elsewhere = Client(REMOTE_ADDR="198.51.100.2")
    assert elsewhere.post("/accounts/login/", {"username": "doc", "password": "pw-doc"}).status_code == 302


def test_successful_login_clears_earlier_failures(db, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    user_create(username="doc", role="clinician")
    client = Client()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "doc", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "doc", "password": "pw-doc"}).status_code == 302
    client.logout()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "doc", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "doc", "password": "pw-doc"}).status_code == 302


def test_lockout_key_ignores_username_case(db, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    for username in ("Doc", "DOC"):
        security.login_failure_record(username=username, address="1.2.3.4")
    assert security.login_locked(username="doc", address="1.2.3.4")
    assert not security.login_locked(username="doc", address="1.2.3.5")


# Production settings -----------------------------------------------------------------------------------


def test_production_settings_pass_the_deployment_checks(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SECURE_", "DJANGO_", "CSRF_", "SESSION_")) and key not in {"DATABASE_URL"}}
    env.update(DJANGO_ENV="production", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="consult.example.org",
               STATIC_ROOT=str(tmp_path / "static"), DJANGO_VAR_DIR=str(tmp_path / "var"))
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings as s; import django; django.setup(); "
         "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, "
         "s.SECURE_HSTS_SECONDS > 0, s.DEBUG, s.X_FRAME_OPTIONS)"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"}, capture_output=True, text=True, timeout=120)
    assert probe.stdout.split() == ["True", "True", "True", "True", "True", "False", "DENY"], probe.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY"}}
    env.update(DJANGO_ENV="production", ALLOWED_HOSTS="consult.example.org", STATIC_ROOT=str(tmp_path / "static"))
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


# Property-based: the extractor on arbitrary text --------------------------------------------------------

MODEL_MISSING = extraction.model_unavailable_reason()
patient_like_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=300,
) | st.lists(st.sampled_from(["headache", "fever", "no", "not", "pain", " ", ",", ".", "ibuprofen", "2 days",
                              "\n", "é", "🤒", "<b>", "'", "severe"]), max_size=60).map("".join)


@pytest.mark.skipif(MODEL_MISSING is not None, reason=f"real NER model needed: {MODEL_MISSING}")
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=patient_like_text)
def test_extractor_never_crashes_and_its_offsets_are_valid(text):
    result = extraction.entities_extract(text=text)
    for entity in result.entities:
        assert 0 <= entity["start"] < entity["end"] <= len(text), entity
        assert text[entity["start"]:entity["end"]] == entity["text"], entity
        assert 0.0 <= entity["score"] <= 1.0
        assert entity["type"] in {"SYMPTOM", "DISEASE", "DRUG", "ANATOMY", "DURATION", "SEVERITY"}
