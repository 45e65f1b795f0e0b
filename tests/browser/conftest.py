"""Chromium for the browser tests: Debian's /usr/bin/chromium (CHROMIUM_PATH overrides), launched
headless by Playwright. Playwright's own browser downloads are never used.

Also, for tests against the live system: the demo accounts in its database (`demo_logins`), a patient
whose messages go through the real worker (`patient_says`), and screenshots (`screenshot_save`).
"""
from __future__ import annotations

import os
import shutil

import pytest

from tools.launcher import ROOT

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(f"Chromium is not installed at {path} (apt-get install chromium; .ci/run does this)")
    return path


@pytest.fixture(scope="module")
def browser(chromium_executable):
    # Playwright's sync API keeps an event loop running in this thread while it is open, which breaks every
    # later asyncio.run() in the session: so it lives only as long as a browser test module.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB")
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


# Accounts, patients and screenshots for tests against the live system (tests/conftest.py `system`) ------


@pytest.fixture(scope="session")
def demo_logins(live_system) -> dict[str, str]:
    """{username: password} of the demo accounts `clinician` and `admin` in the live system's database,
    created as `make run` creates them: manage.py load_defaults (which also seeds the prompt templates)."""
    logins, _ = live_system.demo_accounts_create()
    return logins


@pytest.fixture
def patient_says(system):
    """say(text, consultation=None) -> (consultation_id, token, message): a patient sends `text` through the
    REST API (starting a consultation unless given one's (id, token)), and the call returns once the real
    worker has processed it (tests/system_processes.py `SystemProcesses.patient_says`)."""
    return system.patient_says


@pytest.fixture
def screenshot_save():
    """save(page, name): a full-page screenshot in test-results/<name>.png, also copied to
    docs/screenshots/<name>.png (the ones the README shows) when UPDATE_SCREENSHOTS=1."""
    def save(page, name: str) -> None:
        results = ROOT / "test-results"
        results.mkdir(exist_ok=True)
        path = results / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            target = ROOT / "docs" / "screenshots" / f"{name}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    return save
