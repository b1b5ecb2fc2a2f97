"""The Import and Export pages, as a customer uses them, and what another tenant gets."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.transfer.conftest import prepare, run, upload
from tidings.audience import services as audience
from tidings.audience.models import ConsentProof, Contact, MailingList
from tidings.transfer import services
from tidings.transfer.models import ExportJob, ImportJob


@pytest.fixture
def client_in(client, customer):  # type: ignore[no-untyped-def]
    client.force_login(customer)
    return client


def _files(settings) -> list[str]:  # type: ignore[no-untyped-def]
    root = settings.TRANSFER_DIR
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_navigation_links_to_import_and_export(client_in):
    page = client_in.get(reverse("accounts:my_account")).content.decode()
    assert reverse("transfer:imports") in page
    assert reverse("transfer:exports") in page


@pytest.mark.promise("P2")
def test_a_customer_imports_a_file_through_the_three_steps(client_in, customer, newsletter):
    content = b"Email Address,First Name,Last Name,MEMBER_RATING,LEID,Company\n" + (
        b"ada@example.org,Ada,Lovelace,2,123,Analytical Engines\n"
    )
    response = client_in.post(
        reverse("transfer:upload"),
        {"file": SimpleUploadedFile("mailchimp.csv", content, content_type="text/csv")},
    )
    job = ImportJob.objects.get(account=customer.account)
    assert response.status_code == 302
    assert response["Location"] == reverse("transfer:import_map", args=[job.pk])
    # The request only stored the file: a worker analyses it, the page waits for it.
    assert job.status == ImportJob.Status.ANALYSING and job.columns == []
    page = client_in.get(response["Location"]).content.decode()
    assert "analysing…" in page and 'http-equiv="refresh"' in page
    services.analyse_upload(job.pk)
    page = client_in.get(response["Location"]).content.decode()
    assert "Email Address" in page and "Analytical Engines" in page
    form = {
        "target_0": "email", "key_0": "", "target_1": "first_name", "key_1": "",
        "target_2": "last_name", "key_2": "", "target_3": "ignore", "key_3": "",
        "target_4": "ignore", "key_4": "", "target_5": "attribute", "key_5": "company",
        "mode": "add", "lists": [newsletter.pk],
    }  # fmt: skip
    response = client_in.post(reverse("transfer:import_map", args=[job.pk]), form)
    assert response["Location"] == reverse("transfer:import_basis", args=[job.pk])
    # Consent without its date is refused, and nothing starts.
    basis = {"legal_basis": "consent", "statement": "Webinar sign-up form", "confirm": "on"}
    response = client_in.post(reverse("transfer:import_basis", args=[job.pk]), basis)
    assert response.status_code == 200
    assert "Give the date" in response.content.decode()
    assert not Contact.objects.exists()
    basis["basis_date"] = "2023-05-04"
    response = client_in.post(reverse("transfer:import_basis", args=[job.pk]), basis)
    assert response["Location"] == reverse("transfer:import_detail", args=[job.pk])
    job.refresh_from_db()
    assert job.status in (ImportJob.Status.QUEUED, ImportJob.Status.DONE)
    run(job)  # the eager task waits for a commit the test transaction never makes
    contact = Contact.objects.get(account=customer.account)
    assert (contact.email, contact.name) == ("ada@example.org", "Ada Lovelace")
    assert contact.attributes == {"company": "Analytical Engines"}
    proof = ConsentProof.objects.get(subscriptions__contact=contact)
    assert proof.note.endswith("Webinar sign-up form")
    page = client_in.get(reverse("transfer:import_detail", args=[job.pk])).content.decode()
    # Nothing was refused: no link to a report of refused rows.
    assert "Finished" in page and "rejected.csv" not in page and "refused rows" not in page
    assert f"Put on the lists</th><td>{newsletter.name}</td>" in page
    status = client_in.get(reverse("transfer:import_status", args=[job.pk])).json()
    assert status["finished"] and status["counts"]["added"] == 1
    report = client_in.get(reverse("transfer:import_report", args=[job.pk]))
    assert b'"line","reason"' in b"".join(report.streaming_content)
    # The mapping is remembered for the next file with these headers.
    again = upload(customer, content, "b.csv")
    assert again.mapping[5] == "attribute:company"
    assert again.mapping[:3] == ["email", "first_name", "last_name"]


def test_an_upload_over_the_limit_is_refused_while_streaming_and_nothing_is_kept(
    client_in, customer, settings
):
    settings.TRANSFER_UPLOAD_MAX_BYTES = 1000
    content = b"email\n" + b"".join(b"person%d@example.org\n" % i for i in range(200))
    response = client_in.post(
        reverse("transfer:upload"), {"file": SimpleUploadedFile("big.csv", content)}, follow=True
    )
    assert "larger than the limit of 1000 bytes" in response.content.decode()
    assert not ImportJob.objects.exists()
    assert _files(settings) == []


def test_a_generated_oversized_stream_is_cut_at_the_limit(customer, settings):
    settings.TRANSFER_UPLOAD_MAX_BYTES = 64 * 1024
    pulled = 0

    def endless():  # type: ignore[no-untyped-def]
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 8192

    with pytest.raises(services.UploadTooLarge):
        services.receive_upload(customer.account, by=customer, name="x.csv", chunks=endless())
    assert pulled == 9  # stopped at the first chunk past the limit, not at the end
    assert _files(settings) == []
    assert not ImportJob.objects.exists()


def test_an_empty_file_is_refused_and_not_kept(client_in, settings):
    response = client_in.post(
        reverse("transfer:upload"), {"file": SimpleUploadedFile("f.csv", b"")}, follow=True
    )
    assert "Choose a CSV" in response.content.decode()
    assert not ImportJob.objects.exists()
    assert _files(settings) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"%PDF-1.4\x00\x00\x01binary", "not a text file"),
        (b"PK\x03\x04broken zip", "not a readable XLSX"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1broken", "not a readable XLS"),
    ],
)
def test_a_file_that_cannot_be_read_fails_its_analysis_and_is_not_kept(
    client_in, settings, content, message
):
    response = client_in.post(
        reverse("transfer:upload"), {"file": SimpleUploadedFile("f.csv", content)}
    )
    job = ImportJob.objects.get()
    services.analyse_upload(job.pk)  # the worker
    page = client_in.get(response["Location"], follow=True).content.decode()
    assert message in page and "Nothing was imported" in page
    assert ImportJob.objects.get().status == ImportJob.Status.FAILED
    assert _files(settings) == []
    assert not Contact.objects.exists()


def test_another_accounts_import_and_export_are_not_found(client_in, other_customer):
    other = prepare(other_customer, b"email\nbob@example.org\n")
    run(other)
    export = services.start_export(other_customer.account, by=other_customer, fmt="csv")
    services.run_export(export.pk)
    for name in ("import_detail", "import_map", "import_basis", "import_status",
                 "import_report"):  # fmt: skip
        assert client_in.get(reverse(f"transfer:{name}", args=[other.pk])).status_code == 404
    assert client_in.post(reverse("transfer:import_discard", args=[other.pk])).status_code == 404
    response = client_in.get(reverse("transfer:export_download", args=[export.pk]))
    assert response.status_code == 404
    assert ImportJob.objects.filter(pk=other.pk).exists()
    page = client_in.get(reverse("transfer:imports")).content.decode()
    assert "contacts.csv" not in page


def test_pages_need_a_login(client):
    for url in (reverse("transfer:imports"), reverse("transfer:exports")):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_customer_exports_a_list_and_downloads_it(client_in, customer, newsletter):
    audience.add_contact(customer.account, "ada@example.org", name="=cmd()", lists=[newsletter])
    audience.add_contact(customer.account, "bob@example.org")
    response = client_in.post(
        reverse("transfer:exports"),
        {"scope": "list", "mailing_list": newsletter.pk, "format": "csv", "status": ""},
    )
    assert response.status_code == 302
    job = ExportJob.objects.get(account=customer.account)
    services.run_export(job.pk)
    page = client_in.get(reverse("transfer:exports")).content.decode()
    assert "Download" in page and "Newsletter" in page
    response = client_in.get(reverse("transfer:export_download", args=[job.pk]))
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert '"ada@example.org","\'=cmd()"' in body
    assert "bob@example.org" not in body
    assert response["Content-Disposition"].startswith("attachment")


def test_an_export_of_a_list_of_another_account_is_refused(client_in, other_customer):

    theirs = MailingList.objects.create(account=other_customer.account, name="Theirs")
    response = client_in.post(
        reverse("transfer:exports"), {"scope": "list", "mailing_list": theirs.pk, "format": "csv"}
    )
    assert response.status_code == 200
    assert not ExportJob.objects.exists()
