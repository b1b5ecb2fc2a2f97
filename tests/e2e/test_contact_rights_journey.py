"""A contact's rights in the browser: from the preference page of a mail they see and
download their data and ask for erasure; the customer finds the request in their inbox
with its due date and erases the contact in one click; the contact is told by mail. And a
contact's request gets its receipt; the customer closes the account; the request stays
visible to the privacy office, which answers it.

A real Django server (live_server), Debian's Chromium, aiosmtpd receiving the mail.
Screenshots go to test-artifacts/e2e/<test>/.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from tests.conftest import SMTPSink
from tests.e2e.conftest import Screenshot
from tests.factories import StaffFactory
from tests.staff.conftest import log_in_verified, state_reason
from tidings.accounts.models import User
from tidings.audience import links, services
from tidings.audience.models import Contact, ContactRequest, MailingList

pytestmark = pytest.mark.browser

READER = "reader@example.net"


@pytest.fixture
def site(live_server, smtp_mail: SMTPSink, settings) -> str:  # type: ignore[no-untyped-def]
    settings.BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    return str(live_server.url)


@pytest.mark.promise("P17")
def test_a_contact_sees_their_data_asks_for_erasure_and_the_customer_erases_them(
    site: str,
    smtp_mail: SMTPSink,
    customer,  # type: ignore[no-untyped-def]
    password: str,
    page: Page,
    browser: Browser,
    screenshot: Screenshot,
) -> None:
    account = customer.account
    newsletter = MailingList.objects.create(account=account, name="Newsletter")
    reader = services.add_contact(
        account, READER, name="Rea Der", attributes={"city": "Ghent"}, lists=[newsletter]
    )

    # The contact follows the preference link of a mail.
    page.goto(links.preference_url(reader))
    screenshot(page, "preferences")
    page.get_by_role("link", name="See all the data").click()
    expect(page.get_by_role("heading", name="Subscriptions")).to_be_visible()
    expect(page.get_by_role("cell", name="Ghent")).to_be_visible()
    screenshot(page, "my-data")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    page.get_by_role("link", name="Back to your subscriptions").click()
    page.get_by_label("Erasure of my data").check()
    page.get_by_label("Anything they should know").fill("Please forget me.")
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("status")).to_contain_text("must answer by")
    screenshot(page, "request-sent")

    # The customer finds it in their inbox and erases the contact in one click.
    office = browser.new_context().new_page()
    office.goto(site + "/login/")
    office.get_by_label("Email:", exact=True).fill(customer.email)
    office.get_by_label("Password:", exact=True).fill(password)
    office.get_by_role("button", name="Log in").click()
    office.get_by_role("link", name="Audience").click()
    office.get_by_role("link", name="Requests").click()
    request = ContactRequest.objects.get()
    expect(office.get_by_role("cell", name=f"{request.due_at:%-d %b %Y}")).to_be_visible()
    screenshot(office, "inbox")
    office.get_by_role("link", name=READER).click()
    expect(office.get_by_text("Please forget me.")).to_be_visible()
    office.get_by_role("button", name=f"Erase {READER} now").click()
    expect(office.get_by_text("No open requests.")).to_be_visible()
    screenshot(office, "erased")

    assert not Contact.objects.filter(email=READER).exists()
    assert services.is_suppressed(account, READER)
    receipt, told = smtp_mail.to(READER)
    assert "has your request" in receipt["Subject"]
    assert "has erased your data" in told["Subject"]
    # The old preference link now holds nothing.
    page.reload()
    expect(page.get_by_text("no longer hold this address")).to_be_visible()


@pytest.mark.promise("P13")
def test_a_request_gets_its_receipt_and_survives_the_closing_of_the_account(
    site: str,
    smtp_mail: SMTPSink,
    customer,  # type: ignore[no-untyped-def]
    password: str,
    page: Page,
    browser: Browser,
    screenshot: Screenshot,
) -> None:
    account = customer.account
    newsletter = MailingList.objects.create(account=account, name="Newsletter")
    reader = services.add_contact(account, READER, name="Rea Der", lists=[newsletter])

    # The contact asks for their data and gets a receipt; the customer is told.
    page.goto(links.preference_url(reader))
    page.get_by_label("Access to my data").check()
    page.get_by_label("Anything they should know").fill("Which lists am I on?")
    page.get_by_role("button", name="Send my request").click()
    expect(page.get_by_role("status")).to_contain_text("must answer by")
    request = ContactRequest.objects.get()
    (receipt,) = smtp_mail.to(READER)
    assert f"{request.due_at:%-d %B %Y}" in receipt.get_content()
    (told,) = smtp_mail.to(customer.email)
    assert f"/requests/{request.uuid}/" in told.get_content()

    # The customer closes the account in the browser.
    own = browser.new_context().new_page()
    own.goto(site + "/login/")
    own.get_by_label("Email:", exact=True).fill(customer.email)
    own.get_by_label("Password:", exact=True).fill(password)
    own.get_by_role("button", name="Log in").click()
    own.goto(site + "/account/close/")
    screenshot(own, "close-account")
    own.get_by_label("Enter your password to confirm").fill(password)
    own.get_by_role("button", name="Close my account").click()
    expect(own.get_by_role("heading", name="Your account is closed")).to_be_visible()

    # The privacy office sees the request, and answers it.
    officer = StaffFactory(email="dpo@operator.example", staff_role=User.StaffRole.PRIVACY_OFFICER)
    client = Client()
    log_in_verified(client, officer)
    state_reason(client, "privacy office: contacts' requests of closed accounts")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": site,
            }
        ]
    )
    office = context.new_page()
    office.goto(site + "/staff/privacy-office/")
    expect(
        office.get_by_role("heading", name="Contacts' requests to closed accounts")
    ).to_be_visible()
    expect(office.get_by_role("cell", name=f"{request.due_at:%Y-%m-%d}").first).to_be_visible()
    screenshot(office, "privacy-office")
    office.get_by_role("link", name="Answer").first.click()
    expect(office.get_by_text("Which lists am I on?")).to_be_visible()
    office.get_by_label("Answer mailed to the contact").fill("You are on the Newsletter.")
    office.get_by_role("button", name="Mail the answer and close the request").click()
    expect(office.get_by_text("The answer is mailed; the request is closed.")).to_be_visible()
    screenshot(office, "answered")
    assert ContactRequest.objects.get().status == "answered"
    assert "You are on the Newsletter." in smtp_mail.to(READER)[-1].get_content()
