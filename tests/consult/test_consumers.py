"""The chat websocket through the real ASGI application (origin check included), in-memory channel layer."""
import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from celery.signals import before_task_publish
from channels.testing import WebsocketCommunicator
from django.db import connection

from config.asgi import application
from consult.models import Message
from consult.services.consultations import consultation_create

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://localhost")


def ws_path(consultation_id):
    return f"/ws/consultations/{consultation_id}/"


async def connected(consultation_id, origin=ORIGIN):
    communicator = WebsocketCommunicator(application, ws_path(consultation_id), headers=[origin])
    ok, _ = await communicator.connect()
    assert ok
    return communicator


async def authenticated(consultation, token):
    communicator = await connected(consultation.id)
    await communicator.send_json_to({"type": "auth", "token": token})
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["type"] == "consultation.update"
    assert frame["id"] == str(consultation.id)
    return communicator


async def still_open(communicator):
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}


@pytest.fixture
def started():
    return consultation_create()


async def test_auth_sends_the_full_state(started):
    consultation, token = started
    communicator = await authenticated(consultation, token)
    await still_open(communicator)
    await communicator.disconnect()


async def test_foreign_origin_is_refused(started):
    consultation, _ = started
    communicator = WebsocketCommunicator(
        application, ws_path(consultation.id), headers=[(b"origin", b"http://evil.example")]
    )
    ok, _ = await communicator.connect()
    assert not ok


async def test_wrong_token_is_refused_and_closed(started):
    consultation, _ = started
    other, other_token = await sync_to_async(consultation_create)()
    for token in (other_token, "guess", 12):
        communicator = await connected(consultation.id)
        await communicator.send_json_to({"type": "auth", "token": token})
        frame = await communicator.receive_json_from(timeout=5)
        assert frame["type"] == "error" and frame["code"] == "auth_failed"
        closed = await communicator.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 4401}


async def test_socket_that_never_authenticates_is_closed(started, settings):
    settings.WEBSOCKET_AUTH_TIMEOUT_S = 0.2
    consultation, _ = started
    communicator = await connected(consultation.id)
    assert (await communicator.receive_json_from(timeout=5))["code"] == "auth_timeout"
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_authenticated_socket_is_not_closed_by_the_auth_deadline(started, settings):
    settings.WEBSOCKET_AUTH_TIMEOUT_S = 0.2
    consultation, token = started
    communicator = await authenticated(consultation, token)
    await asyncio.sleep(0.4)
    await still_open(communicator)
    await communicator.disconnect()


async def test_messages_before_auth_are_refused_and_nothing_is_stored(started):
    consultation, _ = started
    communicator = await connected(consultation.id)
    await communicator.send_json_to({"type": "message.send", "text": "hello"})
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["code"] == "not_authenticated"
    await still_open(communicator)
    assert not await Message.objects.acount()
    await communicator.disconnect()


@pytest.mark.parametrize("raw, code", [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_frame"),
    ('"text"', "bad_frame"),
    ('{"type": "launch.missiles"}', "unknown_type"),
    ('{"no_type": true}', "unknown_type"),
    ('{"type": "message.send"}', "invalid"),
    ('{"type": "message.send", "text": "   "}', "empty"),
    ('{"type": "message.send", "text": "a\\u0000b"}', "invalid"),
])
async def test_bad_frames_get_an_error_and_the_connection_stays_open(started, raw, code):
    consultation, token = started
    communicator = await authenticated(consultation, token)
    await communicator.send_to(text_data=raw)
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["type"] == "error"
    assert frame["code"] == code
    assert frame["message"]
    await still_open(communicator)
    assert not await Message.objects.acount()
    await communicator.disconnect()


async def test_binary_frame_is_an_error_not_a_crash(started):
    consultation, token = started
    communicator = await authenticated(consultation, token)
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert (await communicator.receive_json_from(timeout=5))["code"] == "bad_frame"
    await still_open(communicator)
    await communicator.disconnect()


async def test_oversize_message_is_refused_and_nothing_is_lost(started, settings):
    settings.MESSAGE_MAX_CHARS = 20
    consultation, token = started
    communicator = await authenticated(consultation, token)
    await communicator.send_json_to({"type": "message.send", "text": "x" * 21, "client_id": "c1"})
    frame = await communicator.receive_json_from(timeout=5)
    assert (frame["type"], frame["code"], frame["client_id"]) == ("error", "too_long", "c1")
    # A frame far beyond any valid message is refused before it is even parsed.
    await communicator.send_to(text_data=json.dumps({"type": "message.send", "text": "y" * 100_000}))
    assert (await communicator.receive_json_from(timeout=5))["code"] == "too_long"
    await still_open(communicator)

    await communicator.send_json_to({"type": "message.send", "text": "still here", "client_id": "c2"})
    queued = await communicator.receive_json_from(timeout=5)
    assert queued["type"] == "message.queued" and queued["client_id"] == "c2"
    assert [m.text async for m in Message.objects.all()] == ["still here"]
    await communicator.disconnect()


async def test_message_is_stored_queued_before_it_is_published_and_pushed_to_the_group(started):
    consultation, token = started
    published = []

    def record(sender=None, body=None, headers=None, **kwargs):
        published.append({
            "task": headers["task"],
            "stored_as_queued": Message.objects.filter(pk=body[0][0], status="queued").exists(),
            "inside_transaction": connection.in_atomic_block,
        })

    before_task_publish.connect(record, weak=False)
    try:
        communicator = await authenticated(consultation, token)
        second_tab = await authenticated(consultation, token)
        await communicator.send_json_to({"type": "message.send", "text": "I have a sore throat", "client_id": 7})
        frames = [await communicator.receive_json_from(timeout=10) for _ in range(2)]
    finally:
        before_task_publish.disconnect(record)

    by_type = {frame["type"]: frame for frame in frames}
    queued = by_type["message.queued"]
    assert queued["status"] == "queued" and queued["client_id"] == 7
    message = await Message.objects.aget(pk=queued["id"])
    assert (message.text, message.status, message.role) == ("I have a sore throat", "queued", "patient")
    assert published == [{"task": "consult.tasks.message_process", "stored_as_queued": True,
                          "inside_transaction": False}]

    # Every open page of the consultation hears about the new message through the group.
    update = by_type["consultation.update"]
    assert [m["text"] for m in update["messages"]] == ["I have a sore throat"]
    assert update["messages"][0]["status"] == "queued"
    other_tab_update = await second_tab.receive_json_from(timeout=10)
    assert other_tab_update["type"] == "consultation.update"
    assert other_tab_update["messages"][0]["id"] == message.id
    await communicator.disconnect()
    await second_tab.disconnect()


async def test_an_update_reaches_only_its_own_consultation(started):
    consultation, token = started
    other, other_token = await sync_to_async(consultation_create)()
    mine = await authenticated(consultation, token)
    theirs = await authenticated(other, other_token)
    await mine.send_json_to({"type": "message.send", "text": "private symptoms"})
    await mine.receive_json_from(timeout=10)
    await mine.receive_json_from(timeout=10)
    assert await theirs.receive_nothing(timeout=0.5)
    await mine.disconnect()
    await theirs.disconnect()
