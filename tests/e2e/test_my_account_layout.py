"""My Account at a laptop's width (1280 px): every card holds its tables, the Users table
included, without a horizontal scroll bar. Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot, log_in
from tests.factories import UserFactory, populate_account
from tidings.audience.models import SubscriptionForm
from tidings.automations.models import Automation, SplitTest, WebhookEndpoint
from tidings.campaigns.models import Campaign

pytestmark = pytest.mark.browser

# Each table of the page whose content is wider than the box that shows it.
OVERFLOWING = """() => Array.from(document.querySelectorAll('.table-scroll, section.card'))
  .filter(box => box.scrollWidth > box.clientWidth + 1)
  .map(box => (box.previousElementSibling && box.previousElementSibling.textContent.trim())
              || box.id || box.className)"""


def wider_than_a_phone(
    page: Page, site: str, paths: Sequence[str], screenshot: Screenshot, every: bool = False
) -> dict[str, tuple[int, str]]:
    """Each page (answered 200) wider than 375 px: its width and its widest elements,
    with a screenshot of it (of `every` page when asked)."""
    too_wide = {}
    for path in paths:
        response = page.goto(site + path)
        assert response is not None and response.status == 200, path
        width = page.evaluate(PAGE_WIDTH)
        if width > 375:
            too_wide[path] = (width, page.evaluate(WIDEST))
        if width > 375 or every:
            screenshot(page, "phone" + path.replace("/", "-").rstrip("-"))
    return too_wide


def test_my_account_tables_fit_their_cards_at_1280_px(
    live_server, settings, page: Page, screenshot: Screenshot
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    ada = UserFactory(email="ada.lovelace-byron@analytical-engine.example.org", name="Ada Lovelace")
    populate_account(ada.account)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, str(live_server.url), ada.email)  # lands on the dashboard
    page.goto(str(live_server.url) + "/account/")
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()
    shot = screenshot(page, "my-account-1280")
    users = page.locator("h3", has_text="Users").locator("xpath=following-sibling::div[1]")
    users.screenshot(path=str(shot.with_name("02-users-table.png")))

    assert page.evaluate(OVERFLOWING) == []


# Every page a customer reads, at a phone's width.
PHONE_PAGES = [
    "/dashboard/",
    "/account/",
    "/account/edit/",
    "/account/processing/",
    "/account/api-keys/",
    "/lists/",
    "/lists/new/",
    "/contacts/",
    "/contacts/new/",
    "/segments/",
    "/segments/new/",
    "/forms/",
    "/requests/",
    "/audience/settings/",
    "/audience/import/",
    "/forms/new/",
    "/audience/export/",
    "/account/password/",
    "/campaigns/",
    "/campaigns/new/",
    "/templates/",
    "/images/",
    "/layouts/",
    "/sending/",
    "/account/billing/",
    "/pricing/",
    "/support/",
    "/support/new/",
    "/automations/",
    "/ab-tests/",
    "/webhooks/",
]
# The page itself is never wider than the screen; a table may scroll inside its box.
PAGE_WIDTH = "() => document.documentElement.scrollWidth"
# What sticks out: the outermost elements whose right edge passes the screen's.
WIDEST = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > innerWidth + 1
               && e.parentElement.getBoundingClientRect().right <= innerWidth + 1)
  .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
            + ' ' + (e.textContent || '').trim().slice(0, 40))"""


def test_a_customers_pages_fit_a_phone_375_px_wide(
    live_server, settings, page: Page, screenshot: Screenshot
) -> None:
    """Found walking the product at 375 px: the sending settings were 535 px wide (a
    select as wide as its longest option), My Account's tables and the campaign form's
    fieldset pushed the page sideways. Every page fits; wide tables scroll in their box."""
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.BASE_URL = live_server.url  # the media library's images
    ada = UserFactory(email="ada.lovelace-byron@analytical-engine.example.org", name="Ada Lovelace")
    populate_account(ada.account)
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, str(live_server.url), ada.email)
    assert wider_than_a_phone(page, str(live_server.url), PHONE_PAGES, screenshot) == {}


