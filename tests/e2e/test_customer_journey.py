"""A customer's whole life in the browser, from the home page to the closed account.

A real Django server (pytest-django's live_server), Debian's Chromium, and a real SMTP
server (aiosmtpd) that receives every mail Tidings sends on the way.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from django.utils.dateformat import format as format_date
from playwright.sync_api import Page, Response, expect

from tests.conftest import SMTPSink
from tests.e2e.conftest import Screenshot
from tidings.accounts.models import User

pytestmark = pytest.mark.browser

ORGANISATION = "Acme Newsletters"
NAME = "Ada Lovelace"
EMAIL = "ada@example.org"
PASSWORD = "a long enough passphrase"
NEW_NAME = "Ada King"
NEW_PHONE = "+44 20 7946 0018"
# The cookies a visitor or customer may get without being asked (P22, P29).
STRICTLY_NECESSARY = {"sessionid", "csrftoken"}


def mail_to(
    smtp: SMTPSink, address: str, subject_contains: str, timeout: float = 10
) -> EmailMessage:
    """The first mail to `address` whose subject contains the text, waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in smtp.to(address):
            if subject_contains in message["Subject"]:
                return message
        time.sleep(0.05)
    subjects = [m["Subject"] for m in smtp.messages]
    raise AssertionError(f"no mail to {address} about {subject_contains!r}; got {subjects}")


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def cookies(page: Page) -> set[str]:
    return {cookie["name"] for cookie in page.context.cookies()}


def assert_only_necessary_cookies(page: Page) -> None:
    assert cookies(page) <= STRICTLY_NECESSARY, f"{page.url}: {cookies(page)}"


@pytest.fixture
def site(live_server, smtp_mail: SMTPSink, settings) -> str:  # type: ignore[no-untyped-def]
    """The live server's address, which the links in Tidings's mail point to."""
    settings.BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    return str(live_server.url)


