"""An import's proof of consent: one for the file, referenced by each subscription it
wrote, in each of those contacts' data, kept while one of them relies on it, gone with
the last one or with the account (P2, P13, P15, P22)."""

from __future__ import annotations

import pytest

from tests.transfer.conftest import prepare, run
from tidings.accounts import services as accounts
from tidings.audience import bulk, rights
from tidings.audience import services as audience
from tidings.audience.models import ConsentProof, Contact, Subscription
from tidings.transfer import importer, writers
from tidings.transfer.models import ImportJob

CSV = b"email,name\nada@example.org,Ada\ngrace@example.org,Grace\nalan@example.org,Alan\n"


@pytest.fixture(autouse=True, params=["postgres", "orm"])
def writer(request, monkeypatch):  # type: ignore[no-untyped-def]
    if request.param == "orm":
        monkeypatch.setattr(
            importer,
            "writer_for",
            lambda vendor, job, lists, proof: writers.OrmWriter(job, lists, proof),
        )
    return request.param


def _proofs_shown(contact: Contact) -> list[list[str]]:
    [section] = [s for s in rights.contact_data(contact) if s.title == "Proofs of consent"]
    return section.rows


@pytest.mark.promise("P2")
def test_one_proof_per_import_is_in_each_contacts_data(customer, newsletter):
    job = run(prepare(customer, CSV, lists=[newsletter], name="shop.csv"))
    assert job.status == ImportJob.Status.DONE, job.error
    proof = ConsentProof.objects.get()
    assert proof.contact_id is None
    assert Subscription.objects.filter(consent=proof).count() == 3
    for contact in Contact.objects.all():
        [row] = _proofs_shown(contact)
        assert "shop.csv" in row and proof.file_digest in row
        assert "Signed up at our shop's checkout with the newsletter box ticked." in row


@pytest.mark.promise("P13")
def test_the_shared_proof_stays_while_a_contact_relies_on_it_and_goes_with_the_last(
    customer, newsletter
):
    run(prepare(customer, CSV, lists=[newsletter]))
    proof = ConsentProof.objects.get()
    ada, alan, grace = Contact.objects.order_by("email")
    audience.erase_contact(ada)
    audience.erase_contact(grace)
    # Alan's subscription still rests on it: it stays, unchanged, in his data.
    assert ConsentProof.objects.get() == proof
    assert Subscription.objects.get().consent == proof
    assert len(_proofs_shown(alan)) == 1
    audience.erase_contact(alan)
    assert not ConsentProof.objects.exists()


def test_erasing_all_the_contacts_at_once_removes_the_shared_proof(customer, newsletter):
    run(prepare(customer, CSV, lists=[newsletter]))
    bulk.erase(customer.account, Contact.objects.filter(email__startswith="a"))
    assert ConsentProof.objects.count() == 1
    bulk.erase(customer.account, Contact.objects.all())
    assert not ConsentProof.objects.exists()


@pytest.mark.promise("P13")
def test_erasing_the_account_removes_the_shared_proof(
    customer, other_customer, newsletter, mailbox
):
    run(prepare(customer, CSV, lists=[newsletter]))
    other = audience.add_contact(
        other_customer.account, "someone@example.org", proof={"method": "manual"}
    )
    accounts.close_account(customer.account, by=customer, erase_now=True)
    assert list(ConsentProof.objects.all()) == list(ConsentProof.objects.filter(contact=other))


def test_an_import_to_no_list_keeps_a_proof_per_contact(customer):
    job = run(prepare(customer, CSV))
    assert job.status == ImportJob.Status.DONE, job.error
    assert ConsentProof.objects.filter(contact__isnull=False).count() == 3
    assert not ConsentProof.objects.filter(contact__isnull=True).exists()
    for contact in Contact.objects.all():
        assert ConsentProof.objects.get(contact=contact).account == customer.account


def test_an_import_that_subscribes_no_one_leaves_no_proof(customer, newsletter):
    audience.erase_contact(audience.add_contact(customer.account, "ada@example.org"))
    job = run(prepare(customer, b"email\nada@example.org\n", lists=[newsletter]))
    assert job.status == ImportJob.Status.DONE, job.error
    assert job.count("skipped") == 1
    assert not ConsentProof.objects.exists()


def test_each_chunk_reports_the_subscriptions_it_wrote_per_list(customer, newsletter, monkeypatch):
    """What per-list counters are brought up to date from (importer.chunk_written)."""
    seen: list[dict[int, int]] = []
    monkeypatch.setattr(
        importer, "chunk_written", lambda job, result: seen.append(result.subscribed)
    )
    audience.add_contact(customer.account, "ada@example.org", lists=[newsletter])
    audience.add_contact(customer.account, "grace@example.org")
    job = run(prepare(customer, CSV, mode="update", lists=[newsletter]))
    assert job.status == ImportJob.Status.DONE, job.error
    # Ada was on the list already: Grace (updated) and Alan (new) are subscribed now.
    assert seen == [{newsletter.pk: 2}]
