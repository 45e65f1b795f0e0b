"""What a patient sees of the chat page on a phone (390 x 844), measured in the real page: how tall the page is
against its content, which parts scroll, what is in view, and what the advice banner covers.

Shared by the patient browser tests (tests/browser/test_patient_chat.py, test_patient_emergency.py).
"""
from __future__ import annotations

import re
from typing import Any

PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 120_000
# Rounding of fractional layout boxes.
SLACK_PX = 2


def phone_chat_open(browser, system):
    """(context, page): a new consultation in a phone-sized browser, once its websocket is online."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True,
                                  locale="en-GB")
    page = context.new_page()
    page.goto(system.base_url + "/")
    page.click("#start-button")
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]{36}/#.+"))
    page.wait_for_selector("#connection-status[data-state='online']", timeout=30_000)
    return context, page


def send(page, text: str, replies_before: int) -> None:
    """Types `text` and presses Enter, as a patient does; returns once the assistant's next reply is shown."""
    composer = page.locator("#message-input")
    composer.fill(text)
    composer.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.message.assistant:not(.message--intro)').length > n",
        arg=replies_before, timeout=TIMEOUT_MS,
    )


_PAGE_SIZES = """() => {
  const doc = document.documentElement;
  const list = document.getElementById('messages');
  const listOverflow = getComputedStyle(list).overflowY;
  return {
    scrollHeight: doc.scrollHeight,
    // The bottom of everything the page shows (header, then main with the chat and the record), in page pixels.
    contentBottom: document.querySelector('main').getBoundingClientRect().bottom + window.scrollY,
    viewport: window.innerHeight,
    pageScrolls: doc.scrollHeight > window.innerHeight + 1,
    listScrolls: /(auto|scroll)/.test(listOverflow) && list.scrollHeight > list.clientHeight + 1,
  };
}"""


def page_sizes(page) -> dict[str, Any]:
    return page.evaluate(_PAGE_SIZES)


def page_size_faults(page) -> list[str]:
    """What is wrong with the page's height and scrolling: empty space below the content, a scroll in a scroll."""
    sizes = page_sizes(page)
    faults = []
    if sizes["scrollHeight"] > sizes["contentBottom"] + SLACK_PX:
        faults.append(f"{sizes['scrollHeight'] - sizes['contentBottom']:.0f} px of empty page below the content")
    if sizes["pageScrolls"] and sizes["listScrolls"]:
        faults.append("the message list scrolls inside the scrolling page")
    return faults


_IN_VIEW = """() => {
  const box = element => { const r = element.getBoundingClientRect(); return [r.top, r.bottom]; };
  return {
    last: box(document.getElementById('messages').lastElementChild),
    input: box(document.getElementById('message-input')),
    viewport: window.innerHeight,
  };
}"""


def newest_out_of_view(page) -> list[str]:
    """Which of the newest message and the message box are not wholly within the viewport, as the page left them."""
    boxes = page.evaluate(_IN_VIEW)
    return [f"{name} at {top:.0f}..{bottom:.0f} of 0..{boxes['viewport']}"
            for name, (top, bottom) in (("newest message", boxes["last"]), ("message box", boxes["input"]))
            if top < -SLACK_PX or bottom > boxes["viewport"] + SLACK_PX]


_ADVICE_COVERS = """() => {
  const a = document.getElementById('advice').getBoundingClientRect();
  const meets = b => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const others = [document.querySelector('.site-header'),
                  ...document.querySelectorAll('#messages .message'), document.getElementById('message-form')];
  return others.filter(element => meets(element.getBoundingClientRect()))
    .map(element => element.className || element.id);
}"""


def advice_covers(page) -> list[str]:
    """What the advice banner's box meets, of the header, the messages and the composer, at the top of the page
    and at its bottom (the patient scrolls the chat)."""
    covered = []
    for where in ("document.documentElement.scrollHeight", "0"):
        page.evaluate(f"window.scrollTo(0, {where})")
        covered += page.evaluate(_ADVICE_COVERS)
    return covered
