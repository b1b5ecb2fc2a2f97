"""Imports and exports through the HTTP API: the same three steps as in the browser,
scoped to the key's account, every bad input refused with nothing stored."""

from __future__ import annotations

import csv
import io

import pytest

from tidings.audience import segments, services
from tidings.audience.models import Contact, MailingList
from tidings.transfer.models import ExportJob, ImportJob

CSV = (
    b"Email Address,First Name,Last Name,City\n"
    b"ada@example.org,Ada,Lovelace,London\n"
    b"not-an-address,Bad,Row,Nowhere\n"
    b"grace@example.org,Grace,Hopper,Arlington\n"
)


@pytest.fixture(autouse=True)
def _transfer_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.TRANSFER_DIR = tmp_path / "transfer"


@pytest.fixture
def news(customer) -> MailingList:  # type: ignore[no-untyped-def]
    return MailingList.objects.create(account=customer.account, name="News")


def stored_files(settings) -> list[str]:  # type: ignore[no-untyped-def]
    root = settings.TRANSFER_DIR
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_an_import_in_three_calls(api, customer, news, django_capture_on_commit_callbacks):
    job = api.analysed(CSV)
    assert job["format"] == "csv" and job["status"] == "uploaded"
    assert job["columns"] == ["Email Address", "First Name", "Last Name", "City"]
    # Mailchimp's columns are recognised; the city is offered as an attribute.
    assert job["mapping"][:3] == ["email", "first_name", "last_name"]

    mapped = api(
        "put",
        f"/imports/{job['id']}/mapping",
        {
            "targets": ["email", "first_name", "last_name", "attribute:city"],
            "lists": [str(news.uuid)],
        },
    )
    assert mapped.status_code == 200, mapped.content
    assert mapped.json()["lists"] == [str(news.uuid)]

    with django_capture_on_commit_callbacks(execute=True):  # the worker, eagerly
        started = api(
            "post",
            f"/imports/{job['id']}/start",
            {
                "legal_basis": "consent",
                "basis_date": "2024-03-01",
                "statement": "Ticked the newsletter box at the shop's checkout.",
            },
        )
    assert started.status_code == 202, started.content
    assert started.json()["legal_basis"] == "consent"

    done = api("get", f"/imports/{job['id']}").json()
    assert done["status"] == "done", done
    assert done["counts"]["added"] == 2 and done["counts"]["rejected"] == 1
    ada = Contact.objects.get(account=customer.account, email="ada@example.org")
    assert ada.name == "Ada Lovelace" and ada.attributes == {"city": "London"}
    assert ada.legal_basis == "consent"
    assert ada.subscriptions.get().mailing_list == news

    rejected = api("get", f"/imports/{job['id']}/rejected.csv")
    assert rejected.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(rejected.streaming_content).decode("utf-8-sig"))))
    assert rows[1][0] == "3" and "not-an-address" in ",".join(rows[1])
    assert [j["id"] for j in api("get", "/imports").json()] == [job["id"]]


def test_a_file_over_the_limit_is_refused_and_nothing_is_kept(api, settings):
    settings.TRANSFER_UPLOAD_MAX_BYTES = 1000
    big = b"email\n" + b"".join(b"person%d@example.org\n" % i for i in range(200))

    response = api.upload(big)

    assert response.status_code == 413
    assert "larger than the limit of 1000 bytes" in response.json()["detail"]
    assert not ImportJob.objects.exists()
    assert stored_files(settings) == []


def test_an_empty_body_is_refused_and_nothing_is_kept(api, settings):
    response = api.upload(b"", name="f.csv")

    assert response.status_code == 422
    assert "Send the file" in response.json()["detail"]
    assert not ImportJob.objects.exists()
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"%PDF-1.4\x00\x00\x01binary", "not a text file"),
        (b"PK\x03\x04broken zip", "not a readable XLSX"),
    ],
)
def test_a_file_that_cannot_be_read_fails_its_analysis_and_is_not_kept(
    api, settings, content, message
):
    job = api.analysed(content, name="f.csv")

    assert job["status"] == "failed"
    assert message in job["error"] and "Nothing was imported" in job["error"]
    assert stored_files(settings) == []
    assert not Contact.objects.exists()


