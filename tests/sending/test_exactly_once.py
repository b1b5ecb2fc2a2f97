"""Exactly once, with real parts: `celery worker` processes on a Redis broker send a
campaign of a few thousand contacts to a real SMTP server (aiosmtpd, in this process).
A worker is SIGKILLed mid-campaign, or the broker's Redis is killed and restarted; then
the messages are counted per recipient at the SMTP server: nobody twice, everyone but
the documented ambiguous deliveries (at most one per stream of a killed worker process)
once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from tests.conftest import free_port
from tests.factories import campaign_status
from tests.sending.workers import (
    PrivatePostgres,
    PrivateRedis,
    Workers,
    attempt,
    cut_every_other_connection,
    wait_until,
)
from tidings.audience.models import Contact, MailingList, Subscription
from tidings.campaigns.models import Campaign
from tidings.sending import engine, ledger, recipients
from tidings.sending.models import Delivery, Relay

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("customer_relays_on_loopback"),
]

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS = 3000
LEASE = 6  # seconds: short, so the test sees recovery quickly
# Connections each batch opens to the relay, each with its own claims: a killed worker
# process may leave one ambiguous delivery per stream of the batch it was running.
STREAMS = 4


class CountingServer:
    """Counts messages per recipient; a little slow, so a campaign lasts a while."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.002)
        self.count.update(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def counting_smtp() -> Iterator[tuple[CountingServer, int]]:
    handler, port = CountingServer(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def big_campaign(account, port: int) -> Campaign:  # type: ignore[no-untyped-def]

    newsletter = MailingList.objects.create(account=account, name="Everyone")
    now = timezone.now()
    Contact.objects.bulk_create(
        [
            Contact(account=account, email=f"r{i}@example.net", name=f"Reader {i}", basis_at=now)
            for i in range(RECIPIENTS)
        ],
        batch_size=1000,
    )
    Subscription.objects.bulk_create(
        [
            Subscription(contact=c, mailing_list=newsletter, confirmed_at=now)
            for c in Contact.objects.filter(account=account)
        ],
        batch_size=1000,
    )
    Relay.objects.create(
        account=account,
        name="sink",
        host="127.0.0.1",
        port=port,
        security="none",
        max_connections=10,
    )
    campaign = Campaign.objects.create(
        account=account,
        name="Big",
        subject="Hello {{ contact.first_name }}",
        from_email="news@news.example.org",
        body="<p>Dear {{ contact.name }}</p>",
    )
    campaign.lists.add(newsletter)
    # Started as start_campaign does, without queueing the dispatch in this (eager) process.
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=timezone.now())
    assert recipients.materialise(campaign) == RECIPIENTS
    return campaign


def finished(campaign: Campaign) -> bool:
    return Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT


def assert_exactly_once(campaign: Campaign, counts: Counter[str], *, killed_processes: int) -> None:
    statuses = Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert set(statuses) <= {"sent", "unknown"}, statuses
    twice = {rcpt: n for rcpt, n in counts.items() if n > 1}
    assert not twice, f"sent twice: {twice}"
    sent = set(
        Delivery.objects.filter(campaign=campaign, status="sent").values_list(
            "contact__email", flat=True
        )
    )
    unknown = set(
        Delivery.objects.filter(campaign=campaign, status="unknown").values_list(
            "contact__email", flat=True
        )
    )
    assert sent <= set(counts), "marked sent but never received"
    assert set(counts) <= sent | unknown
    assert len(unknown) <= killed_processes * STREAMS
    assert len(counts) >= RECIPIENTS - len(unknown)


def test_a_worker_killed_mid_campaign_sends_nobody_twice(account, counting_smtp, settings):
    settings.SENDING = {**settings.SENDING, "lease_seconds": LEASE}
    server, port = counting_smtp
    campaign = big_campaign(account, port)
    # The suite's own Redis database (REDIS_URL, emptied when the session starts): a
    # fixed one would collide with other runs on the same Redis.
    workers = Workers(django_settings.REDIS_URL, lease=LEASE, streams=STREAMS)
    redis_client = __import__("redis").Redis.from_url(workers.broker)
    redis_client.flushdb()
    try:
        first = workers.start("first")
        workers.send("dispatch_campaign", campaign.pk)
        wait_until(lambda: sum(server.count.values()) >= RECIPIENTS // 4, 120)
        workers.kill(first)
        in_flight = Delivery.objects.filter(campaign=campaign, status="sending").count()
        received_at_kill = sum(server.count.values())
        assert received_at_kill < RECIPIENTS, "the campaign finished before the kill"
        workers.start("second")
        # Beat's sweep, every minute in production: here every two seconds.
        wait_until(lambda: finished(campaign), 240, every=lambda: workers.send("recover_stalled"))
        assert_exactly_once(campaign, server.count, killed_processes=2)
        assert in_flight <= 2 * STREAMS * engine.CHUNK

        # The broker delivers a batch again: nothing is sent twice.
        ids = list(
            Delivery.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)
        )
        before = sum(server.count.values())
        Campaign.objects.filter(pk=campaign.pk).update(**campaign_status("sending"))
        workers.send("send_batch", campaign.pk, ids[0], ids[-1])
        workers.send("send_batch", campaign.pk, ids[0], ids[-1])
        wait_until(lambda: finished(campaign), 60, every=lambda: workers.send("recover_stalled"))
        time.sleep(1)
        assert sum(server.count.values()) == before
        assert_exactly_once(campaign, server.count, killed_processes=2)
    finally:
        workers.stop_all()


def test_a_broker_restart_mid_campaign_loses_and_duplicates_nothing(
    account, counting_smtp, settings
):
    settings.SENDING = {**settings.SENDING, "lease_seconds": LEASE}
    server, port = counting_smtp
    campaign = big_campaign(account, port)
    broker = PrivateRedis()
    workers = Workers(broker.url, lease=LEASE, streams=STREAMS)
    try:
        workers.start("only")
        workers.send("dispatch_campaign", campaign.pk)
        wait_until(lambda: sum(server.count.values()) >= RECIPIENTS // 4, 120)
        broker.restart()  # SIGKILL, no persistence: every queued batch task is gone with it
        wait_until(
            lambda: finished(campaign), 240, every=lambda: attempt(workers.send, "recover_stalled")
        )
        assert_exactly_once(campaign, server.count, killed_processes=0)
        assert len(server.count) == RECIPIENTS
    finally:
        workers.stop_all()
        broker.stop()


@pytest.mark.postgres
def test_database_connections_cut_mid_campaign_lose_and_duplicate_nothing(
    account, counting_smtp, settings
):
    settings.SENDING = {**settings.SENDING, "lease_seconds": LEASE}
    server, port = counting_smtp
    campaign = big_campaign(account, port)
    workers = Workers(django_settings.REDIS_URL, lease=LEASE, streams=STREAMS)
    __import__("redis").Redis.from_url(workers.broker).flushdb()
    try:
        workers.start("only")
        workers.send("dispatch_campaign", campaign.pk)
        wait_until(lambda: sum(server.count.values()) >= RECIPIENTS // 4, 120)
        assert cut_every_other_connection() > 0
        wait_until(lambda: sum(server.count.values()) >= RECIPIENTS // 2, 120)
        assert cut_every_other_connection() > 0
        assert not finished(campaign), "the campaign finished before the cuts"
        wait_until(lambda: finished(campaign), 240, every=lambda: workers.send("recover_stalled"))
        # A cut between the relay's answer and the commit that records it leaves that
        # message unknown: at most one per stream of each worker process, per cut.
        assert_exactly_once(campaign, server.count, killed_processes=2 * 2)
    finally:
        workers.stop_all()


@pytest.mark.postgres
def test_a_postgresql_crash_mid_campaign_loses_and_duplicates_nothing(
    account, counting_smtp, settings
):
    """The workers' PostgreSQL (a private server holding a copy of the test's data) is
    stopped as a crash would stop it, mid-campaign, and started again."""
    settings.SENDING = {**settings.SENDING, "lease_seconds": LEASE}
    server, port = counting_smtp
    campaign = big_campaign(account, port)
    database = PrivatePostgres(connection.settings_dict)
    broker = PrivateRedis()
    workers = Workers(
        broker.url, lease=LEASE, streams=STREAMS, extra={"DATABASE_URL": database.url}
    )

    def status() -> str:
        return str(
            database.query("SELECT status FROM campaigns_campaign WHERE id = %s", campaign.pk)[0][0]
        )

    try:
        workers.start("only")
        workers.send("dispatch_campaign", campaign.pk)
        wait_until(lambda: sum(server.count.values()) >= RECIPIENTS // 4, 120)
        database.crash_and_restart()
        assert status() != "sent", "the campaign finished before the crash"
        wait_until(lambda: status() == "sent", 240, every=lambda: workers.send("recover_stalled"))
        last_errors = Counter(
            str(e)[:80]
            for (e,) in database.query(
                "SELECT last_error FROM sending_delivery "
                "WHERE status = 'unknown' AND campaign_id = %s",
                campaign.pk,
            )
        )
        rows = database.query(
            "SELECT c.email, d.status FROM sending_delivery d "
            "JOIN audience_contact c ON c.id = d.contact_id WHERE d.campaign_id = %s",
            campaign.pk,
        )
    finally:
        workers.stop_all()
        broker.stop()
        database.remove()
    statuses = Counter(str(s) for _, s in rows)
    assert set(statuses) <= {"sent", "unknown"}, statuses
    twice = {rcpt: n for rcpt, n in server.count.items() if n > 1}
    assert not twice, f"sent twice: {twice}"
    sent = {str(e) for e, s in rows if s == "sent"}
    unknown = {str(e) for e, s in rows if s == "unknown"}
    assert sent <= set(server.count), "marked sent but never received"
    assert set(server.count) <= sent | unknown
    # "Sent" marks do not wait for the disk (docs/sending.md): after a crash of the
    # database every claim older than its restart is ambiguous as a whole, listed as
    # unknown for the customer to decide, never resent: at most one claim per stream of
    # each worker process.
    assert set(last_errors) <= {ledger.LOST_IN_FLIGHT[:80]}, last_errors
    assert len(unknown) <= 2 * STREAMS * engine.CHUNK
    assert len(sent) + len(unknown) == RECIPIENTS
