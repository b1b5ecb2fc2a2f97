"""Importing contacts: what is written, what is refused and why, and nothing twice."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from django.db import DatabaseError, connection, transaction

from tests.transfer.conftest import prepare, report_rows, run
from tidings.accounts.models import Account
from tidings.audience import services as audience
from tidings.audience.models import ConsentProof, Contact, Subscription
from tidings.transfer import importer, writers
from tidings.transfer.models import ImportJob


@pytest.fixture(autouse=True, params=["postgres", "orm"])
def writer(request, monkeypatch):  # type: ignore[no-untyped-def]
    """Every test runs with the PostgreSQL fast path and with the ORM path of SQLite."""
    if request.param == "orm":
        monkeypatch.setattr(
            importer,
            "writer_for",
            lambda vendor, job, lists, proof: writers.OrmWriter(job, lists, proof),
        )
    return request.param


CSV = (
    b"Email,Name,City\n"
    b"ada@example.org,Ada Lovelace,London\n"
    b"GRACE@Example.ORG,Grace Hopper,Arlington\n"
    b"not-an-address,Nobody,Nowhere\n"
    b"ada@example.org,Ada Again,Paris\n"
    b",,\n"
    b"j\xc3\xb6rg@b\xc3\xbccher.example,J\xc3\xb6rg,Berlin\n"
)


@pytest.mark.promise("P2")
def test_an_import_writes_contacts_with_the_stated_basis_and_a_proof(customer, newsletter):
    job = run(prepare(customer, CSV, lists=[newsletter]))
    assert job.status == ImportJob.Status.DONE, job.error
    contacts = Contact.objects.filter(account=customer.account).order_by("email")
    assert [c.email for c in contacts] == [
        "ada@example.org",
        "grace@example.org",
        "jörg@xn--bcher-kva.example",
    ]
    ada = contacts[0]
    assert ada.name == "Ada Lovelace"
    assert ada.attributes == {"city": "London"}
    assert ada.source == Contact.Source.IMPORT
    assert ada.legal_basis == Contact.LegalBasis.CONSENT
    assert ada.basis_at is not None and ada.basis_at.date().isoformat() == "2024-03-01"
    assert Subscription.objects.filter(mailing_list=newsletter, status="confirmed").count() == 3
    # One proof for the file, referenced by every subscription the import wrote.
    proof = ConsentProof.objects.get()
    assert proof.contact is None and proof.account == customer.account
    assert proof.method == ConsentProof.Method.IMPORT
    assert "newsletter box ticked" in proof.note
    assert proof.consent_text == job.statement
    assert proof.stated_by == customer and proof.stated_at == job.stamp
    assert proof.source == job.original_name
    assert proof.file_digest == hashlib.sha256(CSV).hexdigest()
    assert set(Subscription.objects.values_list("consent", flat=True)) == {proof.pk}
    assert job.counts == {"added": 3, "updated": 0, "unchanged": 0, "rejected": 1, "duplicates": 1}
    rows = report_rows(job)
    assert [(r[0], r[1][:30]) for r in rows] == [
        ("4", "“not-an-address” is not a vali"),
        ("5", "duplicate of line 2: only the "),
    ]
    assert rows[0][2:] == ["not-an-address", "Nobody", "Nowhere"]


def test_an_import_never_makes_an_unsubscribed_or_erased_contact_active(customer, newsletter):
    left = audience.add_contact(customer.account, "left@example.org")
    audience.unsubscribe(left)
    bounced = audience.add_contact(customer.account, "bounced@example.org")
    audience.set_status(bounced, Contact.Status.BOUNCED)
    erased = audience.add_contact(customer.account, "erased@example.org")
    audience.erase_contact(erased)
    content = b"email\nleft@example.org\nbounced@example.org\nERASED@example.org\nnew@example.org\n"
    job = run(prepare(customer, content, mode="update", lists=[newsletter]))
    assert job.counts["added"] == 1
    assert job.counts["skipped"] == 3
    statuses = dict(Contact.objects.values_list("email", "status"))
    assert statuses == {
        "left@example.org": "unsubscribed",
        "bounced@example.org": "bounced",
        "new@example.org": "active",
    }
    assert not Subscription.objects.exclude(contact__email="new@example.org").exists()
    reasons = {r[0]: r[1] for r in report_rows(job)}
    assert "“unsubscribed”" in reasons["2"]
    assert "“bounced”" in reasons["3"]
    assert "suppression list" in reasons["4"]


def test_add_only_leaves_existing_contacts_alone_and_update_merges(customer):
    audience.add_contact(customer.account, "ada@example.org", name="Ada", attributes={"a": 1})
    content = b"email,name,city\nada@example.org,Ada Lovelace,London\n"
    job = run(prepare(customer, content, mode="add"))
    assert job.counts["unchanged"] == 1
    ada = Contact.objects.get(email="ada@example.org")
    assert (ada.name, ada.attributes) == ("Ada", {"a": 1})
    job = run(prepare(customer, content, mode="update"))
    assert job.counts["updated"] == 1
    ada.refresh_from_db()
    assert (ada.name, ada.attributes) == ("Ada Lovelace", {"a": 1, "city": "London"})
    assert ada.source == Contact.Source.MANUAL  # how it first came stays


def test_the_same_file_twice_adds_nothing_the_second_time(customer, newsletter):
    first = run(prepare(customer, CSV, lists=[newsletter]))
    second = run(prepare(customer, CSV, lists=[newsletter]))
    assert first.counts["added"] == 3
    assert second.counts["added"] == 0
    assert second.counts["unchanged"] == 3
    assert Contact.objects.count() == 3
    assert Subscription.objects.count() == 3


def _big_csv(n: int) -> bytes:
    lines = ["email,name"] + [f"person{i}@example.org,Person {i}" for i in range(n)]
    lines.insert(5, "person1@example.org,Again")  # a duplicate across chunks
    lines.insert(9, "broken@,Broken")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("stop_after", [1, 2, 3])
def test_an_import_killed_mid_way_resumes_without_losing_or_duplicating(
    transactional_db, no_worker, customer, newsletter, monkeypatch, stop_after
):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 4)
    job = prepare(customer, _big_csv(20), lists=[newsletter])
    with pytest.raises(importer.ImportInterrupted):
        run(job, stop_after_chunks=stop_after)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING
    assert job.rows_done == 4 * stop_after
    assert Contact.objects.count() < 20
    job = run(job)
    assert job.status == ImportJob.Status.DONE
    assert Contact.objects.count() == 20
    assert Subscription.objects.count() == 20
    # One proof, made at the first start and found again by the re-run.
    assert ConsentProof.objects.count() == 1
    assert not Subscription.objects.filter(consent__isnull=True).exists()
    assert job.counts == {"added": 20, "updated": 0, "unchanged": 0, "rejected": 1, "duplicates": 1}
    assert [r[0] for r in report_rows(job)] == ["6", "10"]


def test_a_second_worker_cannot_take_a_job_that_is_running(transactional_db, no_worker, customer):
    job = prepare(customer, CSV)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING,
        lease_until=job.created_at.replace(year=job.created_at.year + 1),
    )
    assert importer.run_import(job.pk) is None
    assert not Contact.objects.exists()


@pytest.mark.promise("P21")
def test_closing_the_account_stops_an_import_at_once(
    transactional_db, no_worker, customer, monkeypatch
):

    monkeypatch.setattr(importer, "CHUNK_ROWS", 4)
    job = prepare(customer, _big_csv(20))
    with pytest.raises(importer.ImportInterrupted):
        run(job, stop_after_chunks=1)
    Account.objects.filter(pk=customer.account_id).update(status=Account.Status.CLOSED)
    job = run(job)
    assert job.status == ImportJob.Status.FAILED and "closed" in job.error
    assert Contact.objects.count() == 4


@pytest.mark.postgres  # two writers at once
def test_chunks_written_at_once_end_as_if_written_one_after_the_other(
    transactional_db, no_worker, customer, newsletter, monkeypatch, writer
):
    """PostgreSQL writes two chunks at once on two connections. A row whose address is
    in the chunk just before waits for that chunk's commit, so the first line still wins
    even when the later chunk is written first (forced here by holding the first back)."""
    if writer == "orm":
        pytest.skip("the ORM writer (the embedded default's) writes one chunk after the other")

    audience.add_contact(customer.account, "old@example.org", name="Old")
    audience.unsubscribe(audience.add_contact(customer.account, "gone@example.org"))
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    threads = set()
    write = writers.PostgresWriter.write
    second_chunk_written = threading.Event()

    def held_back(self, rows):  # type: ignore[no-untyped-def]
        threads.add(threading.get_ident())
        if rows and rows[0].seq == 0:
            assert second_chunk_written.wait(timeout=30)
        written = write(self, rows)
        if rows and 3 <= rows[0].seq < 6:
            second_chunk_written.set()
        return written

    monkeypatch.setattr(writers.PostgresWriter, "write", held_back)
    emails = ["a", "b", "old", "a", "old", "c", "gone", "c", "d", "gone", "e", "b"]
    content = "email\n" + "".join(f"{e}@example.org\n" for e in emails)
    job = run(prepare(customer, content.encode(), mode="update", lists=[newsletter]))
    assert job.status == ImportJob.Status.DONE, job.error
    assert len(threads) == 2
    assert job.counts == {
        "added": 5, "updated": 1, "unchanged": 0, "duplicates": 4, "skipped": 2
    }  # fmt: skip
    assert [(r[0], r[1] == writers.EARLIER) for r in report_rows(job)] == [
        ("5", True), ("6", True), ("8", False), ("9", True), ("11", False), ("13", True)
    ]  # fmt: skip
    assert Contact.objects.get(email="old@example.org").updated_at == job.stamp
    assert Contact.objects.get(email="gone@example.org").status == Contact.Status.UNSUBSCRIBED
    assert ConsentProof.objects.filter(method="import").count() == 1
    assert Subscription.objects.filter(mailing_list=newsletter).count() == 6


@pytest.mark.postgres  # two writers at once, a deadlock
def test_a_session_waiting_across_two_chunks_being_written_is_a_deadlock_not_a_hang(
    transactional_db, no_worker, customer, monkeypatch, writer
):
    """The second chunk waits for the first through PostgreSQL (an advisory lock), so
    a third session caught between them is a deadlock PostgreSQL breaks: here it
    changed a contact of the first chunk and waits for one the second chunk updated."""
    if writer == "orm":
        pytest.skip("the ORM writer (the embedded default's) writes one chunk after the other")

    for email in ("first@example.org", "second@example.org"):
        audience.add_contact(customer.account, email)
    monkeypatch.setattr(importer, "CHUNK_ROWS", 2)
    write = writers.PostgresWriter.write
    second_chunk_written, first_changed = threading.Event(), threading.Event()
    other: list[int] = []  # the other session's backend pid

    def waiting_for_a_lock(pid: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
        return row is not None and row[0] == "Lock"

    def held_back(self, rows):  # type: ignore[no-untyped-def]
        if rows and rows[0].seq == 0:
            # The second chunk has updated its contact, the other session has changed
            # the first chunk's and waits for the second's: only then does the first go on.
            assert first_changed.wait(timeout=30)
            deadline = time.monotonic() + 30
            while not waiting_for_a_lock(other[0]):
                assert time.monotonic() < deadline, "the other session never waited"
        written = write(self, rows)
        if rows and rows[0].seq == 2:
            second_chunk_written.set()
        return written

    def other_session() -> None:
        try:
            assert second_chunk_written.wait(timeout=30)
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    other.append(cursor.fetchone()[0])
                Contact.objects.filter(email="first@example.org").update(name="Changed")
                first_changed.set()
                Contact.objects.filter(email="second@example.org").update(name="Changed")
        except DatabaseError as error:
            outcome.append(error)
        finally:
            connection.close()

    monkeypatch.setattr(writers.PostgresWriter, "write", held_back)
    content = b"email\nfirst@example.org\na@example.org\nsecond@example.org\nb@example.org\n"
    job = prepare(customer, content, mode="update")
    outcome: list[Exception] = []
    session = threading.Thread(target=other_session)
    session.start()
    try:
        run(job)
    except DatabaseError as error:
        outcome.append(error)
    session.join(timeout=30)
    assert not session.is_alive()
    assert len(outcome) == 1 and "deadlock" in str(outcome[0])  # one of the three gave way
    job = run(job)
    assert job.status == ImportJob.Status.DONE
    assert job.counts["added"] == 2 and job.counts["updated"] + job.counts["unchanged"] == 2
