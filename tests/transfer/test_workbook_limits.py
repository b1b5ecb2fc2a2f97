"""Hostile workbooks: a zip bomb, a zip whose sizes lie, too many cells or texts. The
upload request only stores the file; the analysis in the worker reads it streamed and
fails it with a clear error, and nothing is imported. A normal workbook still imports."""

from __future__ import annotations

import io
import struct
import zipfile

import openpyxl
import pytest
import xlwt
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.transfer.conftest import prepare, run, upload
from tidings.audience.models import Contact
from tidings.transfer import services
from tidings.transfer.models import ImportJob

MB = 1024**2
SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b"<sheetData>"
)
SHEET_TAIL = b"</sheetData></worksheet>"


def _workbook(sheet_chunks, shared: list[str] | None = None) -> bytes:  # type: ignore[no-untyped-def]
    """An XLSX built part by part; the sheet's XML is streamed in from `sheet_chunks`,
    so a part of hundreds of megabytes is never in memory, only its deflated bytes."""
    buffer = io.BytesIO()
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        z.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            '<sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>",
        )
        if shared is not None:
            items = "".join(f"<si><t>{s}</t></si>" for s in shared)
            z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}">{items}</sst>')
        with z.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(SHEET_HEAD)
            for chunk in sheet_chunks:
                sheet.write(chunk)
            sheet.write(SHEET_TAIL)
    return buffer.getvalue()


