"""One rule for a contact's attributes, kept by every path that writes them (the web
form, the API, an import): names a customer can type, at most 100, scalar values of a
bounded size. Exports and downloads keep what older data may still hold from running."""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pytest

from tests.audience.conftest import path_of
from tests.transfer.conftest import prepare, report_rows, run
from tidings.audience import links, services
from tidings.audience.models import Contact
from tidings.transfer import exporter, importer, mapping, writers
from tidings.transfer.errors import TransferError
from tidings.transfer.models import ImportJob

FORMULA = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture(autouse=True)
def _transfer_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.TRANSFER_DIR = tmp_path / "transfer"


# --- the rule, through each path -------------------------------------------------------


@pytest.mark.parametrize(
    "attributes",
    [
        {FORMULA: "x"},
        {f"a{i}": i for i in range(101)},
        {"city": {"name": "Ghent"}},
        {"city": ["Ghent"]},
        {"city": "x" * 1001},
    ],
    ids=["formula-name", "101-names", "object", "list", "long-text"],
)
def test_the_service_refuses_attributes_outside_the_rule_and_adds_nothing(account, attributes):
    with pytest.raises(services.AudienceError):
        services.add_contact(account, "ada@example.org", attributes=attributes)
    assert not Contact.objects.exists()


def test_the_api_refuses_a_formula_name_and_too_many_attributes(api, account):
    for attributes in ({FORMULA: "x"}, {f"a{i}": "v" for i in range(101)}):
        response = api("post", "/contacts", {"email": "ada@example.org", "attributes": attributes})
        assert response.status_code in (400, 422), response.content
    contact = services.add_contact(account, "ada@example.org")
    response = api("patch", f"/contacts/{contact.uuid}", {"attributes": {FORMULA: "x"}})
    assert response.status_code in (400, 422)
    contact.refresh_from_db()
    assert contact.attributes == {}
    assert Contact.objects.count() == 1


def test_the_web_form_refuses_a_formula_name(client, customer, account):
    client.force_login(customer)
    contact = services.add_contact(account, "ada@example.org", name="Ada")
    response = client.post(
        f"/contacts/{contact.uuid}/",
        {"name": "Ada", "tags": "", "attr_key": [FORMULA], "attr_type": ["text"],
         "attr_value": ["x"]},
    )  # fmt: skip
    assert response.status_code == 400
    contact.refresh_from_db()
    assert contact.attributes == {}


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({FORMULA: "x"}, "is not an attribute name"),
        ({f"a{i}": "v" for i in range(10_000)}, "at most 100 attributes"),
        ({"city": {"name": "Ghent"}}, "must be text, a number"),
        ({"city": "x" * 1001}, "longer than 1000"),
    ],
    ids=["formula-name", "10000-names", "object", "long-text"],
)
def test_an_import_refuses_a_row_whose_json_attributes_break_the_rule(customer, attributes, reason):
    cell = json.dumps(attributes).replace('"', '""')
    content = (
        'email,name,attributes\nada@example.org,Ada,"' + cell + '"\n'
        'grace@example.org,Grace,"{""city"": ""Arlington"", ""gone"": null}"\n'
    ).encode()
    job = run(prepare(customer, content))
    assert job.status == ImportJob.Status.DONE, job.error
    assert job.counts["rejected"] == 1
    [row] = report_rows(job)
    assert reason in row[1]
    assert list(Contact.objects.values_list("email", "attributes")) == [
        ("grace@example.org", {"city": "Arlington"})
    ]


def test_an_import_refuses_an_attribute_cell_longer_than_the_rule(customer):
    content = b"email,city\nada@example.org," + b"x" * 1001 + b"\ngrace@example.org,Ghent\n"
    job = run(prepare(customer, content))
    assert job.counts["rejected"] == 1
    assert list(Contact.objects.values_list("email", flat=True)) == ["grace@example.org"]


def test_an_import_mapping_uses_the_same_name_rule(customer):

    with pytest.raises(TransferError, match="not an attribute name"):
        mapping.validate(["email", "x"], ["email", "attribute:a__b"])
    with pytest.raises(TransferError, match="at most 100"):
        mapping.validate(
            ["email", *[f"c{i}" for i in range(101)]],
            ["email", *[f"attribute:c{i}" for i in range(101)]],
        )


# --- exports and downloads keep what older data may hold from running -----------------------


def _legacy(account, attributes):  # type: ignore[no-untyped-def]
    """A contact whose attributes were stored before the rule held on every path."""
    contact = services.add_contact(account, "ada@example.org", name="Ada")
    Contact.objects.filter(pk=contact.pk).update(attributes=attributes)
    contact.refresh_from_db()
    return contact


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "xls"])
def test_an_export_keeps_a_formula_in_an_attribute_name_from_running(account, tmp_path, fmt):
    _legacy(account, {FORMULA: "x", "\uff1d1+1": "y"})
    path = tmp_path / f"out.{fmt}"
    exporter.export_contacts(Contact.objects.filter(account=account), fmt, path)
    if fmt == "csv":
        header = next(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    elif fmt == "xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        header = [c for c in next(sheet.iter_rows(values_only=True))]
    else:
        import xlrd

        header = xlrd.open_workbook(str(path)).sheet_by_index(0).row_values(0)
    if fmt == "csv":  # OWASP's guard
        assert "'" + FORMULA in header and "'\uff1d1+1" in header
        assert FORMULA not in header
    else:  # a text cell, exactly as it is (tests/core/test_spreadsheets.py)
        assert FORMULA in header and "\uff1d1+1" in header


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_contacts_own_download_shows_a_nested_value_instead_of_failing(client, account, fmt):
    contact = _legacy(account, {"address": {"city": "Ghent"}, "langs": ["nl", "fr"]})
    path = path_of(links.preference_url(contact))
    assert client.get(f"{path}data/").status_code == 200
    response = client.get(f"{path}data/{fmt}/")
    assert response.status_code == 200
    if fmt == "csv":
        text = response.content.decode("utf-8-sig")
        assert '{""city"": ""Ghent""}' in text


@pytest.mark.parametrize("writer", ["postgres", "orm"])
def test_repeated_imports_never_grow_a_contact_past_the_limit(customer, monkeypatch, writer):

    if writer == "orm":
        monkeypatch.setattr(
            importer,
            "writer_for",
            lambda vendor, job, lists, proof: writers.OrmWriter(job, lists, proof),
        )
    for batch in ("a", "b"):
        names = [f"{batch}{i}" for i in range(60)]
        content = (",".join(["email", *names]) + "\nada@example.org," + ",".join(names)).encode()
        job = run(prepare(customer, content, mode="update"))
        assert job.status == ImportJob.Status.DONE, job.error
    attributes = Contact.objects.get().attributes
    assert len(attributes) == 60 and "a0" in attributes
