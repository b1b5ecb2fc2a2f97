"""All my data (P20): one archive of every table the data map holds on an account, in CSV,
XLSX or XLS, with a README; a link that needs a login to that account and expires."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory, populate_account
from tidings.accounts import services as accounts
from tidings.audience.models import Contact
from tidings.billing.models import Invoice
from tidings.campaigns.models import Campaign
from tidings.core import retention
from tidings.privacy import portability, tasks
from tidings.privacy.archive import write_archive
from tidings.privacy.models import AccountExport
from tidings.sending.models import Delivery, TrackingEvent
from tidings.staff.models import AuditEvent

LIBREOFFICE = shutil.which("libreoffice") or shutil.which("soffice")


@pytest.fixture(autouse=True)
def _archive_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.ACCOUNT_EXPORT_DIR = tmp_path / "archives"


@pytest.fixture
def populated(customer):  # type: ignore[no-untyped-def]
    """An account with one of everything, a delivery with an open, and an invoice."""
    account = customer.account
    customer.postal_address = "12 Analytical Row, London"
    customer.save()
    populate_account(account)
    campaign = Campaign.objects.get(account=account, name="The account's campaign")
    contact = Contact.objects.get(account=account)
    delivery = Delivery.objects.create(
        campaign=campaign, contact=contact, status="sent", sent_at=timezone.now()
    )
    TrackingEvent.objects.create(campaign=campaign, delivery=delivery, kind="open", first=True)
    Invoice.objects.create(
        account=account,
        number="2026-0042",
        amount_cents=4900,
        billing_name="Ada Lovelace",
        billing_address="12 Analytical Row, London",
    )
    return customer


def _csv(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    text = archive.read(name).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.promise("P20")
def test_the_archive_holds_every_table_of_the_account_and_no_secret(populated, tmp_path):
    path = tmp_path / "all.zip"
    counts = write_archive(populated.account, "csv", path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for table in ["accounts", "users", "api-keys", "contacts", "subscriptions",
                      "consent-proofs", "mailing-lists", "segments", "subscription-forms",
                      "layouts", "campaigns", "deliveries", "tracking-events", "invoices",
                      "audit-events", "collection-records",
                      "subscription-form-lists", "campaign-lists", "campaign-segments",
                      "sending-settings"]:  # fmt: skip
            assert f"{table}.csv" in names, table
        assert "README.txt" in names
        users = _csv(archive, "users.csv")
        assert users[0]["email"] == "ada@example.org"
        # Encrypted at rest, written in clear: it is the customer's own data.
        assert users[0]["postal_address"] == "12 Analytical Row, London"
        # Quoted, like every cell that starts with + = - or @ (no formula ever runs).
        assert users[0]["phone"] == "'+44 20 7946 0018"
        assert "password" not in users[0]
        contact = _csv(archive, "contacts.csv")[0]
        assert contact["email"] == "carol@example.net" and "Carolton" in contact["attributes"]
        proof = _csv(archive, "consent-proofs.csv")[0]
        assert proof["ip_address"] == "203.0.113.7"
        assert _csv(archive, "tracking-events.csv")[0]["kind"] == "open"
        # The fixture's invoice and the one issued for the paid order populate_account makes.
        addresses = {row["billing_address"] for row in _csv(archive, "invoices.csv")}
        assert "12 Analytical Row, London" in addresses
        key = _csv(archive, "api-keys.csv")[0]
        assert "digest" not in key and key["name"] == "The account's key"
        assert _csv(archive, "campaigns.csv")[0]["name"] == "The account's campaign"
        everything = b"".join(archive.read(n) for n in names)
        assert b"argon2" not in everything  # no password hash anywhere
        readme = archive.read("README.txt").decode()
    assert counts["contacts"] == 1 and counts["deliveries"] == 1
    # The README explains every file and column from the data map.
    assert "contacts.csv: Contacts (1 rows)" in readme
    assert "Legal basis: legal obligation." in readme  # proofs of consent, invoices
    assert "  postal_address: postal address" in readme
    assert "password" not in readme.split("Columns:")[1]


@pytest.mark.promise("P20")
def test_the_archive_holds_nothing_of_another_account(populated, other_customer, tmp_path):
    populate_account(other_customer.account)
    path = tmp_path / "all.zip"
    write_archive(populated.account, "csv", path)
    with zipfile.ZipFile(path) as archive:
        everything = b"".join(archive.read(n) for n in archive.namelist())
    assert b"grace@example.org" not in everything and b"Grace Hopper" not in everything
    # Ours: the contact, her request and its receipt (in the ledger of mail sent); the
    # other account has a carol too (and hers).
    assert everything.count(b"carol@example.net") == 3


@pytest.mark.promise("P20")
def test_asking_for_all_my_data_mails_a_link_that_downloads_the_archive(client, populated, mailbox):
    client.force_login(populated)
    page = client.get(reverse("accounts:my_account")).content.decode()
    assert "Download all my data" in page
    response = client.post(reverse("accounts:request_export"), {"format": "xlsx"})
    assert response.status_code == 302
    export = AccountExport.objects.get(account=populated.account, format="xlsx")
    assert export.status == "done"
    mail = next(m for m in mailbox if "ready" in m.subject)
    link = reverse("accounts:download_export", args=[export.pk])
    assert mail.to == ["ada@example.org"] and link in mail.body
    response = client.get(link)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert "contacts.xlsx" in archive.namelist()
    actions = list(
        AuditEvent.objects.filter(account_id=populated.account_id, action="export").values_list(
            "reason", flat=True
        )
    )
    assert actions == ["all my data requested as xlsx", "all my data downloaded"]


@pytest.mark.promise("P20")
def test_the_link_needs_a_login(client, populated, mailbox):
    export = portability.request_account_export(populated.account, by=populated, fmt="csv")
    response = client.get(reverse("accounts:download_export", args=[export.pk]))
    assert response.status_code == 302 and "/login/" in response.url


@pytest.mark.promise("P20")
def test_another_account_cannot_download_the_archive(client, populated, other_customer, mailbox):
    export = portability.request_account_export(populated.account, by=populated, fmt="csv")
    client.force_login(other_customer)
    response = client.get(reverse("accounts:download_export", args=[export.pk]))
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(reason="all my data downloaded").exists()


@pytest.mark.promise("P20")
def test_another_user_of_the_same_account_can_download_it(client, populated, mailbox):
    export = portability.request_account_export(populated.account, by=populated, fmt="csv")
    colleague = UserFactory(account=populated.account)
    client.force_login(colleague)
    response = client.get(reverse("accounts:download_export", args=[export.pk]))
    assert response.status_code == 200


@pytest.mark.promise("P20", "P12")
def test_an_expired_link_is_refused_and_retention_deletes_the_archive(
    client, populated, mailbox, time_machine, settings
):
    export = portability.request_account_export(populated.account, by=populated, fmt="csv")
    export.refresh_from_db()
    path = portability.archive_path(export.file)
    assert path.exists()
    assert export.expires_at - export.finished_at == timedelta(days=7)
    time_machine.move_to(export.expires_at + timedelta(minutes=1))
    client.force_login(populated)
    response = client.get(reverse("accounts:download_export", args=[export.pk]))
    assert response.status_code == 410 and b"expired" in response.content
    rule = next(r for r in retention.rules() if r.name == "archives of all my data")
    assert retention.apply(rule, dry_run=True).count == 1
    assert retention.apply(rule).count == 1
    assert not AccountExport.objects.filter(pk=export.pk).exists()
    assert not path.exists()


def test_the_expiry_is_configurable(populated, mailbox, settings):
    settings.ACCOUNT_EXPORT_DAYS = 2
    export = portability.request_account_export(populated.account, by=populated, fmt="csv")
    export.refresh_from_db()
    assert export.expires_at - export.finished_at == timedelta(days=2)


def test_bad_requests_are_refused_and_change_nothing(client, populated):
    before = AccountExport.objects.count()
    client.force_login(populated)
    response = client.post(reverse("accounts:request_export"), {"format": "pdf"}, follow=True)
    assert b"Choose CSV, XLSX or XLS" in response.content
    with pytest.raises(portability.ExportRefused, match="CSV, XLSX or XLS"):
        portability.request_account_export(populated.account, by=populated, fmt="ods")
    assert AccountExport.objects.count() == before


@pytest.mark.promise("P20")
def test_erasing_the_account_deletes_its_archives(populated, mailbox):

    export = portability.request_account_export(populated.account, by=populated, fmt="csv")
    export.refresh_from_db()
    stray = portability.account_archive_dir(populated.account_id) / "killed-job.part"
    stray.write_bytes(b"half an archive")
    accounts.close_account(populated.account, by=populated, erase_now=True)
    assert not AccountExport.objects.exists()
    assert not portability.account_archive_dir(populated.account_id).exists()


@pytest.mark.slow
@pytest.mark.promise("P20")
def test_xls_tables_split_into_sheets_and_files(customer, tmp_path, settings):
    import xlrd

    settings.ACCOUNT_EXPORT_XLS_SHEET_ROWS = 4
    settings.ACCOUNT_EXPORT_XLS_SHEETS_PER_FILE = 2
    Contact.objects.bulk_create(
        Contact(account=customer.account, email=f"p{i}@example.org", name=f"P {i}")
        for i in range(11)
    )
    path = tmp_path / "all.zip"
    counts = write_archive(customer.account, "xls", path)
    assert counts["contacts"] == 11
    with zipfile.ZipFile(path) as archive:
        assert "contacts.xls" in archive.namelist() and "contacts-2.xls" in archive.namelist()
        first = xlrd.open_workbook(file_contents=archive.read("contacts.xls"))
        second = xlrd.open_workbook(file_contents=archive.read("contacts-2.xls"))
        assert "XLS sheets hold at most 4 rows" in archive.read("README.txt").decode()
    assert first.sheet_names() == ["Contacts", "Contacts 2"]
    assert second.sheet_names() == ["Contacts"]
    emails = []
    for book in (first, second):
        for sheet in book.sheets():
            header = sheet.row_values(0)
            assert header[:2] == ["id", "account_id"]
            column = header.index("email")
            emails += [sheet.cell_value(r, column) for r in range(1, sheet.nrows)]
    assert emails == [f"p{i}@example.org" for i in range(11)]


@pytest.mark.slow
@pytest.mark.promise("P20")
@pytest.mark.skipif(LIBREOFFICE is None, reason="./dev test installs LibreOffice")
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "xls"])
def test_libreoffice_opens_every_file_of_the_archive(populated, tmp_path, fmt):
    path = tmp_path / "all.zip"
    write_archive(populated.account, fmt, path)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(unpacked)
    sources = sorted(str(p) for p in unpacked.glob(f"*.{fmt}"))
    out = tmp_path / "converted"
    infilter = ["--infilter=CSV:44,34,76"] if fmt == "csv" else []
    subprocess.run(
        [LIBREOFFICE, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
         *infilter, "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76",
         "--outdir", str(out), *sources],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    converted = {p.stem for p in Path(out).glob("*.csv")}
    assert converted == {Path(s).stem for s in sources}
    with open(out / "users.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["email"] == "ada@example.org"
    assert rows[0]["postal_address"] == "12 Analytical Row, London"
    with open(out / "contacts.csv", encoding="utf-8", newline="") as handle:
        assert next(csv.DictReader(handle))["email"] == "carol@example.net"


def test_a_closed_account_cannot_ask_and_a_second_request_waits_for_the_first(
    populated, monkeypatch
):

    monkeypatch.setattr(tasks.build_account_export_task, "delay", lambda pk: None)
    portability.request_account_export(populated.account, by=populated, fmt="csv")
    with pytest.raises(portability.ExportRefused, match="already being built"):
        portability.request_account_export(populated.account, by=populated, fmt="xls")
    accounts.close_account(populated.account, by=populated)
    with pytest.raises(portability.ExportRefused, match="closed"):
        portability.request_account_export(populated.account, by=populated, fmt="csv")
    assert AccountExport.objects.filter(status="queued").count() == 1
