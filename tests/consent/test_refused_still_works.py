"""P23: with every optional category refused, or no choice made at all, registration,
login and My Account work the same, in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import SMTPSink
from tests.e2e.conftest import Screenshot
from tests.e2e.test_customer_journey import mail_to, text_of

pytestmark = pytest.mark.browser

PASSWORD = "a long enough passphrase"


def sign_up_confirm_and_log_in(page: Page, site: str, smtp: SMTPSink, email: str) -> None:
    page.goto(site + "/register/")
    page.get_by_label("Organisation name:", exact=True).fill("Refusers Ltd")
    page.get_by_label("Your name:", exact=True).fill("Rita Refuser")
    page.get_by_label("Email:", exact=True).fill(email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = re.search(r"https?://\S+/confirm/\S+/", text_of(mail_to(smtp, email, "Confirm")))
    assert link
    page.goto(link.group(0))
    expect(page.get_by_text(f"{email} is confirmed")).to_be_visible()
    page.get_by_label("Email:", exact=True).fill(email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # A customer lands on the dashboard; My Account is one link away.
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    page.get_by_role("link", name="My Account").click()
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()


def cookie_names(page: Page) -> set[str]:
    return {c["name"] for c in page.context.cookies()}


@pytest.mark.promise("P23", "P22")
def test_everything_refused_registration_login_and_my_account_work(
    site: str, smtp_mail: SMTPSink, page: Page, screenshot: Screenshot
) -> None:
    page.goto(site + "/")
    page.get_by_role("region", name="Cookie choices").get_by_role(
        "button", name="Refuse all"
    ).click()
    sign_up_confirm_and_log_in(page, site, smtp_mail, "rita@example.org")
    screenshot(page, "my-account-after-refusal")
    assert cookie_names(page) <= {"sessionid", "csrftoken", "tidings_consent"}

    # A choice made while logged in is linked to the customer and shown in My Account.
    page.get_by_role("link", name="Cookie settings").click()
    page.get_by_role("button", name="Refuse all").click()
    page.goto(site + "/account/")
    held = page.get_by_role("region", name="All the data we hold on you")
    expect(held).to_contain_text("Cookie choices")
    screenshot(page, "my-account-shows-choice")


@pytest.mark.promise("P23")
def test_with_no_choice_at_all_registration_login_and_my_account_work(
    site: str, smtp_mail: SMTPSink, page: Page
) -> None:
    sign_up_confirm_and_log_in(page, site, smtp_mail, "nora@example.org")
    assert "tidings_consent" not in cookie_names(page)
    page.get_by_role("link", name="Change my details").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()


def write_and_preview_a_campaign(page: Page, site: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Campaign name (only you see it)").fill("Spring news")
    page.get_by_label("Subject", exact=True).fill("Hello {{ contact.first_name }}")
    page.get_by_label("Format", exact=True).select_option("richtext")
    editor = page.get_by_role("textbox", name="Body")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("Our spring opening hours")
    page.get_by_role("button", name="Save and preview").click()
    expect(page.get_by_role("heading", name="Preview “Spring news”")).to_be_visible()
    frame = page.frame_locator("iframe.preview")
    expect(frame.get_by_text("Our spring opening hours")).to_be_visible()
    # And it can be edited again.
    page.get_by_role("link", name="Edit").first.click()
    page.get_by_label("Campaign name (only you see it)").fill("Spring news, corrected")
    page.get_by_role("button", name="Save and preview").click()
    expect(page.get_by_role("heading", name="Preview “Spring news, corrected”")).to_be_visible()


@pytest.mark.promise("P23")
def test_everything_refused_campaign_editing_works(
    site: str, smtp_mail: SMTPSink, page: Page, screenshot: Screenshot
) -> None:
    page.goto(site + "/")
    page.get_by_role("region", name="Cookie choices").get_by_role(
        "button", name="Refuse all"
    ).click()
    sign_up_confirm_and_log_in(page, site, smtp_mail, "carla@example.org")

    write_and_preview_a_campaign(page, site)

    screenshot(page, "campaign-preview-after-refusal")
    assert cookie_names(page) <= {"sessionid", "csrftoken", "tidings_consent"}


@pytest.mark.promise("P23")
def test_a_browser_that_keeps_only_the_session_cookies_can_do_everything(
    site: str, smtp_mail: SMTPSink, page: Page
) -> None:
    """As if the browser blocked every cookie but the session's and the form token's:
    after each response the rest are thrown away."""
    kept = {"sessionid", "csrftoken"}
    dropped: set[str] = set()

    def block_others(_response: object) -> None:
        for cookie in page.context.cookies():
            if cookie["name"] not in kept:
                dropped.add(cookie["name"])
                page.context.clear_cookies(name=cookie["name"])

    page.on("response", block_others)
    page.goto(site + "/")
    page.get_by_role("region", name="Cookie choices").get_by_role(
        "button", name="Accept all"
    ).click()
    sign_up_confirm_and_log_in(page, site, smtp_mail, "bea@example.org")
    page.get_by_role("link", name="Change my details").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()
    write_and_preview_a_campaign(page, site)

    assert "tidings_consent" in dropped  # the choice itself could not be kept
    assert cookie_names(page) <= kept
