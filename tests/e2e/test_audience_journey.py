"""A customer's audience in the browser: a list, its hosted form, a double opt-in through
a real SMTP server, the contact active, then the contact leaving on their own page.

A real Django server (live_server), Debian's Chromium, and aiosmtpd receiving the mail.
Screenshots go to test-artifacts/audience/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from tests.conftest import SMTPSink
from tests.e2e.test_customer_journey import mail_to, text_of
from tidings.audience.models import ConsentProof, Contact, Subscription

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "audience"
READER = "reader@example.net"


@pytest.fixture
def site(live_server, smtp_mail: SMTPSink, settings) -> str:  # type: ignore[no-untyped-def]
    settings.BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    return str(live_server.url)


@pytest.fixture
def shot() -> Callable[[Page, str], Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    taken = 0

    def take(page: Page, name: str) -> Path:
        nonlocal taken
        taken += 1
        path = ARTIFACTS / f"{taken:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def no_errors(page: Page, failed: list[str]) -> None:
    def check(response: Response) -> None:
        # The live segment count answers 400 (with the reason) to rules being typed.
        expected = response.url.endswith(("/favicon.ico", "/segments/count/"))
        if response.status >= 400 and not expected:
            failed.append(f"{response.status} {response.url}")

    page.on("response", check)


@pytest.mark.promise("P2", "P21", "P22")
def test_a_list_a_hosted_form_a_confirmed_signup_and_the_contact_leaving(
    site: str,
    smtp_mail: SMTPSink,
    customer,  # type: ignore[no-untyped-def]
    password: str,
    page: Page,
    browser: Browser,
    shot: Callable[[Page, str], Path],
) -> None:
    failed: list[str] = []
    no_errors(page, failed)

    # The customer logs in and creates a public, double opt-in list.
    page.goto(site + "/login/")
    page.get_by_label("Email:", exact=True).fill(customer.email)
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Audience").click()
    expect(page.get_by_role("heading", name="Contacts", level=1)).to_be_visible()
    page.get_by_role("navigation", name="Audience").get_by_role("link", name="Lists").click()
    page.get_by_role("link", name="New list").click()
    page.get_by_label("Name:").fill("Monthly letter")
    page.get_by_label("Description:").fill("News from the workshop, once a month.")
    page.get_by_label("public (shown on subscription forms)").check()
    page.get_by_label("double opt-in (the contact confirms by email)").check()
    shot(page, "new-list")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="Monthly letter", exact=True)).to_be_visible()
    shot(page, "lists")

    # A subscription form for it, with its hosted page and snippet.
    page.get_by_role("link", name="Subscription forms").click()
    page.get_by_role("link", name="New form").click()
    page.get_by_label("Name:").fill("Website footer")
    page.get_by_label("Monthly letter").check()
    page.get_by_label("Consent text:").fill("Yes, send me the monthly letter by email.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Use it")).to_be_visible()
    snippet = page.get_by_label("HTML snippet for your site").input_value()
    assert '<form method="post"' in snippet and 'name="website"' in snippet
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    shot(page, "form-with-snippet")
    hosted = page.get_by_role("link", name=re.compile("subscribe")).get_attribute("href")
    assert hosted and hosted.startswith(site)

    # A reader, in their own browser, subscribes on the hosted page.
    visitor = browser.new_context().new_page()
    no_errors(visitor, failed)
    visitor.goto(hosted)
    expect(visitor.get_by_role("heading", name="Subscribe")).to_be_visible()
    expect(visitor.get_by_text("Monthly letter", exact=True)).to_be_visible()
    visitor.get_by_label("Email", exact=True).fill(READER)
    visitor.get_by_label("Name (optional)").fill("Rea Der")
    visitor.get_by_label("Yes, send me the monthly letter by email.").check()
    shot(visitor, "hosted-form")
    visitor.get_by_role("button", name="Subscribe").click()
    expect(visitor.get_by_role("heading", name="Almost done: check your mailbox")).to_be_visible()
    shot(visitor, "check-your-mailbox")
    contact = Contact.objects.get(email=READER)
    assert contact.status == "unconfirmed"

    # The confirmation mail: from the customer's organisation, with the consent text.
    mail = mail_to(smtp_mail, READER, "Please confirm your subscription")
    assert customer.account.name in mail["From"]
    body = text_of(mail)
    assert "Yes, send me the monthly letter by email." in body
    link = re.search(r"https?://\S+/subscribe/confirm/\S+/", body)
    assert link, body
    visitor.goto(link.group(0))
    expect(visitor.get_by_role("heading", name="Confirm your subscription")).to_be_visible()
    shot(visitor, "confirm")
    visitor.get_by_role("button", name="Yes, subscribe me").click()
    expect(visitor.get_by_role("heading", name="You are subscribed")).to_be_visible()
    shot(visitor, "subscribed")

    # The customer sees the contact active, with the proof of consent.
    page.get_by_role("navigation", name="Audience").get_by_role("link", name="Contacts").click()
    row = page.get_by_role("row", name=re.compile(READER))
    expect(row).to_contain_text("active")
    shot(page, "contacts")
    row.get_by_role("link", name=READER).click()
    expect(page.get_by_role("heading", name=READER)).to_be_visible()
    lists = page.get_by_role("region", name="Lists")
    expect(lists.get_by_role("row", name=re.compile("Monthly letter"))).to_contain_text(
        "subscribed"
    )
    proof = page.get_by_role("region", name="Proof of consent")
    expect(proof).to_contain_text("Yes, send me the monthly letter by email.")
    expect(proof).to_contain_text("version 1")
    shot(page, "contact-with-proof")
    contact_page = page.url
    stored = ConsentProof.objects.get(contact__email=READER)
    assert stored.confirmed_at is not None and stored.ip_address == "127.0.0.1"
    assert stored.user_agent

    # A segment of the list's subscribers: its size updates live while it is built.
    page.get_by_role("navigation", name="Audience").get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Name", exact=True).fill("Letter readers")
    page.get_by_label("Field of condition 1").select_option("list")
    page.get_by_label("Value of condition 1").fill("Monthly letter")
    expect(page.locator("#segment-count")).to_have_text("1")
    page.get_by_label("Value of condition 1").fill("No such list")
    expect(page.locator("#count-error")).to_contain_text("is not one of your lists")
    page.get_by_label("Value of condition 1").fill("Monthly letter")
    expect(page.locator("#segment-count")).to_have_text("1")
    shot(page, "segment-live-count")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The segment “Letter readers” is saved.")).to_be_visible()

    # The reader leaves the list on their preference page, linked from the confirmation.
    visitor.get_by_role("link", name="your preference page").click()
    expect(visitor.get_by_role("heading", name="Your subscriptions")).to_be_visible()
    shot(visitor, "preferences")
    visitor.get_by_role("button", name="Leave Monthly letter").click()
    expect(visitor.get_by_text("You have left “Monthly letter”")).to_be_visible()
    shot(visitor, "left")
    sub = Subscription.objects.get(contact__email=READER)
    assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None

    page.goto(contact_page)
    expect(
        page.get_by_role("region", name="Lists").get_by_role(
            "row", name=re.compile("Monthly letter")
        )
    ).to_contain_text("unsubscribed")
    shot(page, "contact-left")
    assert failed == []
