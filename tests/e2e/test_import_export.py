"""Import and export in the browser, as a customer does them: upload, map, state the
legal basis, watch the progress, download the report; then export and download."""

from __future__ import annotations

import openpyxl
import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Screenshot
from tidings.audience.models import ConsentProof, Contact, MailingList

pytestmark = pytest.mark.browser

CSV = (
    b"Email Address,First Name,Last Name,MEMBER_RATING,City\n"
    b"ada@example.org,Ada,Lovelace,2,London\n"
    b"grace@example.org,Grace,Hopper,3,=cmd()\n"
    b"not-an-address,No,Body,1,Nowhere\n"
)


@pytest.fixture
def logged_in(live_server, settings, page: Page, customer, tmp_path) -> str:  # type: ignore[no-untyped-def]
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.TRANSFER_DIR = tmp_path / "transfer"
    client = Client()
    client.force_login(customer)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return str(live_server.url)


@pytest.mark.promise("P2", "P20")
def test_a_customer_imports_then_exports_in_the_browser(
    logged_in: str, page: Page, screenshot: Screenshot, customer, tmp_path
):
    MailingList.objects.create(account=customer.account, name="Newsletter")
    page.goto(logged_in + "/account/")
    page.get_by_role("link", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import contacts")).to_be_visible()
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "mailchimp.csv", "mimeType": "text/csv", "buffer": CSV}
    )
    screenshot(page, "upload")
    page.get_by_role("button", name="Upload and map the columns").click()

    expect(page.get_by_role("heading", name="map the columns")).to_be_visible()
    expect(page.get_by_label("Column “Email Address”")).to_have_value("email")
    expect(page.get_by_label("Column “MEMBER_RATING”")).to_have_value("ignore")
    expect(page.get_by_label("Column “City”")).to_have_value("attribute")
    page.get_by_label("Newsletter").check()
    screenshot(page, "mapping")
    page.get_by_role("button", name="Next: the legal basis").click()

    expect(page.get_by_role("heading", name="the legal basis")).to_be_visible()
    page.get_by_label("consent, collected elsewhere").check()
    page.get_by_label("Date the consent was collected (or the contract made)").fill("2024-02-01")
    page.get_by_label("How and where did they give it?").fill("Sign-up form on our website")
    page.get_by_label("I confirm that every person").check()
    screenshot(page, "basis")
    page.get_by_role("button", name="Import").click()

    expect(page.get_by_role("heading", name="Finished")).to_be_visible(timeout=30_000)
    screenshot(page, "result")
    added = page.get_by_role("row", name="Added")
    expect(added).to_contain_text("2")
    with page.expect_download() as report:
        page.get_by_role("link", name="Download the refused rows").click()
    rejected = report.value.path().read_text(encoding="utf-8-sig")
    assert "not-an-address" in rejected and rejected.splitlines()[1].startswith('"4",')
    assert Contact.objects.filter(account=customer.account).count() == 2
    # One proof for the file, referenced by both subscriptions the import wrote.
    proof = ConsentProof.objects.get(account=customer.account)
    assert proof.contact is None and proof.subscriptions.count() == 2

    page.get_by_role("link", name="Export", exact=True).click()
    page.get_by_label("Excel (XLSX)").check()
    page.get_by_role("button", name="Build the export").click()
    expect(page.get_by_role("link", name="Download")).to_be_visible(timeout=30_000)
    screenshot(page, "exports")
    with page.expect_download() as export:
        page.get_by_role("link", name="Download").click()
    path = tmp_path / "export.xlsx"
    export.value.save_as(path)
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("email", "name", "status")
    assert {r[0] for r in rows[1:]} == {"ada@example.org", "grace@example.org"}
    # XLSX: the value exactly as held, in a text cell, which no spreadsheet runs.
    cells = [c for r in sheet.iter_rows() for c in r]
    assert ("=cmd()", "s") in {(c.value, c.data_type) for c in cells}
    assert all(c.data_type != "f" for c in cells)
