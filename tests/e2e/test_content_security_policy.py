"""Pages work under their Content-Security-Policy: the scripts moved out of the
templates still run, and no page reports a violation (the `page` fixture fails a test
on any)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tidings.accounts import apikeys

pytestmark = pytest.mark.browser


@pytest.fixture
def site(live_server, settings) -> str:  # type: ignore[no-untyped-def]
    settings.BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    return str(live_server.url)


def log_in(page: Page, site: str, customer, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(site + "/login/")
    page.get_by_label("Email:", exact=True).fill(customer.email)
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()


def test_public_pages_and_the_api_docs_run_under_the_policy(site: str, page: Page, db) -> None:  # type: ignore[no-untyped-def]
    for path in ("/", "/privacy/", "/register/", "/login/", "/cookies/"):
        response = page.goto(site + path)
        assert response is not None and response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
    page.goto(site + "/api/v1/docs")
    expect(page.locator(".swagger-ui .info")).to_be_visible()


def test_the_customers_scripts_run_from_static_files(
    site: str,
    page: Page,
    customer,  # type: ignore[no-untyped-def]
    password: str,
) -> None:
    log_in(page, site, customer, password)
    # The segment builder adds a row (segment_form.js).
    page.goto(site + "/segments/new/")
    rows = page.locator("#segment-form table.rows tbody tr")
    before = rows.count()
    page.get_by_role("button", name="Add a condition").click()
    expect(rows).to_have_count(before + 1)
    # The contacts page's "all on this page" box (contacts.js) and the API keys page
    # (api_keys.js, formerly an onfocus attribute) load without a violation.
    apikeys.create_api_key(customer.account, name="old", by=customer)
    page.goto(site + "/contacts/")
    page.goto(site + "/account/api-keys/")
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()
