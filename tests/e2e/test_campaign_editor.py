"""A customer writes a campaign in the browser, previews it as one of their contacts and
sends a test that arrives at a real SMTP server (aiosmtpd).

Screenshots of every step go to test-artifacts/campaigns/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, Response, expect

from tests.conftest import SMTPSink
from tests.factories import PASSWORD
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.campaigns.models import Campaign

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "campaigns"


class Shots:
    def __init__(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()
        self.taken = 0

    def __call__(self, page: Page, name: str) -> None:
        self.taken += 1
        page.screenshot(path=str(ARTIFACTS / f"{self.taken:02d}-{name}.png"), full_page=True)


def wait_for_mail(smtp: SMTPSink, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(smtp.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(smtp.messages) >= count, [m["Subject"] for m in smtp.messages]


def test_write_preview_and_test_a_campaign(
    live_server, smtp_mail: SMTPSink, settings, customer, page: Page
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    site = str(live_server.url)
    news = MailingList.objects.create(account=customer.account, name="Bakery news")
    audience.add_contact(
        customer.account,
        "bob@example.org",
        name="Bob Stone",
        attributes={"city": "Ghent"},
        lists=[news],
    )
    shot = Shots()
    failed: list[str] = []
    script_errors: list[str] = []

    def check(response: Response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            failed.append(f"{response.status} {response.url}")

    page.on("response", check)
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    # Failed loads are checked above (by URL, so the favicon Chromium asks for is known).
    page.on(
        "console",
        lambda m: (
            script_errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )

    page.goto(site + "/login/")
    page.get_by_label("Email:", exact=True).fill(customer.email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", name="Campaigns", level=1)).to_be_visible()
    shot(page, "campaigns-empty")

    # A new campaign, written in the rich-text editor.
    page.get_by_role("link", name="New campaign").click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    page.get_by_label("Campaign name (only you see it)").fill("November news")
    page.get_by_label("Subject", exact=True).fill(
        'Hello {{ contact.first_name | default("friend") }}'
    )
    page.get_by_label("Preheader (the line inboxes show after the subject)").fill(
        "Rye bread and a workshop"
    )
    page.get_by_label("Format", exact=True).select_option("richtext")
    editor = page.get_by_role("textbox", name="Body")
    expect(editor).to_be_visible()
    expect(page.locator("textarea#id_body")).to_be_hidden()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type("Fresh rye bread")
    page.keyboard.press("Control+A")
    toolbar = page.get_by_role("toolbar", name="Formatting")
    toolbar.get_by_role("button", name="Bold").click()
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.keyboard.type("Dear ")
    toolbar.get_by_role("button", name="Insert first name").click()
    page.keyboard.type(", see you in the bakery.")
    page.get_by_role("checkbox", name="Bakery news").check()
    expect(page.get_by_role("checkbox", name="Count opens (a tracking pixel)")).not_to_be_checked()
    shot(page, "new-campaign-rich-text")
    page.get_by_role("button", name="Save and preview").click()

    # The preview: as the made-up contact first, in a sandboxed frame, with the text part.
    expect(page.get_by_role("heading", name="Preview “November news”")).to_be_visible()
    campaign = Campaign.objects.get(account=customer.account)
    assert "<b>Fresh rye bread</b>" in campaign.body
    assert '{{ contact.first_name | default("there") }}' in campaign.body
    assert list(campaign.lists.all()) == [news]
    expect(page.locator("#preview-subject")).to_have_text("Hello Alex")
    frame = page.frame_locator("iframe.preview")
    expect(frame.get_by_text("Fresh rye bread")).to_be_visible()
    expect(frame.get_by_text("Dear Alex, see you in the bakery.")).to_be_visible()
    expect(frame.get_by_role("link", name="Unsubscribe")).to_be_visible()
    assert page.locator("iframe.preview").get_attribute("sandbox") == ""
    expect(page.locator("#preview-text")).to_contain_text("Dear Alex, see you in the bakery.")
    shot(page, "preview-sample-contact")

    # Preview as Bob, one of the account's contacts.
    page.get_by_label("Preview as the contact with address").fill("bob@example.org")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#preview-subject")).to_have_text("Hello Bob")
    expect(frame.get_by_text("Dear Bob, see you in the bakery.")).to_be_visible()
    shot(page, "preview-as-bob")

    # A test to two addresses, personalised for Bob, arrives at the SMTP server.
    recipients = page.get_by_label("Send a test to (up to 5 addresses, separated by commas)")
    recipients.fill("me@example.org, boss@example.org")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("Test sent to me@example.org, boss@example.org.")).to_be_visible()
    shot(page, "test-sent")
    wait_for_mail(smtp_mail, 2)
    for message in smtp_mail.messages:
        assert message["Subject"] == "[Test] Hello Bob"  # a test send says so
        assert message.get_content_type() == "multipart/alternative"
        html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert "<b>Fresh rye bread</b>" in html and "style=" in html
        assert "Dear Bob, see you in the bakery." in text
    assert sorted(m["To"] for m in smtp_mail.messages) == ["boss@example.org", "me@example.org"]

    # Back in the list, the draft is there.
    page.get_by_role("navigation", name="Campaigns").get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("cell", name="November news", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="draft", exact=True)).to_be_visible()
    shot(page, "campaign-list")
    assert failed == [] and script_errors == []
