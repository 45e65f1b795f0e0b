"""The chat page converges on the server's state when a push is lost: Debian's Chromium driven by Playwright,
against the live system (Daphne, a real Celery worker with the real NER model, Redis).

A push is lost for real: the page's websocket runs through Playwright's websocket route, which passes every
frame both ways except the server's `consultation.update` frames while `pushes_dropped` is on. The socket
stays open, so nothing tells the page that it missed anything (no reconnect, no re-read on reconnect); only
re-reading the state on its own can show the processed message.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

PATIENT_TEXT = "I've had a headache and fever for two days, no medications"
# The page re-reads 4 s after a message starts waiting, then after 8, 16 and 30 s more.
WAITING_RESYNC_TIMEOUT_MS = 60_000
# A tab shown again reads at once.
VISIBLE_RESYNC_TIMEOUT_MS = 10_000


@dataclass
class PushFilter:
    """Passes the page's websocket through, dropping the server's state pushes while `pushes_dropped`."""

    pushes_dropped: bool = False
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def route(self, page_socket) -> None:
        server = page_socket.connect_to_server()
        page_socket.on_message(server.send)
        server.on_message(lambda message: self.server_frame(page_socket, message))

    def server_frame(self, page_socket, message: str | bytes) -> None:
        frame = json.loads(message) if isinstance(message, str) else {}
        if self.pushes_dropped and frame.get("type") == "consultation.update":
            self.dropped.append(frame)
            return
        page_socket.send(message)

    def dropped_status(self, message_id: int) -> str | None:
        """The latest status of message `message_id` in a push the page never got."""
        statuses = [m["status"] for frame in self.dropped for m in frame["messages"] if m["id"] == message_id]
        return statuses[-1] if statuses else None


def chat_open(system, page, pushes: PushFilter) -> tuple[str, str]:
    """Start a consultation in the page; (consultation id, patient token) once its websocket is online."""
    page.route_web_socket(re.compile(r"/ws/consultations/"), pushes.route)
    page.goto(system.base_url + "/")
    page.click("#start-button")
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]{36}/#.+"))
    page.wait_for_selector("#connection-status[data-state='online']", timeout=30_000)
    address = urlsplit(page.url)
    consultation_id = address.path.strip("/").split("/")[-1]
    return consultation_id, unquote(address.fragment)


def processed_on_server(system, page, consultation_id: str, token: str, message_id: int) -> dict:
    # page.wait_for_timeout between reads lets Playwright pass the socket's frames meanwhile.
    state, _ = system.message_processed_wait(consultation_id, token, message_id,
                                             pause=lambda seconds: page.wait_for_timeout(seconds * 1000))
    return state


def assert_shown_once_processed(page, state: dict, message_id: int, *, timeout_ms: float) -> None:
    page.wait_for_selector(f".message.patient[data-id='{message_id}'][data-status='processed']", timeout=timeout_ms)
    assert page.locator(".message.patient").count() == 1, page.locator("#messages").inner_html()
    replies = [m for m in state["messages"] if m["role"] == "assistant"]
    assert page.locator(".message.assistant:not(.message--intro)").count() == len(replies) == 1
    assert page.locator(f".message.patient[data-id='{message_id}'] mark.entity").count() >= 1


def test_message_whose_processed_push_is_lost_is_shown_processed_without_a_reload(chromium_executable, system,
                                                                                  page):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    pushes = PushFilter()
    consultation_id, token = chat_open(system, page, pushes)

    pushes.pushes_dropped = True
    page.locator("#message-input").fill(PATIENT_TEXT)
    page.locator("#message-input").press("Enter")
    # The acknowledgement still comes through (only state pushes are dropped): the bubble gets its id.
    bubble = page.wait_for_selector(".message.patient[data-id]", timeout=30_000)
    message_id = int(bubble.get_attribute("data-id"))

    state = processed_on_server(system, page, consultation_id, token, message_id)
    # The worker did push the result, and the page did not get it.
    deadline = time.monotonic() + 30
    while pushes.dropped_status(message_id) != "processed" and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert pushes.dropped_status(message_id) == "processed", [f["messages"] for f in pushes.dropped]

    assert_shown_once_processed(page, state, message_id, timeout_ms=WAITING_RESYNC_TIMEOUT_MS)
    assert page.locator("#record-symptoms li.record__item").count() >= 1
    assert page.locator("#connection-status").get_attribute("data-state") == "online", "no reconnect happened"
    assert errors == [], errors


def test_tab_made_visible_again_shows_what_changed_while_it_was_hidden(chromium_executable, system, page):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    pushes = PushFilter()
    consultation_id, token = chat_open(system, page, pushes)

    # The patient sends a message from elsewhere (another tab, the API) while this tab is in the
    # background and misses the pushes; it has nothing waiting of its own, so nothing makes it look.
    pushes.pushes_dropped = True
    status, body = system.api("POST", f"/api/consultations/{consultation_id}/messages/", token=token,
                              body={"text": PATIENT_TEXT})
    assert status == 202, body
    message_id = body["id"]
    state = processed_on_server(system, page, consultation_id, token, message_id)
    page.wait_for_timeout(1000)
    assert page.locator(".message.patient").count() == 0, "the page learnt of the message some other way"
    assert pushes.dropped_status(message_id) is not None

    # Headless Chromium never hides a page, so the tab is hidden and shown again the way the browser does
    # it: document.visibilityState changes and a visibilitychange event is fired on the document.
    for visibility in ("hidden", "visible"):
        page.evaluate("""visibility => {
            Object.defineProperty(document, "visibilityState", { value: visibility, configurable: true });
            Object.defineProperty(document, "hidden", { value: visibility === "hidden", configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""", visibility)

    assert_shown_once_processed(page, state, message_id, timeout_ms=VISIBLE_RESYNC_TIMEOUT_MS)
    assert errors == [], errors
