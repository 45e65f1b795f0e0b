"""Issue 14, item 2 in a real browser (Debian's Chromium, Playwright) against the live system (Daphne, the real
worker and model): a clinician opens a case, sees the interview re-run on the reviewed findings beside the
interview's own level, sets the urgency with a reason, and the patient's page, open all along, shows the
clinician's level and reason (pushed over its websocket), as text.

Which level the interview reaches is not asserted: the re-run shown is checked against the interview engine's own
answer for the mentions the worker stored (all still pending, so the reviewed findings are the extracted ones).
"""
from __future__ import annotations

import re

import pytest

from test_clinician_review import audit_entries, clinician_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

STIFF_TEXT = "I've been throwing up and my neck feels really stiff"
REASON = "Vomiting with a stiff neck needs a doctor today: please go to A&E <b>now</b>."
TIMEOUT_MS = 60_000


def expected_retriage(message: dict) -> str:
    """The label of the level the interview engine gives the stored mentions (what the page must show)."""
    from consult.models import Urgency
    from consult.interview import triage_engine_get
    from consult.triage import TriageInput, Turn

    entities = tuple({"start": e["start"], "end": e["end"], "type": e["type"], "text": e["text"],
                      "attributes": {**(e.get("attributes") or {}), "assertion": e.get("assertion")}}
                     for e in message["entities"])
    decision = triage_engine_get().decide(TriageInput(turns=(Turn(text=message["text"], entities=entities),)))
    return Urgency(decision.urgency).label if decision.urgency else "not assessed"


def test_clinician_sets_the_urgency_and_the_patient_sees_it(chromium_executable, system, demo_logins,
                                                            patient_says, browser, page, screenshot_save):
    consultation_id, token, message = patient_says(STIFF_TEXT)
    errors: list[str] = []
    patient_context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB")
    patient = patient_context.new_page()
    patient.on("pageerror", lambda error: errors.append(str(error)))
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        patient.goto(f"{system.base_url}/c/{consultation_id}/#{token}")
        patient.wait_for_selector("#connection-status[data-state='online']", timeout=30_000)
        assert patient.locator("#clinician-review").is_hidden()

        clinician_sign_in(page, system.base_url, demo_logins["clinician"])
        case_url = f"{system.base_url}/clinician/consultations/{consultation_id}/"
        page.goto(case_url)
        rerun = page.locator("#urgency-retriage")
        assert rerun.locator(".urgency").inner_text() == expected_retriage(message)
        assert "Red flags:" in rerun.inner_text()
        assert page.locator("#urgency-model .urgency").is_visible()
        assert "Not set" in page.locator("#urgency-clinician").inner_text()

        form = page.locator("form.urgency-form")
        form.locator("select[name=urgency]").select_option("emergency")
        form.get_by_role("button", name="Set urgency").click()  # no reason: the browser asks for one first
        assert page.url == case_url
        form.locator("textarea[name=reason]").fill(REASON)
        form.get_by_role("button", name="Set urgency").click()
        page.wait_for_url(case_url + "#urgency-title")
        chosen = page.locator("#urgency-clinician")
        assert chosen.locator(".urgency").inner_text() == "Go to an emergency department now"
        assert chosen.locator(".clinician-reason").inner_text() == f"“{REASON}”"
        assert chosen.locator("b").count() == 0
        assert "(clinician; interview:" in page.locator(".case-header").inner_text()
        trail = audit_entries(page)
        assert any("clinician · urgency_override" in entry and "urgency=emergency" in entry for entry in trail), trail
        screenshot_save(page, "clinician-urgency")

        # The patient's page, open all along, gets the clinician's level and reason pushed to it.
        patient.wait_for_selector("#clinician-review:not([hidden])", timeout=TIMEOUT_MS)
        notice = patient.locator("#clinician-review")
        assert notice.inner_text().startswith("A clinician reviewed your consultation: Go to an emergency department now")
        assert patient.locator("#clinician-review-reason").inner_text() == REASON
        assert notice.locator("b").count() == 0  # the reason is text, never markup
        assert patient.locator("#urgency").inner_text() == "Go to an emergency department now"
        assert patient.locator("#urgency-source").is_visible()
        assert patient.locator("#advice-level").inner_text() == "Go to an emergency department now"
        assert patient.locator("#advice-text").inner_text() == REASON
        screenshot_save(patient, "patient-clinician-review")

        # A fresh load (REST state, not a push) shows the same.
        patient.reload()
        patient.wait_for_selector("#clinician-review:not([hidden])", timeout=TIMEOUT_MS)
        assert patient.locator("#clinician-review-reason").inner_text() == REASON
        assert re.search(r"emergency department", patient.locator("#urgency").inner_text())
        assert errors == [], errors
    finally:
        patient_context.close()
