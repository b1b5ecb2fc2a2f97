"""Reading what customers upload: encodings, delimiters, workbooks, known exports, and
files that are broken in the middle (nothing is imported from those)."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
import xlwt

from tests.transfer.conftest import prepare, report_rows, run, upload
from tidings.audience.models import Contact
from tidings.transfer import mapping, services
from tidings.transfer.errors import TransferError
from tidings.transfer.models import ImportJob

NAMES = "email;name\nfrancois@example.org;François Müller\njose@example.org;José Núñez\n"


@pytest.mark.parametrize(
    ("content", "encoding", "delimiter"),
    [
        (NAMES.encode("utf-8"), "utf-8", ";"),
        (b"\xef\xbb\xbf" + NAMES.encode("utf-8"), "utf-8-sig", ";"),
        (NAMES.replace(";", "\t").encode("utf-16"), "utf-16", "\t"),  # Excel's "Unicode text"
        (NAMES.replace(";", ",").encode("utf-16-le"), "utf-16-le", ","),
        (NAMES.replace(";", "|").encode("latin-1"), "cp1252", "|"),
        (NAMES.encode("cp1252"), "cp1252", ";"),
    ],
)
def test_encodings_and_delimiters_are_recognised(customer, content, encoding, delimiter):
    job = upload(customer, content)
    assert (job.encoding, job.delimiter) == (encoding, delimiter)
    assert job.columns == ["email", "name"]
    job = run(prepare(customer, content))
    assert job.status == ImportJob.Status.DONE, job.error
    names = dict(Contact.objects.values_list("email", "name"))
    assert names == {"francois@example.org": "François Müller", "jose@example.org": "José Núñez"}


def test_windows_1252_punctuation_is_read_as_such(customer):
    name = "“Ann” O\u2019Neil \u2013 5 €"  # curly quotes, en dash, euro: cp1252's own
    content = f"email,name\nann@example.org,{name}\n".encode("cp1252")
    job = run(prepare(customer, content))
    assert job.encoding == "cp1252"
    assert Contact.objects.get().name == name


def test_a_bare_list_of_addresses_has_no_header(customer):
    job = run(prepare(customer, b"ada@example.org\nbob@example.org\n"))
    assert not job.has_header and job.columns == ["Column 1"]
    assert Contact.objects.count() == 2


def test_a_file_that_turns_to_another_encoding_half_way_imports_nothing(customer):
    head = b"email,name\n" + b"".join(b"p%d@example.org,Plain\n" % i for i in range(5000))
    content = head + "late@example.org,Ren\xe9e\n".encode("latin-1")
    # The analysis reads the whole file (the sample looked like UTF-8): it fails there,
    # with the line, before anything is mapped.
    job = upload(customer, content)
    assert job.status == ImportJob.Status.FAILED
    assert "Line 5002 of the file is not valid utf-8" in job.error
    assert not job.upload_file and not Contact.objects.exists()


def test_a_quote_left_open_imports_nothing(customer):
    content = b'email,name\nada@example.org,Ada\nbob@example.org,"Bob\n' + b"x" * (1 << 21)
    job = upload(customer, content)
    assert job.status == ImportJob.Status.FAILED
    assert "quote" in job.error
    assert not Contact.objects.exists()


def test_a_row_with_too_many_cells_is_rejected_with_its_line(customer):
    content = b"email,name\nada@example.org,Ada\nbob@example.org,Bob, Jr,extra\n"
    job = run(prepare(customer, content))
    assert job.counts["added"] == 1
    assert report_rows(job)[0][:2] == [
        "3",
        "the row has 4 cells but the header has 2: "
        "is a delimiter inside a value that is not quoted?",
    ]


def _xlsx(rows: list[list[object]], sheets: int = 1) -> bytes:
    book = openpyxl.Workbook()
    for n in range(sheets):
        sheet = book.active if n == 0 else book.create_sheet(f"More {n}")
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_workbook_is_imported_with_typed_attributes(customer):
    content = _xlsx(
        [
            ["E-mail", "Name", "Age", "Since"],
            ["ada@example.org", "Ada", 36, dt.datetime(2020, 1, 2, 3, 4)],
            [None, None, None, None],
            ["grace@example.org", "Grace", 85.5, None],
        ]
    )
    job = run(prepare(customer, content, name="people.xlsx"))
    assert job.format == "xlsx" and job.status == ImportJob.Status.DONE, job.error
    attributes = dict(Contact.objects.values_list("email", "attributes"))
    assert attributes == {
        "ada@example.org": {"age": 36, "since": "2020-01-02T03:04:00"},
        "grace@example.org": {"age": 85.5},
    }


def test_an_xls_workbook_split_over_sheets_is_read_as_one_table(customer):
    book = xlwt.Workbook()
    for n, start in enumerate((0, 3)):
        sheet = book.add_sheet(f"Contacts {n + 1}")
        for c, header in enumerate(["email", "name"]):
            sheet.write(0, c, header)
        for r in range(3):
            sheet.write(r + 1, 0, f"p{start + r}@example.org")
            sheet.write(r + 1, 1, f"P {start + r}")
    other = book.add_sheet("Notes")
    other.write(0, 0, "not contacts")
    out = io.BytesIO()
    book.save(out)
    job = run(prepare(customer, out.getvalue() + b"", name="old.xls"))
    assert job.format == "xls" and job.status == ImportJob.Status.DONE, job.error
    assert Contact.objects.count() == 6


def test_a_mailchimp_export_is_recognised(customer):
    columns = ["Email Address", "First Name", "Last Name", "Birthday", "MEMBER_RATING",
               "OPTIN_TIME", "LEID", "TAGS"]  # fmt: skip
    assert mapping.recognise(columns) == "mailchimp"
    assert mapping.suggest(columns) == [
        "email", "first_name", "last_name", "attribute:birthday", "ignore", "ignore",
        "ignore", "tags",
    ]  # fmt: skip
    content = (
        b'Email Address,First Name,Last Name,TAGS\nada@example.org,Ada,Lovelace,"""vip"",""b"""\n'
    )
    run(prepare(customer, content))
    ada = Contact.objects.get()
    assert (ada.name, ada.tags) == ("Ada Lovelace", ["b", "vip"])


def test_a_mailchimp_unsubscribed_export_imports_no_one(customer):
    content = (
        b"Email Address,First Name,UNSUB_TIME,UNSUB_CAMPAIGN_TITLE\n"
        b"ada@example.org,Ada,2024-01-05 10:00:00,Spring sale\n"
    )
    job = run(prepare(customer, content))
    assert not Contact.objects.exists()
    assert job.counts["skipped"] == 1
    assert "opted out according to the column “UNSUB_TIME”" in report_rows(job)[0][1]


def test_a_listmonk_export_is_recognised_and_blocklisted_rows_skipped(customer):
    content = (
        b"uuid,email,name,attributes,status,created_at,updated_at\n"
        b'1b0c,ada@example.org,Ada,"{""city"": ""London"", ""n"": 3}",enabled,2024-01-01,x\n'
        b'2c1d,spam@example.org,Spam,"{}",blocklisted,2024-01-01,x\n'
        b'3d2e,odd@example.org,Odd,"[1, 2]",enabled,2024-01-01,x\n'
    )
    job = upload(customer, content)
    assert job.mapping == ["ignore", "email", "name", "attributes", "status", "ignore", "ignore"]
    job = run(prepare(customer, content))
    assert dict(Contact.objects.values_list("email", "attributes")) == {
        "ada@example.org": {"city": "London", "n": 3}
    }
    reasons = [r[1] for r in report_rows(job)]
    assert "marked “blocklisted” in the file" in reasons[0]
    assert reasons[1] == "the attributes column does not hold a JSON object"


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (["name", "ignore"], "holds the email address"),
        (["email", "email"], "Only one column"),
        (["email", "attribute:=Bad"], "attribute name"),
        (["email", "nonsense"], "unknown choice"),
    ],
)
def test_a_wrong_mapping_is_refused(customer, targets, message):

    job = upload(customer, b"a,b\nada@example.org,x\n")
    with pytest.raises(TransferError, match=message):
        services.set_mapping(job, targets=targets, mode="add", list_ids=[])
    job.refresh_from_db()
    assert job.status == ImportJob.Status.UPLOADED