def _bomb(unpacked: int) -> bytes:
    """A header row, one contact, then rows of one repeated address: tiny once deflated."""
    header = b'<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c></row>'
    row = b'<row><c t="inlineStr"><is><t>same@example.org</t></is></c></row>'
    block = row * (MB // len(row))
    return _workbook([header, *([block] * (unpacked // MB))])


def _lying(data: bytes, member: str, declared: int) -> bytes:
    """The same zip with `member`'s uncompressed size rewritten, in its local header and
    in the central directory, as a forger would."""
    out = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    struct.pack_into("<L", out, info.header_offset + 22, declared)
    name = member.encode()
    at = 0
    while True:
        at = out.index(b"PK\x01\x02", at)
        length = struct.unpack_from("<H", out, at + 28)[0]
        if bytes(out[at + 46 : at + 46 + length]) == name:
            struct.pack_into("<L", out, at + 24, declared)
            return bytes(out)
        at += 4


@pytest.fixture
def limits(settings):  # type: ignore[no-untyped-def]
    settings.TRANSFER_SHEET_MAX_BYTES = 20 * MB
    return settings


def _files(settings) -> list[str]:  # type: ignore[no-untyped-def]
    root = settings.TRANSFER_DIR
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_inflated(limits, customer):
    bomb = _bomb(64 * MB)
    assert len(bomb) < 512 * 1024  # small on disk, 64 MB unpacked
    job = upload(customer, bomb, "bomb.xlsx")
    assert job.status == ImportJob.Status.FAILED
    assert "unpacks to more than 20 MB" in job.error and "Nothing was imported" in job.error
    assert not job.upload_file and _files(limits) == []
    assert not Contact.objects.exists()


def test_a_zip_whose_sizes_lie_is_refused_by_the_bytes_actually_inflated(limits, customer):
    bomb = _lying(_bomb(64 * MB), "xl/worksheets/sheet1.xml", 1000)
    declared = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(bomb)).infolist())
    assert declared < 20 * MB  # the directory says it is small
    job = upload(customer, bomb, "liar.xlsx")
    assert job.status == ImportJob.Status.FAILED
    assert "does not have the size it states" in job.error
    assert _files(limits) == [] and not Contact.objects.exists()


def test_a_part_declaring_xml_entities_is_refused(customer):
    laughs = _workbook([])
    doctype = b'<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
    forged = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(laughs)) as source,
        zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = doctype + data.replace(
                    b"<sheetData>", b"<sheetData><row><c><v>&b;</v></c></row>"
                )
            target.writestr(info.filename, data)
    job = upload(customer, forged.getvalue(), "laughs.xlsx")
    assert job.status == ImportJob.Status.FAILED
    assert "declares XML entities" in job.error


def test_too_many_cells_are_refused(settings, customer):
    settings.TRANSFER_SHEET_MAX_CELLS = 100_000
    # One cell at the last column makes each row 16,384 cells wide: 20 rows of 3 cells.
    rows = [b'<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c></row>']
    rows += [b'<row><c r="XFD%d" t="inlineStr"><is><t>x</t></is></c></row>' % n for n in range(20)]
    job = upload(customer, _workbook(rows), "wide.xlsx")
    assert job.status == ImportJob.Status.FAILED
    assert "more than 100,000 cells" in job.error
    assert not Contact.objects.exists()


def test_an_xls_workbook_is_held_to_the_same_limits(settings, customer):
    settings.TRANSFER_SHEET_MAX_CELLS = 100
    book = xlwt.Workbook()
    sheet = book.add_sheet("Contacts")
    for r in range(60):
        for c, value in enumerate([f"p{r}@example.org", "Name", "City"]):
            sheet.write(r, c, value)
    content = io.BytesIO()
    book.save(content)
    job = upload(customer, content.getvalue(), "old.xls")
    assert job.status == ImportJob.Status.FAILED and job.format == "xls"
    assert "more than 100 cells" in job.error
    assert not Contact.objects.exists()


def test_too_many_shared_texts_are_refused(settings, customer):
    settings.TRANSFER_SHEET_MAX_STRINGS = 1000
    job = upload(customer, _workbook([], shared=[f"p{i}@example.org" for i in range(1001)]))
    assert job.status == ImportJob.Status.FAILED
    assert "more than 1,000 different texts" in job.error


def test_too_much_shared_text_is_refused(settings, customer):
    settings.TRANSFER_SHEET_MAX_STRING_CHARS = 10_000
    job = upload(customer, _workbook([], shared=["x" * 6000, "y" * 6000]))
    assert job.status == ImportJob.Status.FAILED
    assert "10,000 characters of text" in job.error


def test_a_bomb_uploaded_in_the_browser_is_analysed_by_the_worker_not_the_request(
    client, customer, limits, django_capture_on_commit_callbacks
):
    client.force_login(customer)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            reverse("transfer:upload"), {"file": SimpleUploadedFile("bomb.xlsx", _bomb(64 * MB))}
        )
    job = ImportJob.objects.get()
    # The request stored the file and queued its analysis, nothing more.
    assert response.status_code == 302
    assert response["Location"] == reverse("transfer:import_map", args=[job.pk])
    assert job.status == ImportJob.Status.ANALYSING and job.columns == []
    assert "analysing…" in client.get(response["Location"]).content.decode()
    assert len(queued) == 1
    queued[0]()  # the worker (an eager Celery task, enqueued by name)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    page = client.get(response["Location"], follow=True).content.decode()
    assert "unpacks to more than 20 MB" in page
    assert _files(limits) == [] and not Contact.objects.exists()


def test_a_bomb_sent_to_the_api_is_analysed_by_the_worker_not_the_request(
    api, limits, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = api.upload(_lying(_bomb(64 * MB), "xl/worksheets/sheet1.xml", 1000), "b.xlsx")
    assert response.status_code == 201
    assert response.json()["status"] == "analysing" and response.json()["columns"] == []
    assert len(queued) == 1
    queued[0]()  # the worker
    job = api("get", f"/imports/{response.json()['id']}").json()
    assert job["status"] == "failed" and "does not have the size it states" in job["error"]
    assert _files(limits) == [] and not Contact.objects.exists()


def test_a_normal_workbook_still_imports_through_the_api(api, customer, limits):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Email", "Name", "Joined"])
    sheet.append(["ada@example.org", "Ada", 1843])
    sheet.append(["grace@example.org", "Grace", 1952])
    content = io.BytesIO()
    book.save(content)
    job = api.analysed(content.getvalue(), name="people.xlsx")
    assert job["status"] == "uploaded" and job["format"] == "xlsx"
    assert job["columns"] == ["Email", "Name", "Joined"]
    job = run(prepare(customer, content.getvalue(), name="people.xlsx"))
    assert job.status == ImportJob.Status.DONE and job.counts["added"] == 2
    assert set(Contact.objects.values_list("email", flat=True)) == {
        "ada@example.org",
        "grace@example.org",
    }


def test_an_analysis_lost_with_its_worker_is_queued_again(customer, settings):
    job = services.receive_upload(customer.account, by=customer, name="a.csv", chunks=[b"email\n"])
    assert job.status == ImportJob.Status.ANALYSING  # its commit never came: no worker ran
    ImportJob.objects.filter(pk=job.pk).update(created_at=job.created_at.replace(year=2020))
    assert services.resume_stalled() == [f"analysis {job.pk}"]
