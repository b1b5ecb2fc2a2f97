"""The operator's administrator, in the browser: the staff home links the privacy
office, and a message of the local outbox shows its headers, its text and its HTML in a
sandboxed frame (no CSP violation on the page). Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot
from tests.factories import PASSWORD, StaffFactory
from tests.staff.conftest import current_token
from tidings.accounts.models import User
from tidings.core.mail import Kind, OutboundMessage, Purpose, post
from tidings.outbox.models import OutboxMessage

pytestmark = pytest.mark.browser


def test_an_administrator_reads_a_message_of_the_outbox(
    live_server, settings, page: Page, screenshot: Screenshot
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.EMAIL_DELIVERY = "outbox"
    site = str(live_server.url)
    admin = StaffFactory(email="admin@operator.example", staff_role=User.StaffRole.ADMIN)
    device = TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)
    post(
        OutboundMessage(
            to="ada@example.org", subject="Your details were changed",
            text="Hello Ada,\nyour phone number was changed.",
            html="<html><body><h1>Hello Ada</h1><p>Your number was changed.</p></body></html>",
            purpose=Purpose.SERVICE, kind=Kind.NOTICE,
        )
    )  # fmt: skip
    message = OutboxMessage.objects.get()

    page.goto(site + "/staff/admin/login/")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Code from your authenticator app").fill(current_token(device))
    page.get_by_role("button", name="Log in").click()
    office = page.get_by_role("link", name="Requests, erasures, disclosures")
    expect(office).to_have_attribute("href", "/staff/privacy-office/")
    screenshot(page, "staff-home")

    page.goto(f"{site}/staff/admin/outbox/outboxmessage/{message.pk}/change/")
    page.get_by_label("Why do you need to see customers' personal data?").fill(
        "ticket 77: customer says the notice never arrived"
    )
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("pre.outbox-headers")).to_contain_text("Subject: Your details were changed")
    expect(page.locator("pre.outbox-text")).to_contain_text("your phone number was changed.")
    frame = page.frame_locator("iframe.outbox-html")
    expect(frame.get_by_role("heading", name="Hello Ada")).to_be_visible()
    screenshot(page, "outbox-message")
