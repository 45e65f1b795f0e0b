"""End to end with real parts only: Redis, a `celery -A config.celery_app worker -Q ner -P solo` subprocess running
the real default NER model, Daphne serving config.asgi, one file-based SQLite database shared by both.
No eager Celery and no mocks: the tests talk to the server over HTTP and websockets like any client.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PATIENT_TEXT = "I've had a headache and fever for two days, no medications"
PROCESS_TIMEOUT_S = 120  # generous: CI machines have 2 cores and may be busy


def entities_match_text(message: dict) -> bool:
    return all(message["text"][e["start"]:e["end"]] == e["text"] for e in message["entities"])


def processed_message(state: dict, message_id: int) -> dict | None:
    for message in state["messages"]:
        if message["id"] == message_id and message["status"] in {"processed", "failed"}:
            return message
    return None


def reply_to(state: dict, message_id: int) -> dict | None:
    return next((m for m in state["messages"] if m["role"] == "assistant" and m["reply_to"] == message_id), None)


def assert_processed_with_entities(state: dict, message_id: int) -> None:
    message = processed_message(state, message_id)
    assert message is not None and message["status"] == "processed", message
    assert message["model_version"], "the processed message names the model that read it"
    assert message["entities"], f"no entities found in {message['text']!r}"
    assert entities_match_text(message)
    # What the worker found reached the consultation record. (Which symptoms the model finds is the
    # shipped model's test, tests/ner_engine/test_shipped_model.py; here: the path from text to record.)
    symptoms = [item["text"] for item in state["record"]["symptoms"]]
    assert symptoms, f"no symptom in the record; entities: {message['entities']}"
    assert all(symptom.lower() in message["text"].lower() for symptom in symptoms), symptoms
    reply = reply_to(state, message_id)
    assert reply is not None and reply["text"], "the assistant answers every processed message"
    # The conversation goes on: a follow-up question, unless the triage already closed it.
    assert state["next_question"] or state["status"] == "closed"


@pytest.mark.asyncio
async def test_websocket_message_comes_back_with_entities_and_next_question(system):
    consultation_id, token = system.consultation_start()
    url = f"{system.ws_url}/ws/consultations/{consultation_id}/"
    async with websockets.connect(url, origin=system.base_url, open_timeout=30) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        first = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
        assert first["type"] == "consultation.update" and first["id"] == consultation_id
        assert first["messages"] == []

        await socket.send(json.dumps({"type": "message.send", "text": PATIENT_TEXT, "client_id": "c1"}))
        message_id = None
        statuses = []
        async with asyncio.timeout(PROCESS_TIMEOUT_S):
            while True:
                frame = json.loads(await socket.recv())
                assert frame["type"] != "error", frame
                if frame["type"] == "message.queued":
                    assert frame["client_id"] == "c1" and frame["status"] == "queued"
                    message_id = frame["id"]
                elif frame["type"] == "consultation.update" and message_id is not None:
                    mine = [m for m in frame["messages"] if m["id"] == message_id]
                    if mine:
                        statuses.append(mine[0]["status"])
                    if processed_message(frame, message_id) is not None:
                        state = frame
                        break

    assert_processed_with_entities(state, message_id)
    assert statuses[-1] == "processed"
    # The page saw the message go through the worker, not only its end state.
    assert "processing" in statuses or "queued" in statuses, statuses


def test_rest_api_message_is_accepted_then_processed(system):
    consultation_id, token = system.consultation_start()
    status, body = system.api("POST", f"/api/consultations/{consultation_id}/messages/", token=token,
                              body={"text": PATIENT_TEXT})
    assert status == 202, body
    assert body["status"] == "queued"

    state, _ = system.message_processed_wait(consultation_id, token, body["id"])
    assert_processed_with_entities(state, body["id"])
    types = {e["type"] for e in processed_message(state, body["id"])["entities"]}
    assert "SYMPTOM" in types, types


def test_message_waits_in_the_queue_while_the_worker_is_down(system):
    consultation_id, token = system.consultation_start()
    system.worker_stop()
    status, body = system.api("POST", f"/api/consultations/{consultation_id}/messages/", token=token,
                              body={"text": PATIENT_TEXT})
    assert status == 202, body

    # Nobody consumes the queue: the message stays queued (stored, not lost, not failed).
    time.sleep(2)
    status, state = system.api("GET", f"/api/consultations/{consultation_id}/", token=token)
    assert status == 200
    [message] = [m for m in state["messages"] if m["id"] == body["id"]]
    assert message["status"] == "queued", message

    system.worker_start()
    state, _ = system.message_processed_wait(consultation_id, token, body["id"])
    assert_processed_with_entities(state, body["id"])
