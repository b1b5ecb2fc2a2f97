"""A killed erasure finishes when run again, leaving no trace and the right counts (P13,
P17); erased contacts leave only a keyed hash and anonymous campaign counts."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import UserFactory, populate_account
from tests.privacy.test_closing_and_erasure import _search_whole_database
from tidings.accounts import services as accounts
from tidings.accounts.models import Account, User
from tidings.audience import bulk
from tidings.audience import services as audience
from tidings.audience.models import (
    ConsentProof,
    Contact,
    MailingList,
    Subscription,
    SuppressedContact,
)
from tidings.campaigns.models import Campaign
from tidings.privacy import services as privacy
from tidings.privacy.models import ErasureRecord
from tidings.privacy.tasks import erase_due_accounts
from tidings.sending import tracking
from tidings.sending.models import Delivery, TrackingEvent

CONTACTS = 40
ROOT = Path(__file__).resolve().parents[2]


def _big_account(customer: User) -> dict[str, int]:
    """A populated account with CONTACTS contacts, each sent a campaign and one opened
    it; the numbers of rows the erasure must report."""
    account = customer.account
    populate_account(account)
    for _ in range(2):
        UserFactory(account=account)
    news = MailingList.objects.get(account=account)
    campaign = Campaign.objects.get(account=account, name="The account's campaign")
    for i in range(CONTACTS - 1):
        audience.add_contact(
            account, f"reader{i}@example.net", name=f"Reader Number{i}", lists=[news]
        )
    for contact in Contact.objects.filter(account=account):
        delivery = Delivery.objects.create(
            campaign=campaign, contact=contact, status="sent", sent_at=timezone.now()
        )
        TrackingEvent.objects.create(campaign=campaign, delivery=delivery, kind="open", first=True)
    return {
        "deleted audience.Contact": Contact.objects.filter(account=account).count(),
        "deleted sending.Delivery": Delivery.objects.filter(campaign=campaign).count(),
        "deleted sending.TrackingEvent": TrackingEvent.objects.filter(campaign=campaign).count(),
        "deleted audience.Subscription": Subscription.objects.filter(
            contact__account=account
        ).count(),
        "deleted audience.ConsentProof": ConsentProof.objects.filter(
            contact__account=account
        ).count(),
        "deleted accounts.User": User.objects.filter(account=account).count(),
        "deleted accounts.Account": 1,
    }


NEEDLES = ["ada@example.org", "Ada Lovelace", "7946 0018", "carol@example.net",
           "Carol Contact", "203.0.113.7", "reader7@example.net", "Reader Number3"]  # fmt: skip


def _assert_erased_without_trace(account_id: int, expected: dict[str, int]) -> None:
    assert not Account.objects.filter(pk=account_id).exists()
    found = _search_whole_database(NEEDLES, skip_tables={"outbox_outboxmessage"})
    assert not found, found
    record = ErasureRecord.objects.get(account_ref=account_id)
    assert record.finished_at is not None and record.notice_to == ""
    for key, n in expected.items():
        assert record.counts.get(key) == n, (key, record.counts)


def _close(customer: User) -> None:
    accounts.close_account(customer.account, by=customer)
    Account.objects.filter(pk=customer.account_id).update(
        erase_after=timezone.now() - timedelta(days=1)
    )


@pytest.mark.promise("P13", "P17")
def test_an_erasure_killed_mid_batch_finishes_when_run_again(customer, mailbox, monkeypatch):
    expected = _big_account(customer)
    _close(customer)
    monkeypatch.setattr(privacy, "ERASURE_BATCH", 7)
    real_count = privacy._count

    def killed_in_the_second_batch(record, done):  # type: ignore[no-untyped-def]
        real_count(record, done)
        if record.counts.get("deleted audience.Contact", 0) > 7:
            raise KeyboardInterrupt("worker killed")  # the second batch: the first committed

    monkeypatch.setattr(privacy, "_count", killed_in_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        erase_due_accounts()
    monkeypatch.setattr(privacy, "_count", real_count)
    record = ErasureRecord.objects.get(account_ref=customer.account_id)
    assert record.finished_at is None
    # The first batch is gone and counted; the one being deleted rolled back whole.
    assert record.counts["deleted audience.Contact"] == 7
    assert Contact.objects.filter(account_id=customer.account_id).count() == CONTACTS - 7
    assert erase_due_accounts() == 1
    _assert_erased_without_trace(customer.account_id, expected)
    # The notice of erasure went once to each of the account's users (one message each).
    erased = [m.to[0] for m in mailbox if "erased" in m.subject]
    assert len(erased) == len(set(erased)) == len(closed_users(mailbox))


@pytest.mark.promise("P13", "P17")
def test_the_erasure_deletes_with_plain_statements_reading_no_contact(customer, mailbox):
    """A million contacts took 21 minutes when Django's collector loaded each batch's rows
    as model instances to follow their relations: the erasure reads no contact's row
    (nor any big table's), it deletes them by range with plain statements."""
    expected = _big_account(customer)
    _close(customer)
    with CaptureQueriesContext(connection) as queries:
        erase_due_accounts()
    _assert_erased_without_trace(customer.account_id, expected)
    big = ("audience_contact", "audience_subscription", "audience_consentproof",
           "sending_delivery", "sending_trackingevent")  # fmt: skip
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT")
        and any(
            f'"{table}"."email"' in q["sql"] or f'"{table}"."status"' in q["sql"] for table in big
        )
    ]
    assert not reads, reads[:3]