def test_a_forms_and_a_webhooks_pages_fit_a_phone_375_px_wide(
    live_server, settings, page: Page, screenshot: Screenshot
) -> None:
    """Found walking the product at 375 px: a saved form's page was 381 px wide (its
    hosted page's address, one long word) and a webhook endpoint's page 460 px (its
    address as the heading). A word longer than the line breaks instead."""
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    ada = UserFactory(email="ada@analytical-engine.example.org", name="Ada Lovelace")
    populate_account(ada.account)
    form = SubscriptionForm.objects.get(account=ada.account)
    endpoint = WebhookEndpoint.objects.get(account=ada.account)
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, str(live_server.url), ada.email)
    paths = (f"/forms/{form.uuid}/", f"/webhooks/{endpoint.uuid}/")
    assert wider_than_a_phone(page, str(live_server.url), paths, screenshot, every=True) == {}


def test_the_status_of_an_automation_and_an_ab_test_stands_out(
    live_server, settings, page: Page, screenshot: Screenshot
) -> None:
    """Found walking the product: an automation's heading read "Welcome series running"
    and an A/B test's line "Tested: subject. draft", the status in the same plain text
    as the words around it (the badge's style was only in the audience's and campaigns'
    stylesheets). Every page now draws it as a badge."""
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    ada = UserFactory(email="ada@analytical-engine.example.org", name="Ada Lovelace")
    populate_account(ada.account)
    automation = Automation.objects.get(account=ada.account)
    test = SplitTest.objects.get(campaign__account=ada.account)
    log_in(page, str(live_server.url), ada.email)
    for path in (f"/automations/{automation.uuid}/", "/automations/", f"/ab-tests/{test.uuid}/"):
        page.goto(str(live_server.url) + path)
        badge = page.locator("main .status").first
        expect(badge).to_be_visible()
        screenshot(page, "status" + path.replace("/", "-").rstrip("-"))
        style = badge.evaluate(
            "e => [getComputedStyle(e).display, getComputedStyle(e).backgroundColor]"
        )
        assert style[0] == "inline-block" and style[1] != "rgba(0, 0, 0, 0)", (path, style)


def test_number_date_and_time_fields_look_like_the_text_fields_beside_them(
    live_server, settings, page: Page, screenshot: Screenshot
) -> None:
    """Found walking the product: the sending settings' port, an automation step's wait
    and the A/B test's send times were the browser's bare small fields beside styled
    text fields (their style was only in the audience's stylesheet)."""
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    ada = UserFactory(email="ada@analytical-engine.example.org", name="Ada Lovelace")
    populate_account(ada.account)
    automation = Automation.objects.get(account=ada.account)
    log_in(page, str(live_server.url), ada.email)
    look = "e => { const s = getComputedStyle(e); return [s.paddingTop, s.borderTopColor]; }"
    for path, field in (
        ("/sending/", "input[type=number]"),
        (f"/automations/{automation.uuid}/", "input[name=wait_days]"),
        ("/ab-tests/", "input[type=datetime-local]"),
    ):
        page.goto(str(live_server.url) + path)
        screenshot(page, "fields" + path.replace("/", "-").rstrip("-"))
        text = page.locator("main input[type=text]").first.evaluate(look)
        assert page.locator(f"main {field}").first.evaluate(look) == text, (path, field)


def test_the_campaigns_table_fits_at_1280_px_with_every_column(
    live_server, settings, page: Page, screenshot: Screenshot
) -> None:
    """Found walking the product: at 1280 px the campaigns table scrolled in its box and
    cut "Duplicate" in two, with a sent campaign (its rates and report) and a scheduled
    one (its time zone) in the list."""
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    ada = UserFactory(email="ada@example.org", name="Ada Lovelace")
    populate_account(ada.account)
    now = timezone.now()
    Campaign.objects.create(
        account=ada.account, name="November newsletter for the whole list", subject="Our news",
        from_email="news@example.net", status=Campaign.Status.SENT, started_at=now,
        finished_at=now,
    )  # fmt: skip
    Campaign.objects.create(
        account=ada.account, name="December newsletter",
        subject="{{ contact.first_name }}, our news",
        from_email="news@example.net", status=Campaign.Status.SCHEDULED,
        scheduled_at=now + timedelta(days=3), schedule_timezone="America/Argentina/Buenos_Aires",
    )  # fmt: skip
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, str(live_server.url), ada.email)
    page.goto(str(live_server.url) + "/campaigns/")
    expect(page.get_by_role("heading", name="Campaigns", exact=True)).to_be_visible()
    screenshot(page, "campaigns-1280")
    assert page.evaluate(OVERFLOWING) == []
