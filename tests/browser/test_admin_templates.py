"""An admin edits a prompt template in the Django admin (Debian's Chromium driven by Playwright), and the
Celery worker that is already running uses it for the next patient message, without a restart.

Workers compare the active templates' combined version before each message (consult/prompt_templates.py)
and every processed message and entity stores the template version it was read with
(`template_version`: "SYMPTOM.<version>" while the SYMPTOM override is active). The extractor records the
version only once it accepted the templates, so the stored version proves the edit reached the model.
"""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from tools.launcher import ROOT, manage_command

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

PATIENT_TEXT = "I have had a headache and a sore throat for three days"
# The shipped SYMPTOM template, reworded: still a usable query, so the model keeps finding symptoms.
EDITED_TEXT = ("Find every {anchor} or complaint the patient reports, such as pain, fever, cough, nausea, rash, "
               "dizziness or tiredness.")


def symptom_template_version(system) -> int:
    output = subprocess.run(
        manage_command("shell", "-c", "from consult.models import PromptTemplate; "
                                      "print(PromptTemplate.objects.get(entity_type='SYMPTOM').version)"),
        env=system.env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return int(output.split()[-1])


@pytest.fixture
def symptom_template_restored(system, demo_logins):
    """Puts the SYMPTOM template back as it was after the test (as a new version, through the same service
    the admin's revert uses), so that later tests on this live system see the model's own template."""
    version = symptom_template_version(system)
    yield version
    subprocess.run(manage_command("shell", "-c", (
        "from consult.models import PromptTemplate; from consult.services import prompt_templates; "
        "template = PromptTemplate.objects.get(entity_type='SYMPTOM'); "
        f"template.version == {version} or prompt_templates.prompt_template_revert("
        f"template=template, version={version}, actor=None)")),
        env=system.env, cwd=ROOT, check=True, capture_output=True)


def admin_sign_in(page, base_url: str, password: str) -> None:
    page.goto(base_url + "/admin/")
    page.wait_for_url(re.compile(r"/admin/login/"))
    page.fill("#id_username", "admin")
    page.fill("#id_password", password)
    page.locator("input[type=submit]").click()
    page.wait_for_url(base_url + "/admin/")


def test_admin_edits_symptom_template_and_the_running_worker_uses_it(chromium_executable, system, demo_logins,
                                                                    symptom_template_restored, patient_says, page):
    worker = system.worker
    _, _, before = patient_says(PATIENT_TEXT)
    assert not before["template_version"].startswith("SYMPTOM."), before["template_version"]

    admin_sign_in(page, system.base_url, demo_logins["admin"])
    page.get_by_role("link", name="Prompt templates").click()
    page.get_by_role("link", name="SYMPTOM", exact=True).click()
    assert page.locator(".field-version .readonly").inner_text() == str(symptom_template_restored)
    page.fill("#id_text", EDITED_TEXT)
    page.check("#id_is_active")
    page.locator("input[name=_continue]").click()  # "Save and continue editing": stays on the template
    page.wait_for_selector(".messagelist .success")
    version = int(page.locator(".field-version .readonly").inner_text())
    assert version == symptom_template_restored + 1
    assert page.locator("#id_text").input_value() == EDITED_TEXT
    # The version history names the new version, who saved it and what changed.
    newest = page.locator("#versions-group tbody tr").first
    assert newest.locator("td.field-version").inner_text() == str(version)
    assert newest.locator("td.field-changed_by_name").inner_text() == "admin"
    assert newest.locator("td.field-note").inner_text() == "changed text, is_active"

    consultation_id, _, after = patient_says(PATIENT_TEXT)
    assert after["template_version"] == f"SYMPTOM.{version}"
    # The stored entities carry it too (the case API, as the admin: superusers are clinicians).
    response = page.request.get(f"{system.base_url}/api/cases/{consultation_id}/")
    assert response.ok, response.status
    [message] = [m for m in response.json()["messages"] if m["id"] == after["id"]]
    entities = [a for a in message["annotations"] if a["entity_id"] is not None]
    assert entities, f"no entities in {PATIENT_TEXT!r}: {json.dumps(message)}"
    assert {a["template_version"] for a in entities} == {f"SYMPTOM.{version}"}
    # The same worker process read both messages: the edit needed no restart.
    assert system.worker is worker and worker.poll() is None
