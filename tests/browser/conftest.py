"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against a running
server: the dashboard's browser tests. Screenshots go to build/artifacts/dashboard/ (or
$RUNNER_ARTIFACTS_DIR/dashboard), kept after the run."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import ROOT

CHROMIUM = os.environ.get("RUNNER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def artifacts() -> str:
    base = os.environ.get("RUNNER_ARTIFACTS_DIR") or os.path.join(ROOT, "build", "artifacts")
    path = os.path.join(base, "dashboard")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    """Module-scoped, not session-scoped: Playwright's sync API keeps an asyncio loop marked
    running in the main thread until it exits, which would make every later test that runs
    a loop in that thread fail ("another loop is running")."""
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), (
        f"no Chromium at {CHROMIUM}: scripts/setup-system.sh installs Debian's chromium "
        "(or set RUNNER_CHROMIUM to a Chromium binary)")
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's own sandbox refuses to start; the
        # pages are our own dashboard on loopback, nothing untrusted.
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.js_errors = errors
    yield pg
    context.close()
