"""A customer logs in, lands on the dashboard, sees the growth chart drawn, opens a
campaign's report from it and sees its time chart: no script error, no request to any
other origin (Chart.js is served by Tidings), no horizontal scroll on a phone.
Screenshots at 1280 and 375 px go to test-artifacts/e2e/."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot
from tests.factories import PASSWORD, campaign_status
from tidings.audience import mailing_lists
from tidings.audience import services as audience
from tidings.campaigns.models import Campaign
from tidings.sending import services, tokens, tracking
from tidings.sending.models import Delivery

pytestmark = pytest.mark.browser


def sent_campaign(account) -> Campaign:  # type: ignore[no-untyped-def]
    """A campaign sent over the last hour to 40 contacts at two domains, with opens and
    clicks recorded as the tracking links record them."""
    services.set_tracking(account, "contact")
    news = mailing_lists.save_list(account, name="Bakery news", optin="single")
    campaign = Campaign.objects.create(
        account=account,
        name="Rye week",
        subject="Rye is back",
        from_email="news@bakery.example",
        body='<p><a href="https://bakery.example/rye">Rye</a></p>',
        track_opens=True,
        track_clicks=True,
        **campaign_status("sent"),
        started_at=timezone.now() - timedelta(hours=1),
    )
    start = timezone.now() - timedelta(minutes=55)
    for i in range(40):
        domain = "gmail.com" if i % 3 else "outlook.com"
        contact = audience.add_contact(account, f"reader{i}@{domain}", lists=[news])
        delivery = Delivery.objects.create(
            campaign=campaign, contact=contact, status="sent", sent_at=start + timedelta(minutes=i)
        )
        if i % 2:
            tracking.record(tokens.TrackingToken(campaign.pk, delivery.pk), "open")
        if i % 5 == 1:
            token = tokens.TrackingToken(campaign.pk, delivery.pk, "https://bakery.example/rye")
            tracking.record(token, "click")
    return campaign


def test_log_in_land_on_the_dashboard_and_open_a_report(
    live_server, settings, customer, page: Page, screenshot: Screenshot
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    site = str(live_server.url)
    campaign = sent_campaign(customer.account)
    origin = urlsplit(site)
    elsewhere: list[str] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda r: (
            elsewhere.append(r.url)
            if urlsplit(r.url).netloc != origin.netloc and not r.url.startswith("data:")
            else None
        ),
    )
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(site + "/login/")
    page.get_by_label("Email:", exact=True).fill(customer.email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    assert page.url == site + "/dashboard/"
    expect(page.locator("canvas#growth-chart[data-drawn=true]")).to_be_attached()
    expect(page.locator("#growth-subscribed .rate")).to_have_text("+40")
    screenshot(page, "dashboard-1280")
    page.set_viewport_size({"width": 375, "height": 800})
    expect(page.locator("canvas#growth-chart[data-drawn=true]")).to_be_attached()
    # The chart follows the narrower window (Chart.js resizes on the next frame).
    page.wait_for_function("document.documentElement.scrollWidth <= 375")
    screenshot(page, "dashboard-375")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.locator("#recent-campaigns").get_by_role("link", name="Rye week").click()
    expect(page.get_by_role("heading", name="Report: Rye week", level=1)).to_be_visible()
    expect(page.locator("canvas#report-chart[data-drawn=true]")).to_be_attached()
    # 20 opened, and 4 more clicked without the pixel loading (a click counts as an
    # open): 24 of 40.
    expect(page.locator("#figure-opened .rate")).to_have_text("60.0 %")
    expect(page.locator("#links")).to_contain_text("https://bakery.example/rye")
    expect(page.locator("#domains")).to_contain_text("gmail.com")
    screenshot(page, "report-1280")
    page.set_viewport_size({"width": 375, "height": 800})
    expect(page.locator("canvas#report-chart[data-drawn=true]")).to_be_attached()
    # The chart follows the narrower window (Chart.js resizes on the next frame).
    page.wait_for_function("document.documentElement.scrollWidth <= 375")
    screenshot(page, "report-375")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(site + "/campaigns/")
    expect(page.get_by_role("link", name="Report Rye week")).to_be_visible()
    screenshot(page, "campaigns-1280")

    assert elsewhere == [], elsewhere
    assert errors == [], errors
    assert campaign.pk
