"""Chromium for the browser tests: Debian's /usr/bin/chromium (CHROMIUM_PATH overrides), launched
headless by Playwright. Playwright's own browser downloads are never used."""
from __future__ import annotations

import os

import pytest

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
