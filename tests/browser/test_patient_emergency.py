"""Issue 11, conversation 1 in a real browser at a phone's size (390 x 844): a headache with vomiting, then a
stiff neck. The emergency instruction must be the first thing the patient sees, without scrolling, and the
patient can still write afterwards.

The patient trial at 390 x 844 also found the act-now banner sitting over the header and the chat, and the advice
for a non-urgent level missing from the top of the page while the questions went on."""
from __future__ import annotations

import re

import pytest
from phone_layout import advice_covers, newest_out_of_view, page_size_faults, send

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

TIMEOUT_MS = 120_000
PHONE = {"width": 390, "height": 844}


def test_emergency_instruction_is_visible_without_scrolling_on_a_phone(browser, system, screenshot_save):
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True,
                                  locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(system.base_url + "/")
        page.click("#start-button")
        page.wait_for_url(re.compile(r"/c/[0-9a-f-]{36}/#.+"))
        page.wait_for_selector("#connection-status[data-state='online']", timeout=30_000)

        send(page, "Hi, I've had a pounding headache since Tuesday and I keep throwing up. "
                    "Took 2 ibuprofen but it didn't help.", 0)
        _calm_advice_check(page)
        send(page, "No fever. My neck feels really stiff though.", 1)

        page.wait_for_selector("#advice:not(.advice--calm)", timeout=TIMEOUT_MS)
        box = page.locator("#advice").bounding_box()  # brought into view when it appears, wherever the patient was
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
        # It takes its own space: it covers neither the header nor the chat, at the top or the bottom of the page.
        assert advice_covers(page) == []
        assert page_size_faults(page) == []
        page.evaluate("window.scrollTo(0, 0)")
        box = page.locator("#advice").bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
        # Nothing the patient reads comes before it.
        first = page.evaluate("document.querySelector('main').innerText.trim().split('\\n')[0]")
        level = page.locator("#advice-level").inner_text()
        assert "ambulance" in level.lower(), level
        assert page.locator("#advice-text").inner_text().strip()
        assert first.strip() == level.strip(), first
        # Nothing overflows sideways at 390 px.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # The composer stays: the patient can add what they forgot.
        assert page.locator("#message-input").is_enabled()
        screenshot_save(page, "patient-emergency-phone")
        assert errors == [], errors
    finally:
        context.close()


def _calm_advice_check(page) -> None:
    """A headache with vomiting is a red flag for a doctor today: while the questions go on, its advice is a calm
    notice at the top, with the level the side panel shows, and the patient can go on answering below it."""
    advice = page.locator("#advice")
    assert advice.is_visible()
    assert advice.get_attribute("role") == "status"
    assert "advice--calm" in (advice.get_attribute("class") or "")
    assert page.locator("#advice-level").inner_text() == page.locator("#urgency").inner_text()
    text = page.locator("#advice-text").inner_text().strip()
    assert text and text in page.locator(".message.assistant .message__bubble").last.inner_text(), text
    assert newest_out_of_view(page) == []  # as the page left them after the reply
    assert advice_covers(page) == []


def test_a_concluded_interview_shows_its_advice_first_even_when_not_urgent(browser, system):
    """Found by trying the app as a patient: advice that is not urgent (self-care, see a doctor) was carried only
    by the last chat bubble, at the end of a long paragraph."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True,
                                  locale="en-GB")
    page = context.new_page()
    try:
        page.goto(system.base_url + "/")
        page.click("#start-button")
        page.wait_for_url(re.compile(r"/c/[0-9a-f-]{36}/#.+"))
        page.wait_for_selector("#connection-status[data-state='online']", timeout=30_000)
        send(page, "I've had a headache since yesterday", 0)
        replies = 1
        while replies < 30 and page.locator("#closed-notice").is_hidden():
            assert page.locator("#advice").is_hidden()  # no red flag, so no advice yet while the questions go on
            question = page.locator(".message.assistant .message__bubble").last.inner_text().lower()
            send(page, "I'm 30, male" if "how old are you" in question else "no", replies)
            replies += 1
        page.wait_for_selector("#advice:not([hidden])", timeout=TIMEOUT_MS)
        assert page.locator("#advice").get_attribute("role") == "status"
        assert "advice--calm" in (page.locator("#advice").get_attribute("class") or "")
        assert page.locator("#advice-level").inner_text() == page.locator("#urgency").inner_text()
        assert page.locator("#advice-text").inner_text().strip()
        first = page.evaluate("document.querySelector('main').innerText.trim().split('\\n')[0]")
        assert first.strip() == page.locator("#advice-level").inner_text().strip()
    finally:
        context.close()
