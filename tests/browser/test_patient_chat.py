"""A patient in a real browser: Debian's Chromium driven by Playwright, against the live system (Daphne,
a real Celery worker with the real NER model, Redis). Playwright never downloads a browser here.

The screenshot goes to test-results/patient-chat.png; with UPDATE_SCREENSHOTS=1 it is also copied to
docs/screenshots/patient-chat.png (the one the README shows).
"""
from __future__ import annotations

import os
import re
import shutil

import pytest
from phone_layout import newest_out_of_view, page_size_faults, phone_chat_open, send

from tools.launcher import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

PATIENT_TEXT = "I've had a headache and fever for two days, no medications"
TIMEOUT_MS = 120_000


def test_patient_describes_symptoms_and_sees_record_and_follow_up_question(chromium_executable, system, page):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(system.base_url + "/")
    page.click("#start-button")
    # The chat page's address carries the patient token in its fragment.
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]{36}/#.+"))
    page.wait_for_selector("#connection-status[data-state='online']", timeout=30_000)

    composer = page.locator("#message-input")
    composer.fill(PATIENT_TEXT)
    composer.press("Enter")

    # The patient's message shows at once, then the worker's result arrives over the websocket.
    page.wait_for_selector(".message.patient", timeout=10_000)
    page.wait_for_selector("#record-symptoms li.record__item", timeout=TIMEOUT_MS)
    page.wait_for_selector(".message.assistant:not(.message--intro)", timeout=TIMEOUT_MS)
    page.wait_for_selector(".message.patient[data-status='processed'] mark.entity", timeout=TIMEOUT_MS)

    # The record panel lists symptoms taken from what the patient typed.
    symptoms = [text.strip().lower() for text in page.locator("#record-symptoms li.record__item").all_inner_texts()]
    assert symptoms and all(s.split(" (")[0] in PATIENT_TEXT.lower() for s in symptoms), symptoms
    reply = page.locator(".message.assistant:not(.message--intro)").last.inner_text()
    assert reply.strip(), "the assistant's follow-up is shown"
    assert page.locator("#composer-error").inner_text() == ""
    assert errors == [], errors

    results = ROOT / "test-results"
    results.mkdir(exist_ok=True)
    screenshot = results / "patient-chat.png"
    page.screenshot(path=str(screenshot), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots" / "patient-chat.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, target)


def test_a_long_chat_on_a_phone_scrolls_once_and_keeps_the_newest_message_and_the_message_box_in_view(
        browser, system, screenshot_save):
    """Found by the patient trial at 390 x 844: the message list scrolled inside the scrolling page and cut
    messages off, and the screen-reader labels of the messages it hid stretched the page by some 3,000 px of
    empty space. The page is one scroll, as tall as what it shows, and after each reply the newest message and
    the message box are in view without the patient scrolling."""
    context, page = phone_chat_open(browser, system)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        send(page, "I've had a headache since yesterday", 0)
        out_of_view = []
        replies = 1
        # Enough turns for the chat to be several screens tall.
        while replies < 7 and page.locator("#closed-notice").is_hidden():
            out_of_view += [f"after reply {replies}: {fault}" for fault in newest_out_of_view(page)]
            question = page.locator(".message.assistant .message__bubble").last.inner_text().lower()
            send(page, "I'm 30, male" if "how old are you" in question else "no", replies)
            replies += 1
        out_of_view += [f"after reply {replies}: {fault}" for fault in newest_out_of_view(page)]
        chat_height = page.evaluate("document.getElementById('messages').scrollHeight")
        assert chat_height > 844, chat_height  # the test's premise: the messages alone are taller than the phone
        assert page_size_faults(page) + out_of_view == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot_save(page, "patient-chat-phone")
        assert errors == [], errors
    finally:
        context.close()
