"""A privacy officer runs a personal-data breach in the browser, from the discovery to
the last notice, and a customer reads it on their pages (P33). Screenshots go to
test-artifacts/e2e/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from tests.breaches.conftest import make_tenant
from tests.e2e.conftest import Screenshot
from tests.factories import PASSWORD, StaffFactory
from tests.staff.conftest import current_token
from tidings.accounts.models import User
from tidings.breaches.models import Filing, Notice
from tidings.outbox.models import OutboxMessage

pytestmark = pytest.mark.browser


@pytest.mark.promise("P33")
def test_a_privacy_officer_runs_a_breach_from_discovery_to_the_last_notice(
    live_server, settings, page: Page, screenshot: Screenshot
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.EMAIL_DELIVERY = "outbox"
    site = str(live_server.url)
    acme = make_tenant("Acme", 3, languages=("en", "fr"))
    officer = StaffFactory(email="dpo@operator.example", staff_role=User.StaffRole.PRIVACY_OFFICER)
    device = TOTPDevice.objects.create(user=officer, name="phone", confirmed=True)

    page.goto(site + "/staff/admin/login/")
    page.get_by_label("Email").fill(officer.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Code from your authenticator app").fill(current_token(device))
    page.get_by_role("button", name="Log in").click()
    page.goto(site + "/staff/privacy-office/")
    page.get_by_role("link", name=re.compile("The breach register")).click()

    detected = timezone.localtime() - timedelta(hours=2)
    page.get_by_label("What happened, in a line").fill("Contact list readable by another tenant")
    page.get_by_label("Detected at").fill(detected.strftime("%Y-%m-%d %H:%M"))
    page.get_by_role("button", name="Record incident").click()
    expect(page.locator(".breach-clock")).to_contain_text("Authority report due in")

    page.get_by_label("Loss of confidentiality").check()
    page.get_by_label("Cause").fill("a missing account check on an export route")
    page.get_by_label("Likely consequences").fill("phishing of the contacts")
    page.get_by_label("Measures taken or proposed").fill("route fixed; the download deleted")
    page.get_by_role("button", name="It is a personal-data breach").click()

    page.locator('input[value="audience.Contact"]').check()
    page.locator('input[value="accounts.User"]').check()
    page.get_by_role("button", name="Compute scope").click()
    expect(page.locator("#scope")).to_contain_text("2 customers' users (controller)")
    expect(page.locator("#scope")).to_contain_text("3 contacts (processor)")
    # Acme never ordered and its contacts keep no country: counted, as unknown.
    expect(page.locator("#countries")).to_contain_text("unknown")
    assert not OutboxMessage.objects.exists()  # the scope is a dry run
    screenshot(page, "scoped")

    page.get_by_label("The authority's reference").fill("DPA-2026-0042")
    page.get_by_role("button", name="Record the filing").click()
    expect(page.get_by_text("DPA-2026-0042")).to_be_visible()
    assert Filing.objects.get().phase == 1
    expect(page.locator(".breach-clock")).to_contain_text("Reported to the authority")

    page.get_by_role("button", name="Send the notices (each person once)").click()
    expect(page.locator("#told")).to_contain_text("2 users told of their own data")
    page.get_by_role("button", name="Send the notices (each person once)").click()
    assert Notice.objects.count() == 4 and OutboxMessage.objects.count() == 4
    screenshot(page, "notified")

    # The customer sees the banner until they have read it.
    customer = acme.users[0]
    page.context.clear_cookies()
    page.goto(site + "/login/")
    page.get_by_label("Email").fill(customer.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(site + "/account/")
    banner = page.locator(".breach-notices")
    expect(banner).to_contain_text("A personal-data breach concerns your data")
    screenshot(page, "customer-banner")
    while page.locator(".breach-notice").count():
        page.locator(".breach-notice").first.get_by_role("button", name="I have read it").click()
    expect(page.locator(".breach-notices")).to_have_count(0)
