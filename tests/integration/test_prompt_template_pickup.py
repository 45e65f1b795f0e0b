"""A running worker applies an admin's prompt template edit to its next message, without a restart.

Real parts only (tests/conftest.py `system`): the admin edits the SYMPTOM template through the REST API
(`/api/templates/`, DRF token of the demo `admin` account), a patient's message then goes through the
Celery worker subprocess that was already running, and the message records the template version it was
read with. Deactivating the override is picked up the same way. (tests/browser/test_admin_templates.py
does the same edit through the Django admin in a browser.)
"""
from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from typing import Any

import pytest

from consult.extraction import BUILTIN_TEMPLATE_VERSION
from tools.launcher import ROOT, manage_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PATIENT_TEXT = "I have had a headache and a sore throat for three days"
# The shipped SYMPTOM template, reworded: still a usable query, so the model keeps finding symptoms.
EDITED_TEXT = ("Find every {anchor} or complaint the patient reports, such as pain, fever, cough, nausea, rash, "
               "dizziness or tiredness.")


@pytest.fixture(scope="module")
def admin_token(live_system) -> str:
    """A DRF token of the demo `admin` account, created in the live system's database as `make run` does
    (manage.py load_defaults, which also seeds the prompt templates)."""
    _, env = live_system.demo_accounts_create()
    output = subprocess.run(manage_command("drf_create_token", "admin"), env=env, cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    return re.search(r"Generated token (\w+) for user admin", output).group(1)


def admin_api(system, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        system.base_url + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Accept": "application/json",
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_running_worker_picks_up_an_edited_template_and_its_deactivation(system, admin_token):
    worker = system.worker
    status, listing = admin_api(system, "GET", "/api/templates/?page_size=100", admin_token)
    assert status == 200, listing
    [template] = [t for t in listing["results"] if t["entity_type"] == "SYMPTOM"]
    assert not template["is_active"], "another test left the SYMPTOM override active"
    _, _, before = system.patient_says(PATIENT_TEXT)
    assert not before["template_version"].startswith("SYMPTOM."), before["template_version"]

    try:
        status, edited = admin_api(system, "PATCH", f"/api/templates/{template['id']}/", admin_token,
                                   {"text": EDITED_TEXT, "is_active": True})
        assert status == 200, edited
        assert edited["version"] == template["version"] + 1
        _, _, during = system.patient_says(PATIENT_TEXT)
        assert during["template_version"] == f"SYMPTOM.{edited['version']}"
        assert during["entities"], "the edited template still finds mentions"

        status, deactivated = admin_api(system, "PATCH", f"/api/templates/{template['id']}/", admin_token,
                                        {"is_active": False})
        assert status == 200, deactivated
        _, _, after = system.patient_says(PATIENT_TEXT)
        # Back on the model's own templates, named as such.
        assert after["template_version"] == BUILTIN_TEMPLATE_VERSION
    finally:
        # Leave the template as it was (as a new version) for later tests on this live system.
        admin_api(system, "POST", f"/api/templates/{template['id']}/revert/", admin_token,
                  {"version": template["version"]})

    # One worker process read all three messages: no restart was needed.
    assert system.worker is worker and worker.poll() is None
