"""My Account at a laptop's width (1280 px): every card holds its tables, the Users table
included, without a horizontal scroll bar. Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot
from tests.factories import PASSWORD, UserFactory, populate_account

pytestmark = pytest.mark.browser

# Each table of the page whose content is wider than the box that shows it.
OVERFLOWING = """() => Array.from(document.querySelectorAll('.table-scroll, section.card'))
  .filter(box => box.scrollWidth > box.clientWidth + 1)
  .map(box => (box.previousElementSibling && box.previousElementSibling.textContent.trim())
              || box.id || box.className)"""


def test_my_account_tables_fit_their_cards_at_1280_px(
    live_server, settings, page: Page, screenshot: Screenshot
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    ada = UserFactory(email="ada.lovelace-byron@analytical-engine.example.org", name="Ada Lovelace")
    populate_account(ada.account)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(str(live_server.url) + "/login/")
    page.get_by_label("Email:", exact=True).fill(ada.email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/")  # where a customer lands
    page.goto(str(live_server.url) + "/account/")
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()
    shot = screenshot(page, "my-account-1280")
    users = page.locator("h3", has_text="Users").locator("xpath=following-sibling::div[1]")
    users.screenshot(path=str(shot.with_name("02-users-table.png")))

    assert page.evaluate(OVERFLOWING) == []
