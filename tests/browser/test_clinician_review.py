"""A clinician in a real browser (Debian's Chromium driven by Playwright) against the live system: Daphne,
a real Celery worker with the real NER model, Redis. The cases are made by sending patient messages through
the REST API, so the entities, the record and the triage are what the worker produced.

The red flag comes from the triage knowledge base (a chest-pain red flag), which match the patient's own words when
the model types a mention differently, so the case is an emergency whatever model is installed. Which
entities the model finds is not asserted: the clinician rejects whichever mention the model found last and
adds one that no mention covers yet.

Screenshots go to test-results/clinician-dashboard.png and clinician-case.png; with UPDATE_SCREENSHOTS=1
they are also copied to docs/screenshots/ (the ones the README shows).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RED_FLAG_TEXT = "I have crushing chest pain and I am sweating, it started an hour ago"
ROUTINE_TEXT = "I've had a headache and fever for two days, no medications"
SAME_DAY_TEXT = "I get short of breath when I walk up the stairs and I have a dry cough"
# The dashboard's order: the values of consult.models.Urgency, most urgent first, then not assessed.
URGENCY_ORDER = ["emergency_ambulance", "emergency", "consultation_24", "consultation", "self_care", "none"]
# Mentions a clinician might add by selecting them, in order of preference; the first one the model did not
# already annotate with that type is added (an exact duplicate is refused, rightly).
MISSED_CANDIDATES = [("sweating", "SYMPTOM"), ("crushing chest pain", "SYMPTOM"), ("an hour ago", "DURATION"),
                     ("chest", "ANATOMY")]
HOSTILE_TEXT = "<img src=x onerror=window.__xss=1> I have had a headache since yesterday"
RECORD_TYPES = {"SYMPTOM", "DISEASE", "DRUG"}
FHIR_RECORD_RESOURCES = {"Condition", "Observation", "MedicationStatement"}


def clinician_sign_in(page, base_url: str, password: str) -> None:
    page.goto(base_url + "/clinician/")
    page.wait_for_url(re.compile(r"/accounts/login/"))  # the workspace asks for a sign-in first
    page.fill("#id_username", "clinician")
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/clinician/")


def annotations_shown(page, message_id: int) -> list[dict]:
    """The mention rows of one message as the page shows them: key, text, type, span and review status."""
    return page.evaluate("""(messageId) => Array.from(
        document.querySelectorAll(`#message-${messageId} tr.annotation`), (row) => {
          const form = row.querySelector("form.correct__form");
          return {key: row.id.replace(/^ann-/, ""), text: row.querySelector("td .ent").textContent,
                  type: form.elements.type.value, start: Number(form.elements.start.value),
                  end: Number(form.elements.end.value), status: row.querySelector(".status").textContent};
        })""", message_id)


def select_text(page, message_id: int, start: int, end: int) -> None:
    """Select characters start..end of a message with the mouse, as a clinician does: press on the first
    character's left edge and release on the last one's right edge."""
    container = page.locator(f".turn__text[data-message-id='{message_id}']")
    container.scroll_into_view_if_needed()
    box = page.evaluate("""([messageId, start, end]) => {
        const container = document.querySelector(`.turn__text[data-message-id="${messageId}"]`);
        const rectOf = (position) => {  // the box of one character, wherever highlights split the text
          const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
          let seen = 0;
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (position < seen + node.length) {
              const range = document.createRange();
              range.setStart(node, position - seen);
              range.setEnd(node, position - seen + 1);
              return range.getBoundingClientRect();
            }
            seen += node.length;
          }
          throw new Error(`no character ${position}`);
        };
        const first = rectOf(start), last = rectOf(end - 1);
        return {x1: first.left + 1, y1: first.top + first.height / 2, x2: last.right - 1, y2: last.top + last.height / 2};
      }""", [message_id, start, end])
    page.mouse.move(box["x1"], box["y1"])
    page.mouse.down()
    page.mouse.move(box["x2"], box["y2"], steps=8)
    page.mouse.up()


def audit_entries(page) -> list[str]:
    return [" ".join(text.split()) for text in page.locator("section[aria-labelledby='audit-title'] ol.audit > li")
            .all_inner_texts()]


def test_clinician_reviews_red_flag_case_and_exports_fhir(chromium_executable, system, demo_logins, patient_says,
                                                         page, screenshot_save):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Less urgent consultations first, so that the dashboard has something to rank.
    patient_says(ROUTINE_TEXT)
    patient_says(SAME_DAY_TEXT)
    consultation_id, _, message = patient_says(RED_FLAG_TEXT)
    case_url = f"{system.base_url}/clinician/consultations/{consultation_id}/"

    clinician_sign_in(page, system.base_url, demo_logins["clinician"])

    # Dashboard: the most urgent first, so the newest emergency is on the first row, highlighted as a red flag.
    urgencies = page.eval_on_selector_all(
        "table.cases tbody tr .urgency", "spans => spans.map(span => span.className.match(/urgency--(\\w+)/)[1])")
    # The two other patients are still being interviewed (no level before the interview concludes): listed last.
    assert {"emergency_ambulance", "none"} <= set(urgencies), urgencies
    assert urgencies == sorted(urgencies, key=URGENCY_ORDER.index), urgencies
    first_row = page.locator("table.cases tbody tr").first
    assert first_row.locator(f"a[href='/clinician/consultations/{consultation_id}/']").count() == 1
    assert "case-row--red-flag" in first_row.get_attribute("class")
    assert "Call an ambulance now" in first_row.inner_text()
    screenshot_save(page, "clinician-dashboard")

    first_row.locator("td.case-row__complaint a").click()  # the chief complaint opens the case
    page.wait_for_url(case_url)
    from consult.triage import knowledge_load

    shown = page.locator("section.red-flags").inner_text()
    assert any(rule.id in shown for rule in knowledge_load().red_flags), shown
    shown = annotations_shown(page, message["id"])
    assert shown, f"the worker found no mention in {RED_FLAG_TEXT!r}"

    # Reject the model's last mention (with the shipped model: "sweating" typed as a condition).
    rejected = shown[-1]
    page.locator(f"#ann-{rejected['key']}").get_by_role("button", name="Reject").click()
    page.wait_for_url(f"{case_url}#ann-{rejected['key']}")
    assert page.locator(f"#ann-{rejected['key']} .status").inner_text() == "rejected"
    # The highlight's tooltip lists every mention under it with its review status.
    assert page.locator(f".turn__text[data-message-id='{message['id']}'] mark[title*='{rejected['type']}']"
                        f"[title*='rejected']").count() >= 1

    # Add a missed mention by selecting its words in the message.
    annotated = {(a["type"], a["start"], a["end"]) for a in shown}
    added_text, added_type = next((text, type_) for text, type_ in MISSED_CANDIDATES
                                  if (type_, RED_FLAG_TEXT.index(text), RED_FLAG_TEXT.index(text) + len(text))
                                  not in annotated)
    added_start = RED_FLAG_TEXT.index(added_text)
    select_text(page, message["id"], added_start, added_start + len(added_text))
    form = page.locator(f".add-mention__form[data-message-id='{message['id']}']")
    assert form.locator(".add-mention__selected").inner_text() == (
        f"“{added_text}” ({added_start}–{added_start + len(added_text)})")
    assert form.locator("input[name=start]").input_value() == str(added_start)
    assert form.locator("input[name=end]").input_value() == str(added_start + len(added_text))
    form.locator("select[name=type]").select_option(added_type)
    form.get_by_role("button", name="Add mention").click()
    page.wait_for_url(re.compile(re.escape(case_url) + r"#ann-r\d+$"))
    [added] = [a for a in annotations_shown(page, message["id"]) if a["status"] == "added"]
    assert (added["text"], added["type"], added["start"]) == (added_text, added_type, added_start)

    page.get_by_role("button", name="Mark consultation reviewed").click()
    page.wait_for_url(case_url)
    assert page.get_by_role("button", name="Remove review mark").is_visible()
    assert "reviewed" in page.locator(".case-header").inner_text() and "by clinician" in (
        page.locator(".case-header").inner_text())

    # The audit trail says who did what, in order, with the values after each change.
    trail = audit_entries(page)
    assert len(trail) == 3, trail
    assert "clinician · entity_reject" in trail[0] and "status=rejected" in trail[0]
    assert f"text={rejected['text']}" in trail[0]
    assert "clinician · entity_add" in trail[1] and f"text={added_text}" in trail[1]
    assert f"type={added_type}" in trail[1]
    assert "clinician · consultation_reviewed" in trail[2] and "reviewed=True" in trail[2]
    screenshot_save(page, "clinician-case")

    # FHIR export: a valid R4 Bundle whose record is the reviewed one (rejected mentions out, added ones in).
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export FHIR (JSON)").click()
    download = download_info.value
    assert download.suggested_filename == f"consultation-{consultation_id}.fhir.json"
    bundle = json.loads(Path(download.path()).read_text())
    assert bundle["resourceType"] == "Bundle"
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
    resources = [entry["resource"] for entry in bundle["entry"]]
    [encounter] = [r for r in resources if r["resourceType"] == "Encounter"]
    assert encounter["priority"]["coding"][0]["code"] == "EM"
    exported = {r["code"]["text"].lower() if "code" in r else r["medicationCodeableConcept"]["text"].lower()
                for r in resources if r["resourceType"] in FHIR_RECORD_RESOURCES}
    kept = {a["text"].strip().lower() for a in annotations_shown(page, message["id"])
            if a["type"] in RECORD_TYPES and a["status"] != "rejected"}
    assert exported == kept, (exported, kept)
    assert all(r["status"] == "final" for r in resources if r["resourceType"] == "Observation")
    assert errors == [], errors


def test_patient_markup_shows_as_text_on_the_case_page(chromium_executable, system, demo_logins, patient_says,
                                                      page):
    consultation_id, _, message = patient_says(HOSTILE_TEXT)
    clinician_sign_in(page, system.base_url, demo_logins["clinician"])
    page.goto(f"{system.base_url}/clinician/consultations/{consultation_id}/")

    text = page.locator(f".turn__text[data-message-id='{message['id']}']")
    assert text.inner_text() == HOSTILE_TEXT
    # The decisive check: no element was made from the patient's text. (The page's Content-Security-Policy
    # would also stop the inline handler, so window.__xss alone could not catch a lost escape.)
    assert page.locator("main img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"

    page.get_by_role("link", name="Printable summary").click()
    page.wait_for_url(re.compile(r"/summary/$"))
    assert HOSTILE_TEXT in page.locator("article.printable").inner_text()
    assert page.locator("main img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
