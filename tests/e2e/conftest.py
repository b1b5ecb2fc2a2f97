"""Browser fixtures for the end-to-end tests: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots of every page a browser test visits (git-ignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"

Screenshot = Callable[[Page, str], Path]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (./dev test does it)")
    # While Playwright's sync API is active it marks an event loop as running in this
    # thread, and Django then refuses ORM calls from the test (and from the database
    # flush after it) as "async-unsafe". Nothing here is asynchronous, so allow them.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context: no cookies, no storage from any other test. A test
    fails if any page it visited reported a Content-Security-Policy violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    violations: list[str] = []
    try:
        opened = context.new_page()
        opened.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        yield opened
    finally:
        context.close()
    assert violations == [], violations


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshot:
    """Save a full-page screenshot as test-artifacts/e2e/<test>/<NN>-<name>.png."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    taken = 0

    def take(page: Page, name: str) -> Path:
        nonlocal taken
        taken += 1
        path = folder / f"{taken:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def log_in(page: Page, site: str, email: str) -> None:
    """Log in on the login page as a customer (the factories' password), as a person
    does, and wait for the dashboard."""
    page.goto(site + "/login/")
    page.get_by_label("Email:", exact=True).fill(email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
