"""Exporting contacts: the three formats, formula injection, XLS sheets, expiry."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import subprocess

import openpyxl
import pytest
import time_machine
import xlrd
from django.urls import reverse

from tests.factories import UserFactory
from tests.transfer.conftest import prepare, run
from tidings.accounts.models import Account
from tidings.audience import restriction, segments
from tidings.audience import services as audience
from tidings.audience.models import Contact
from tidings.celery import app
from tidings.core import retention, spreadsheets
from tidings.transfer import exporter, services
from tidings.transfer.errors import TransferError
from tidings.transfer.models import ExportJob, ImportJob, transfer_path

EVIL = ['=HYPERLINK("http://x")', "+1+2", "-3+4", "@SUM(A1)", "\tTab", "\rCR"]


@pytest.fixture
def audience_of(customer, newsletter):  # type: ignore[no-untyped-def]
    account = customer.account
    audience.add_contact(
        account, "ada@example.org", name=EVIL[0], attributes={"city": EVIL[1], "n": -5},
        tags=["vip"], lists=[newsletter],
    )  # fmt: skip
    audience.add_contact(account, "bob@example.org", name="Bob", attributes={"note": EVIL[2]})
    for i, value in enumerate(EVIL[3:]):
        audience.add_contact(account, f"p{i}@example.org", attributes={"note": value})
    return Contact.objects.filter(account=account)


def read(path, fmt: str) -> list[list[object]]:  # type: ignore[no-untyped-def]
    if fmt == "csv":
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return list(csv.reader(handle))
    if fmt == "xlsx":
        book = openpyxl.load_workbook(path, read_only=True)
        return [
            ["" if v is None else v for v in row]
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
        ]
    book = xlrd.open_workbook(str(path))
    return [sheet.row_values(r) for sheet in book.sheets() for r in range(sheet.nrows)]


@pytest.mark.promise("P20")
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "xls"])
def test_every_format_holds_every_contact_and_runs_no_formula(audience_of, tmp_path, fmt):
    path = tmp_path / f"out.{fmt}"
    assert exporter.export_contacts(audience_of, fmt, path) == 5
    rows = read(path, fmt)
    header = rows[0]
    assert header[:4] == ["email", "name", "status", "lists"]
    assert header[-3:] == ["city", "n", "note"]
    by_email = {row[0]: dict(zip(header, row, strict=False)) for row in rows[1:]}
    ada = by_email["ada@example.org"]
    # CSV: OWASP's guard; XLSX and XLS: text cells, exactly as held.
    guard = "'" if fmt == "csv" else ""
    assert ada["name"] == guard + EVIL[0]
    assert ada["city"] == guard + EVIL[1]
    assert ada["n"] in (-5, "-5", -5.0)  # a number stays a number, which no sheet runs
    assert ada["lists"] == "Newsletter" and ada["tags"] == "vip"
    assert by_email["bob@example.org"]["note"] == guard + EVIL[2]
    cells = {str(cell) for row in rows for cell in row}
    if fmt == "xlsx":  # OOXML writes a carriage return as _x000D_; openpyxl leaves it so
        cells = {c.replace("_x000D_", "\r") for c in cells}
    for value in EVIL:
        assert guard + value in cells
        if guard:
            assert value not in cells
    if fmt == "xlsx":  # every text a text cell: none is a formula
        book = openpyxl.load_workbook(path)
        kinds = {c.data_type for s in book.worksheets for row in s.iter_rows() for c in row}
        assert "f" not in kinds
    if fmt == "xls":
        book = xlrd.open_workbook(str(path))
        sheet = book.sheet_by_index(0)
        kinds = {sheet.cell_type(r, c) for r in range(sheet.nrows) for c in range(sheet.ncols)}
        assert kinds <= {xlrd.XL_CELL_TEXT, xlrd.XL_CELL_NUMBER, xlrd.XL_CELL_EMPTY}


@pytest.mark.promise("P20")
def test_xls_starts_a_new_sheet_past_its_row_limit_and_reads_back_as_one_table(
    customer, tmp_path, monkeypatch
):
    monkeypatch.setattr(spreadsheets.XlsSink, "sheet_rows", 3)
    for i in range(7):
        audience.add_contact(customer.account, f"p{i}@example.org", name=f"P {i}")
    path = tmp_path / "out.xls"
    exporter.export_contacts(Contact.objects.filter(account=customer.account), "xls", path)
    book = xlrd.open_workbook(str(path))
    assert [s.name for s in book.sheets()] == ["Contacts", "Contacts 2", "Contacts 3"]
    assert [s.nrows for s in book.sheets()] == [4, 4, 2]
    assert all(s.row_values(0)[0] == "email" for s in book.sheets())
    # Imported into another account, the three sheets are one table again.

    other = UserFactory()
    job = run(prepare(other, path.read_bytes(), name="out.xls"))
    assert job.counts["added"] == 7


def test_an_export_covers_a_list_or_a_search_and_nothing_of_another_account(
    customer, other_customer, newsletter
):
    audience.add_contact(customer.account, "ada@example.org", name="Ada", lists=[newsletter])
    bob = audience.add_contact(customer.account, "bob@example.org", name="Bob")
    audience.set_status(bob, Contact.Status.UNSUBSCRIBED)
    audience.add_contact(other_customer.account, "ada.other@example.org", name="Ada")

    def emails(**kwargs) -> list[str]:  # type: ignore[no-untyped-def]
        job = services.start_export(customer.account, by=customer, fmt="csv", **kwargs)
        job = services.run_export(job.pk)
        assert job is not None and job.status == ExportJob.Status.DONE
        return sorted(r[0] for r in read(transfer_path(job.file), "csv")[1:])

    assert emails() == ["ada@example.org", "bob@example.org"]
    assert emails(scope="list", list_id=newsletter.pk) == ["ada@example.org"]
    assert emails(scope="search", q="ada") == ["ada@example.org"]
    assert emails(scope="search", status="unsubscribed") == ["bob@example.org"]


def test_a_finished_export_is_not_built_twice(customer):
    job = services.start_export(customer.account, by=customer, fmt="csv")
    assert services.run_export(job.pk) is not None
    assert services.run_export(job.pk) is None


def test_expired_exports_and_import_reports_are_deleted_by_the_schedule(customer, settings):
    assert "tidings.transfer.tasks.delete_expired_transfer_files" in {
        entry["task"] for entry in app.conf.beat_schedule.values()
    }
    export = services.run_export(
        services.start_export(customer.account, by=customer, fmt="xlsx").pk
    )
    job = run(prepare(customer, b"email\nada@example.org\nbad\n"))
    assert export is not None and job.report_file
    files = [transfer_path(export.file), transfer_path(job.report_file)]
    assert all(f.exists() for f in files)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=settings.TRANSFER_FILE_DAYS, hours=1)
    with time_machine.travel(later - dt.timedelta(days=1)):
        assert services.delete_expired_files() == {"exports": 0, "imports": 0}
    with time_machine.travel(later), pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.db.transaction.on_commit", lambda f, *a, **k: f())
        assert services.delete_expired_files() == {"exports": 1, "imports": 1}
    assert not any(f.exists() for f in files)
    assert not ExportJob.objects.exists()
    job.refresh_from_db()
    assert job.report_file == "" and job.counts["added"] == 1  # the record stays


LIBREOFFICE = shutil.which("libreoffice") or shutil.which("soffice")


@pytest.mark.slow
@pytest.mark.promise("P20")
@pytest.mark.skipif(LIBREOFFICE is None, reason="./dev test installs LibreOffice")
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "xls"])
def test_libreoffice_opens_every_format(audience_of, tmp_path, fmt):
    source = tmp_path / f"contacts.{fmt}"
    exporter.export_contacts(audience_of, fmt, source)
    out = tmp_path / "converted"
    # As a person opens it: a CSV as UTF-8 with commas (LibreOffice's import dialog).
    infilter = ["--infilter=CSV:44,34,76"] if fmt == "csv" else []
    subprocess.run(
        [LIBREOFFICE, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
         *infilter, "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76",
         "--outdir", str(out), str(source)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    with open(out / "contacts.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    emails = {row[0] for row in rows[1:]}
    assert "ada@example.org" in emails and len(rows) == 6
    ada = next(row for row in rows if row[0] == "ada@example.org")
    # Read as text, never run: the cell shows the formula's text, not its result.
    assert "HYPERLINK" in ada[1]


@pytest.mark.slow
@pytest.mark.promise("P20")
def test_a_real_xls_export_past_65535_rows_splits_into_sheets(customer, tmp_path):
    Contact.objects.bulk_create(
        Contact(account=customer.account, email=f"p{i}@example.org", name=f"P {i}")
        for i in range(70_000)
    )
    path = tmp_path / "big.xls"
    contacts = Contact.objects.filter(account=customer.account)
    assert exporter.export_contacts(contacts, "xls", path) == 70_000
    book = xlrd.open_workbook(str(path), on_demand=True)
    assert [book.sheet_by_index(i).nrows for i in range(book.nsheets)] == [65_536, 4_466]


def test_import_jobs_of_an_erased_account_go_with_their_files(customer):
    job = run(prepare(customer, b"email\nada@example.org\nbad\n"))
    report = transfer_path(job.report_file)
    assert report.exists()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.db.transaction.on_commit", lambda f, *a, **k: f())
        ImportJob.objects.filter(pk=job.pk).delete()  # as the erasure job does, by queryset
    assert not report.exists()


@pytest.mark.promise("P12")
def test_the_retention_schedule_deletes_expired_exports_and_abandoned_uploads(customer, settings):

    export = services.run_export(services.start_export(customer.account, by=customer, fmt="csv").pk)
    upload = services.receive_upload(
        customer.account, by=customer, name="a.csv", chunks=[b"email\n"]
    )
    assert export is not None
    files = [transfer_path(export.file), transfer_path(upload.upload_file)]
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=settings.TRANSFER_FILE_DAYS, hours=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.db.transaction.on_commit", lambda f, *a, **k: f())
        assert retention.run("contact exports", now=later) == 1
        assert retention.run("contact uploads never imported", now=later) == 1
    assert not ExportJob.objects.exists() and not ImportJob.objects.exists()
    assert not any(f.exists() for f in files)


@pytest.mark.promise("P21")
def test_an_export_of_a_closed_account_is_not_built(customer):

    job = services.start_export(customer.account, by=customer, fmt="csv")
    Account.objects.filter(pk=customer.account_id).update(status=Account.Status.CLOSED)
    assert services.run_export(job.pk) is None
    job.refresh_from_db()
    assert job.status == ExportJob.Status.FAILED and not job.file
    customer.account.refresh_from_db()
    with pytest.raises(TransferError, match="closed"):
        services.start_export(customer.account, by=customer, fmt="csv")


def _age_segment(account, name: str = "Over 40"):  # type: ignore[no-untyped-def]
    rules = {
        "match": "all",
        "conditions": [{"field": "attribute", "key": "age", "op": "gt", "value": "40"}],
    }
    return segments.save_segment(account, name=name, rules=rules)


@pytest.mark.promise("P20")
def test_a_segment_exports_like_a_list(customer, other_customer, client):
    account = customer.account
    audience.declare_attributes(account, {"age": "number"})
    for email, age in (("a@example.org", 41), ("b@example.org", 40), ("c@example.org", 67.5)):
        audience.add_contact(account, email, attributes={"age": age})
    restricted = audience.add_contact(account, "r@example.org", attributes={"age": 90})
    restriction.restrict(restricted, reason="contested accuracy")
    audience.add_contact(other_customer.account, "o@example.org", attributes={"age": 50})
    segment = _age_segment(account)
    # From the segment's page to the export page, the segment already chosen.
    client.force_login(customer)
    page = client.get(reverse("audience:segment", args=[segment.uuid])).content.decode()
    link = f"{reverse('transfer:exports')}?segment={segment.pk}"
    assert link in page
    page = client.get(link).content.decode()
    assert f'<option value="{segment.pk}" selected>' in page
    response = client.post(
        reverse("transfer:exports"), {"scope": "segment", "segment": segment.pk, "format": "csv"}
    )
    assert response.status_code == 302
    job = ExportJob.objects.get(account=account)
    assert job.description == "segment “Over 40”"
    job = services.run_export(job.pk) or job
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE and job.rows == 2
    rows = read(transfer_path(job.file), "csv")
    assert sorted(r[0] for r in rows[1:]) == ["a@example.org", "c@example.org"]
    assert rows[0][-1] == "age" and sorted(r[-1] for r in rows[1:]) == ["41", "67.5"]


def test_a_segment_export_without_a_segment_or_of_another_account_is_refused(
    customer, other_customer, client
):
    theirs = _age_segment(other_customer.account)
    client.force_login(customer)
    for data in ({"scope": "segment", "format": "csv"},
                 {"scope": "segment", "segment": theirs.pk, "format": "csv"}):  # fmt: skip
        response = client.post(reverse("transfer:exports"), data)
        assert response.status_code == 200
    with pytest.raises(TransferError):
        services.start_export(
            customer.account, by=customer, fmt="csv", scope="segment", segment_id=theirs.pk
        )
    assert not ExportJob.objects.filter(account=customer.account).exists()


def test_a_segment_deleted_before_its_export_is_built_fails_the_export_with_the_reason(customer):
    segment = _age_segment(customer.account)
    job = services.start_export(
        customer.account, by=customer, fmt="csv", scope="segment", segment_id=segment.pk
    )
    segment.delete()
    job = services.run_export(job.pk)
    assert job is not None and job.status == ExportJob.Status.FAILED
    assert job.error == "The segment was deleted: nothing was exported." and not job.file