@pytest.mark.promise("P1", "P15", "P16", "P19", "P13", "P21", "P29")
def test_a_customer_signs_up_edits_their_data_opts_out_and_closes_the_account(
    site: str, smtp_mail: SMTPSink, page: Page, screenshot: Screenshot
) -> None:
    requested_hosts: set[str] = set()
    failed: list[str] = []
    page.on("request", lambda request: requested_hosts.add(urlsplit(request.url).netloc))

    def check(response: Response) -> None:
        # Chromium asks for /favicon.ico by itself; no page links to it.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            failed.append(f"{response.status} {response.url}")

    page.on("response", check)

    # The home page: anonymous, no cookie at all (P29).
    page.goto(site + "/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    screenshot(page, "home")
    assert cookies(page) == set()

    # Sign up with only organisation, name, email and password (P1).
    page.get_by_role("link", name="Sign up").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    required = page.locator("main form [required]").evaluate_all(
        "fields => fields.map(f => f.name)"
    )
    assert sorted(required) == ["email", "name", "organisation", "password"]
    screenshot(page, "register")
    assert_only_necessary_cookies(page)
    page.get_by_label("Organisation name:", exact=True).fill(ORGANISATION)
    page.get_by_label("Your name:", exact=True).fill(NAME)
    page.get_by_label("Email:", exact=True).fill(EMAIL)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_text(EMAIL)).to_be_visible()
    screenshot(page, "registered-check-your-email")
    assert_only_necessary_cookies(page)

    # The confirmation mail arrived at the SMTP server; its link confirms the address.
    confirmation = mail_to(smtp_mail, EMAIL, "Confirm your email address")
    link = re.search(r"https?://\S+/confirm/\S+/", text_of(confirmation))
    assert link, text_of(confirmation)
    assert link.group(0).startswith(site)
    page.goto(link.group(0))
    expect(page.get_by_text(f"{EMAIL} is confirmed")).to_be_visible()
    assert page.url == site + "/login/"
    screenshot(page, "confirmed-login")
    assert_only_necessary_cookies(page)

    # Log in: My Account shows everything registered (P15).
    page.get_by_label("Email:", exact=True).fill(EMAIL)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    page.get_by_role("link", name="My Account").click()
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()
    details = page.get_by_role("region", name="Your details")
    expect(details.get_by_role("row", name="Organisation")).to_contain_text(ORGANISATION)
    expect(details.get_by_role("row", name="Name")).to_contain_text(NAME)
    expect(details.get_by_role("row", name="Email")).to_contain_text(EMAIL)
    held = page.get_by_role("region", name="All the data we hold on you")
    expect(held).to_contain_text(EMAIL)
    expect(held).to_contain_text(NAME)
    screenshot(page, "my-account")
    assert "sessionid" in cookies(page)
    assert_only_necessary_cookies(page)

    # Change name and phone (P16); a mail says what changed, the phone masked (P19).
    page.get_by_role("link", name="Change my details").click()
    expect(page.get_by_role("heading", name="Change my details")).to_be_visible()
    screenshot(page, "edit-profile")
    page.get_by_label("Your name:", exact=True).fill(NEW_NAME)
    page.get_by_label("Phone:", exact=True).fill(NEW_PHONE)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("We emailed you a note of what changed")).to_be_visible()
    expect(details.get_by_role("row", name="Name")).to_contain_text(NEW_NAME)
    expect(details.get_by_role("row", name="Phone")).to_contain_text(NEW_PHONE)
    screenshot(page, "my-account-after-edit")
    assert_only_necessary_cookies(page)
    notice = text_of(mail_to(smtp_mail, EMAIL, "was changed"))
    assert f"Name: {NAME} -> {NEW_NAME}" in notice
    assert "Phone: (empty) -> •••18" in notice
    assert NEW_PHONE not in notice and NEW_PHONE.replace(" ", "") not in notice

    # Switch off product-update emails on the processing page, effective at once (P21).
    page.get_by_role("link", name="Choose what we may do").click()
    expect(page.get_by_label("Product-update emails:", exact=True)).to_be_checked()
    screenshot(page, "processing")
    page.get_by_label("Product-update emails:", exact=True).uncheck()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_text("Your choices are saved")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text="Product-update emails")).to_contain_text(
        "off"
    )
    screenshot(page, "my-account-after-opt-out")
    assert_only_necessary_cookies(page)
    assert not User.objects.get(email=EMAIL).allow_product_updates

    # Close the account with the password; the erasure date is shown and mailed (P13).
    page.get_by_role("link", name="Close my account").click()
    expect(page.get_by_role("heading", name="Close your account")).to_be_visible()
    expect(page.get_by_text("grace period of 45 days")).to_be_visible()
    screenshot(page, "close-account")
    page.get_by_label("Enter your password to confirm:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Close my account").click()
    expect(page.get_by_role("heading", name="Your account is closed")).to_be_visible()
    account = User.objects.select_related("account").get(email=EMAIL).account
    assert account is not None and account.erase_after is not None
    assert abs(account.erase_after - timezone.now() - timedelta(days=45)) < timedelta(minutes=5)
    erasure_date = format_date(timezone.localtime(account.erase_after), "j F Y")
    expect(page.get_by_text(f"Your data will be erased on {erasure_date}")).to_be_visible()
    screenshot(page, "account-closed")
    assert_only_necessary_cookies(page)
    closed = mail_to(smtp_mail, EMAIL, "account is closed")
    assert erasure_date in closed["Subject"]
    assert f"Its data will be erased on {erasure_date}" in text_of(closed)

    # Closing stops everything: My Account now leads only to the closed page (P21).
    page.goto(site + "/account/")
    assert page.url == site + "/account/closed/"
    screenshot(page, "my-account-when-closed")
    assert_only_necessary_cookies(page)

    # No request ever left Tidings: no tracker, font or CDN on any page (P29); and every
    # page, stylesheet included, was served.
    assert requested_hosts == {urlsplit(site).netloc}
    assert failed == []