def test_a_bad_mapping_or_basis_changes_nothing(api, customer, other_customer):
    job = api.analysed(CSV)
    theirs = MailingList.objects.create(account=other_customer.account, name="Theirs")

    no_email = api(
        "put", f"/imports/{job['id']}/mapping", {"targets": ["name", "ignore", "ignore", "ignore"]}
    )
    foreign_list = api(
        "put",
        f"/imports/{job['id']}/mapping",
        {"targets": ["email", "ignore", "ignore", "ignore"], "lists": [str(theirs.uuid)]},
    )
    unmapped_start = api(
        "post", f"/imports/{job['id']}/start", {"legal_basis": "contract", "statement": "x"}
    )

    assert no_email.status_code == 422 and "email" in no_email.json()["detail"].lower()
    assert foreign_list.status_code == 422
    assert (
        unmapped_start.status_code == 422 and "Map the columns" in unmapped_start.json()["detail"]
    )
    assert ImportJob.objects.get().status == "uploaded"
    assert not Contact.objects.exists()

    api(
        "put", f"/imports/{job['id']}/mapping", {"targets": ["email", "ignore", "ignore", "ignore"]}
    )
    no_date = api(
        "post",
        f"/imports/{job['id']}/start",
        {"legal_basis": "consent", "statement": "at the shop"},
    )
    assert no_date.status_code == 422 and "date" in no_date.json()["detail"]
    assert ImportJob.objects.get().status == "mapped" and not Contact.objects.exists()


def test_another_accounts_imports_and_exports_are_not_found(api, other_api, customer, settings):
    job = api.analysed(CSV)
    export = api("post", "/exports", {"format": "csv"}).json()

    for method, path, body in [
        ("get", f"/imports/{job['id']}", None),
        (
            "put",
            f"/imports/{job['id']}/mapping",
            {"targets": ["email", "ignore", "ignore", "ignore"]},
        ),
        ("post", f"/imports/{job['id']}/start", {"legal_basis": "contract", "statement": "x"}),
        ("get", f"/imports/{job['id']}/rejected.csv", None),
        ("delete", f"/imports/{job['id']}", None),
        ("get", f"/exports/{export['id']}", None),
        ("get", f"/exports/{export['id']}/file", None),
    ]:
        assert other_api(method, path, body).status_code == 404, path
    assert other_api("get", "/imports").json() == []
    assert other_api("get", "/exports").json() == []
    assert ImportJob.objects.get().status == "uploaded"


def test_discarding_an_import_deletes_its_upload(api, settings, django_capture_on_commit_callbacks):
    job = api.upload(CSV).json()
    assert stored_files(settings)

    with django_capture_on_commit_callbacks(execute=True):
        assert api("delete", f"/imports/{job['id']}").status_code == 204

    assert not ImportJob.objects.exists()
    assert stored_files(settings) == []


def test_export_a_list_and_download_it(api, customer, news, django_capture_on_commit_callbacks):
    for address in ("ada@example.org", "=cmd|' /C calc'!A0@example.org"):
        contact = Contact.objects.create(account=customer.account, email=address, name="=1+1")
        contact.subscriptions.create(mailing_list=news, status="confirmed")

    with django_capture_on_commit_callbacks(execute=True):
        created = api(
            "post", "/exports", {"format": "csv", "scope": "list", "list": str(news.uuid)}
        )
    assert created.status_code == 202, created.content
    export = api("get", f"/exports/{created.json()['id']}").json()
    assert export["status"] == "done" and export["rows"] == 2

    response = api("get", f"/exports/{export['id']}/file")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["email"] for r in rows} >= {"ada@example.org"}
    assert all(not r["name"].startswith("=") for r in rows)  # formulas neutralised
    assert ExportJob.objects.get().status == "done"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"format": "pdf"}, 422, ""),
        ({"format": "csv", "scope": "list"}, 422, "Give the list"),
        (
            {"format": "csv", "scope": "list", "list": "00000000-0000-0000-0000-000000000000"},
            404,
            "No such list",
        ),
        ({"format": "csv", "scope": "search", "status": "royalty"}, 422, "Unknown status"),
    ],
)
def test_a_bad_export_request_is_refused_and_queues_nothing(api, body, status, message):
    response = api("post", "/exports", body)

    assert response.status_code == status, response.content
    assert message in response.content.decode()
    assert not ExportJob.objects.exists()


def test_export_a_segment_and_never_another_accounts(
    api, other_api, customer, django_capture_on_commit_callbacks
):
    services.declare_attributes(customer.account, {"age": "number"})
    for email, age in (("a@example.org", "41"), ("b@example.org", "40")):
        services.add_contact(customer.account, email, attributes={"age": age})
    rules = {"conditions": [{"field": "attribute", "key": "age", "op": "gt", "value": "40"}]}
    segment = segments.save_segment(customer.account, name="Over 40", rules=rules)
    body = {"format": "csv", "scope": "segment", "segment": str(segment.uuid)}
    assert other_api("post", "/exports", body).status_code == 404
    assert api("post", "/exports", {"format": "csv", "scope": "segment"}).status_code == 422
    with django_capture_on_commit_callbacks(execute=True):
        created = api("post", "/exports", body)
    assert created.status_code == 202, created.content
    export = api("get", f"/exports/{created.json()['id']}").json()
    assert export["status"] == "done" and export["rows"] == 1
    text = b"".join(api("get", f"/exports/{export['id']}/file").streaming_content)
    assert b"a@example.org" in text and b"b@example.org" not in text
    assert ExportJob.objects.count() == 1
