"""All my data in the browser (P20): ask from My Account, get the mail, follow its link,
download the archive; the link needs a login to the same account."""

from __future__ import annotations

import re
import zipfile

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import SMTPSink
from tests.e2e.conftest import Screenshot, log_in
from tests.e2e.test_customer_journey import mail_to, text_of
from tests.factories import UserFactory, populate_account

pytestmark = pytest.mark.browser


@pytest.fixture
def site(live_server, smtp_mail: SMTPSink, settings, tmp_path) -> str:  # type: ignore[no-untyped-def]
    settings.BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.ACCOUNT_EXPORT_DIR = tmp_path / "archives"
    return str(live_server.url)


def log_in_to_my_account(page: Page, site: str, email: str) -> None:
    log_in(page, site, email)
    page.get_by_role("link", name="My Account").click()
    expect(page.get_by_role("heading", name="My Account")).to_be_visible()


@pytest.mark.promise("P20")
def test_a_customer_downloads_all_their_data_from_the_link_in_the_mail(
    site: str, smtp_mail: SMTPSink, page: Page, screenshot: Screenshot, tmp_path
) -> None:
    ada = UserFactory(email="ada@example.org", name="Ada Lovelace")
    populate_account(ada.account)
    UserFactory(email="grace@example.org", name="Grace Hopper")

    log_in_to_my_account(page, site, "ada@example.org")
    section = page.get_by_role("region", name="Download all my data")
    section.get_by_label("Excel 97-2003 (XLS").check()
    screenshot(page, "all-my-data-ask")
    section.get_by_role("button", name="Gather all my data").click()
    expect(page.get_by_text("We are gathering all your data")).to_be_visible()

    mail = mail_to(smtp_mail, "ada@example.org", "All your data is ready")
    link = re.search(r"https?://\S+/account/export/\d+/", text_of(mail))
    assert link and link.group(0).startswith(site), text_of(mail)

    # The same link, from My Account and from the mail, downloads the zip.
    page.reload()
    expect(page.get_by_role("region", name="Download all my data")).to_contain_text("ready")
    screenshot(page, "all-my-data-ready")
    with page.expect_download() as download_info:
        page.evaluate("url => { window.location.href = url }", link.group(0))
    saved = tmp_path / "archive.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
    assert "README.txt" in names and "contacts.xls" in names and "users.xls" in names

    # Another customer, logged in, gets nothing from the link.
    page.get_by_role("button", name="Log out").click()
    log_in_to_my_account(page, site, "grace@example.org")
    response = page.goto(link.group(0))
    assert response is not None and response.status == 404