CHILD = """
import signal, sys
import django
django.setup()
from tidings.privacy import services
services.ERASURE_BATCH = 3
real_count = services._count
def count_then_wait_mid_batch(record, done):
    real_count(record, done)
    if record.counts.get("deleted audience.Contact", 0) > 6:
        # Two batches of contacts committed, the third deleted but not: say so, and
        # wait for the parent's SIGKILL here, mid-way.
        print("mid-batch", flush=True)
        signal.pause()
services._count = count_then_wait_mid_batch
services.erase_account(int(sys.argv[1]))
print("finished")
"""


def _database_url() -> str:
    """This test's database, for a child process (PostgreSQL or SQLite's file)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.slow
@pytest.mark.promise("P13", "P17")
def test_an_erasure_process_killed_with_sigkill_finishes_when_run_again(
    customer, mailbox, transactional_db
):
    # transactional_db: the child process sees only committed rows.
    expected = _big_account(customer)
    _close(customer)
    account_id = customer.account_id
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        # The same secrets (field keys, suppression key) as this process.
        "TIDINGS_DATA_DIR": str(django_settings.DATA_DIR),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(account_id)], env=env, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready and child.stdout.readline() == b"mid-batch\n", (
            "the erasure ended before it could be killed"
        )
        record = ErasureRecord.objects.get(account_ref=account_id)
        assert record.counts.get("deleted audience.Contact", 0) >= 6
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert Account.objects.get(pk=account_id).status == "erasing"
    assert ErasureRecord.objects.get(account_ref=account_id).finished_at is None
    assert Contact.objects.filter(account_id=account_id).exists()

    privacy.erase_account(account_id)
    _assert_erased_without_trace(account_id, expected)
    # The notice of erasure went once to each of the account's users (one message each).
    erased = [m.to[0] for m in mailbox if "erased" in m.subject]
    assert len(erased) == len(set(erased)) == len(closed_users(mailbox))


@pytest.fixture
def sent_campaign(customer):  # type: ignore[no-untyped-def]
    """Three contacts sent a campaign; two opened it, one clicked."""
    account = customer.account
    campaign = Campaign.objects.create(
        account=account, name="Spring", subject="Hello", from_email="news@example.net"
    )
    sent_at = timezone.now() - timedelta(hours=3)
    for i, kinds in enumerate([["open", "click"], ["open"], []]):
        contact = audience.add_contact(account, f"person{i}@example.net", name=f"Person {i}")
        delivery = Delivery.objects.create(
            campaign=campaign, contact=contact, status="sent", sent_at=sent_at
        )
        for kind in kinds:
            TrackingEvent.objects.create(
                campaign=campaign, delivery=delivery, kind=kind, first=True
            )
    return campaign


@pytest.mark.promise("P13", "P17")
def test_campaign_totals_survive_the_erasure_of_contacts_as_anonymous_counts(
    customer, sent_campaign
):
    before = tracking.report(sent_campaign)["summary"]
    assert (before["sent"], before["opened"], before["clicked"]) == (3, 2, 1)
    account = customer.account
    audience.erase_contact(Contact.objects.get(account=account, email="person0@example.net"))
    bulk.erase(account, Contact.objects.filter(account=account, email="person1@example.net"))
    after = tracking.report(sent_campaign)
    assert after["summary"] == before
    assert sum(after["lines"]["sent"]) == 3
    # Only the contact still there has a delivery of their own; the rest are counts.
    assert list(Delivery.objects.values_list("contact__email", flat=True)) == [
        "person2@example.net"
    ]
    assert not TrackingEvent.objects.exists()
    found = _search_whole_database(
        ["person0@example.net", "person1@example.net", "Person 0", "Person 1"],
        skip_tables=set(),
    )
    assert not found, found


@pytest.mark.promise("P13")
@pytest.mark.parametrize("how", ["one", "bulk"])
def test_an_erased_contact_leaves_only_a_keyed_hash_in_the_suppression_list(customer, how):
    account = customer.account
    contact = audience.add_contact(account, "Zed.Erased@example.net", name="Zed Erased")
    if how == "one":
        audience.erase_contact(contact)
    else:
        bulk.erase(account, Contact.objects.filter(pk=contact.pk))
    entry = SuppressedContact.objects.get(account=account)
    assert entry.reason == "erased"
    # A keyed hash (HMAC with the operator's secret), not a plain hash anyone can recompute.
    assert entry.digest == privacy.email_digest("zed.erased@example.net")
    assert entry.digest != hashlib.sha256(b"zed.erased@example.net").hexdigest()
    assert not _search_whole_database(["zed.erased", "Zed Erased"], skip_tables=set())
    with pytest.raises(audience.Suppressed):
        audience.add_contact(account, "zed.erased@EXAMPLE.net")


def closed_users(mailbox) -> set[str]:  # type: ignore[no-untyped-def]
    """The users told that their account was closed: those the erasure notice is for."""
    return {m.to[0] for m in mailbox if "is closed" in m.subject}
