"""An automation's steps with real parts: `celery worker` processes on the suite's Redis
run the scheduler (`run_automations`, beat's task), the chunks of due steps it hands
them (`run_steps`) and send the steps' messages to a real SMTP server (aiosmtpd, in this
process). The first worker is SIGKILLed with one of its processes mid-step (the second
chunk of enrolments locked, its `StepRun` rows written, not committed; the first
chunk's three steps committed) and the other mid-message (the SMTP server holds a
message's answer); a second worker runs two schedulers at once and the engine's
recovery. Then every contact has got each step's
message exactly once at the server, and the rows say the same: one `StepRun` and one
`Delivery` per (step, contact), every enrolment done.

Where the kill falls is made certain, not timed: the scheduler hands the workers CHUNK
enrolments per job (`TIDINGS_AUTOMATIONS_CHUNK`), the first CHUNK contacts entered
before the others (so their enrolments are due first: the first chunk), and a
transaction of the test's own holds uncommitted deliveries of the second step's message
for the other contacts, so the second chunk's insert of that step waits on them (seen
in `pg_stat_activity`); the first chunk's messages are dispatched at its commit (the
test also queues the engine's recovery, as beat would), and the SMTP server keeps the
answer to the 101st message until the kill is over.
"""

from __future__ import annotations

import asyncio
import email
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from tests.automations.conftest import POSTAL_ADDRESS, welcome_series
from tests.conftest import free_port
from tests.sending.workers import Workers, wait_until
from tidings.audience.models import Contact, MailingList, Subscription
from tidings.automations import services
from tidings.automations.models import Automation, Enrolment, Step, StepRun
from tidings.sending import services as sending
from tidings.sending.models import Delivery, Relay

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("customer_relays_on_loopback"),
]

# Two chunks of the scheduler (CHUNK enrolments each, then the rest): the kill falls
# in the second, the first committed (a chunk runs every step due at once: all three).
CONTACTS = 600
CHUNK = 500
STEPS = 3
LEASE = 3  # seconds: a killed worker's claims are recovered quickly
STREAMS = 1
# The SMTP server answers this many messages, then holds the next answer.
HOLD_AFTER = 100
RUN = "tidings.automations.tasks.run_automations"
RECOVER = "tidings.sending.tasks.recover_stalled"


class StepCountingServer:
    """Counts messages per (step, recipient), the step read from the subject; holds the
    answer to every message after the first `hold_after` until `release()`."""

    def __init__(self, hold_after: int) -> None:
        self.count: Counter[tuple[int, str]] = Counter()
        self.hold_after = hold_after
        self.holding = threading.Event()
        self.released = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if sum(self.count.values()) >= self.hold_after:
            self.holding.set()
            while not self.released.is_set():
                await asyncio.sleep(0.02)
        # "Welcome 2, Reader": the step's number.
        subject = email.message_from_bytes(envelope.content)["Subject"]
        step = int(str(subject).split(",")[0].split()[-1])
        for rcpt in envelope.rcpt_tos:
            self.count[(step, rcpt)] += 1
        return "250 OK"

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def account(customer):  # type: ignore[no-untyped-def]
    sending.set_postal_address(customer.account, POSTAL_ADDRESS, by=customer)
    return customer.account


@pytest.fixture
def newsletter(account):  # type: ignore[no-untyped-def]
    return MailingList.objects.create(account=account, name="Newsletter")


@pytest.fixture
def server() -> Iterator[tuple[StepCountingServer, int]]:
    handler, port = StepCountingServer(HOLD_AFTER), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    handler.release()
    controller.stop()


@pytest.fixture
def workers() -> Iterator[Workers]:
    # The suite's own Redis database (emptied here): a fixed one would collide with
    # other runs on the same Redis.
    redis.Redis.from_url(django_settings.REDIS_URL).flushdb()
    pool = Workers(
        django_settings.REDIS_URL,
        lease=LEASE,
        streams=STREAMS,
        # Credits off: two chunks of one account take turns at its balance row (each
        # holds it to its commit), so the second chunk, held mid-step, would hold the
        # first too whenever it took the row first, and the kill would find nothing
        # committed. This test is about a kill; credits have tests/automations/test_credits.py.
        extra={"TIDINGS_AUTOMATIONS_CHUNK": str(CHUNK), "TIDINGS_CREDITS_REQUIRED": "false"},
    )
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def held() -> Iterator[psycopg.Connection]:
    """A connection of the test's own whose transaction stays open until it says."""
    db = connection.settings_dict
    conn = psycopg.connect(
        f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}", autocommit=False
    )
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def running_automation(account, newsletter, customer, port: int) -> Automation:  # type: ignore[no-untyped-def]
    """Three steps, no wait between them (time need not move), CONTACTS subscribers:
    the first CHUNK subscribed (so entered, so due) before the others."""
    Relay.objects.create(
        account=account, name="sink", host="127.0.0.1", port=port, security="none",
        max_connections=10,
    )  # fmt: skip
    automation = welcome_series(account, newsletter, customer, waits=(0,) * STEPS)
    services.start(automation, by=customer)
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        [
            Contact(account=account, email=f"r{i}@example.net", name=f"Reader {i}", basis_at=now)
            for i in range(CONTACTS)
        ]
    )
    later = now + timedelta(milliseconds=1)
    Subscription.objects.bulk_create(
        [
            Subscription(
                contact=c, mailing_list=newsletter, confirmed_at=now if n < CHUNK else later
            )
            for n, c in enumerate(contacts)
        ]
    )
    return automation


def hold_deliveries(conn: psycopg.Connection, campaign_id: int, account_id: int) -> None:
    """Deliveries of `campaign_id` for the contacts of the second chunk (after the first
    CHUNK), inserted and not committed: an insert of the same (campaign, contact) waits
    for this transaction."""
    conn.execute(
        "INSERT INTO sending_delivery (campaign_id, contact_id, status, attempts, message_id,"
        " claimed_by, created_at, last_error)"
        " SELECT %s, id, 'queued', 0, '', '', now(), '' FROM audience_contact"
        " WHERE account_id = %s ORDER BY id OFFSET %s",
        [campaign_id, account_id, CHUNK],
    )


def waiting_inserts() -> list[int]:
    """Backends whose insert of deliveries waits for a lock: a scheduler mid-step."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"sending_delivery\"%%'"
        )
        return [row[0] for row in cursor.fetchall()]


def everything_sent(automation: Automation) -> bool:
    steps = Step.objects.filter(automation=automation)
    return (
        not Enrolment.objects.filter(automation=automation).exclude(status="done").exists()
        and Delivery.objects.filter(campaign__automation_step__in=steps)
        .exclude(status__in=["sent", "unknown"])
        .count()
        == 0
    )


def test_workers_killed_mid_step_send_each_step_once_to_each_contact(
    account, newsletter, customer, server, workers, held
):
    handler, port = server
    automation = running_automation(account, newsletter, customer, port)
    steps = list(Step.objects.filter(automation=automation).order_by("position"))
    hold_deliveries(held, steps[1].campaign_id, account.pk)

    first = workers.start("first")
    workers.client.send_task(RUN)
    # One process of the worker is mid-step in the scheduler (its second chunk locked,
    # its StepRun rows written, its deliveries' insert waiting), the other, once the
    # recovery dispatched the first chunk's messages, mid-message.
    wait_until(lambda: bool(waiting_inserts()), 60)
    workers.client.send_task(RECOVER)
    wait_until(handler.holding.is_set, 60)
    stuck = waiting_inserts()
    assert StepRun.objects.count() == STEPS * CHUNK, "the first chunk's steps are committed"
    received_at_kill = sum(handler.count.values())
    assert received_at_kill == HOLD_AFTER < CHUNK

    workers.kill(first)
    with connection.cursor() as cursor:  # the database notices its client is gone
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", [stuck])
    held.rollback()
    handler.release()  # the message whose answer the killed worker never read arrives
    assert StepRun.objects.count() == STEPS * CHUNK, "the killed scheduler's chunk left nothing"

    workers.start("second")
    # Two schedulers at once (the worker runs two processes), then beat's tasks.
    workers.client.send_task(RUN)
    workers.client.send_task(RUN)

    def tick() -> None:
        workers.client.send_task(RUN)
        workers.client.send_task(RECOVER)

    try:
        wait_until(lambda: everything_sent(automation), 120, every=tick)
    except AssertionError:
        enrolments = Counter(
            Enrolment.objects.filter(automation=automation).values_list("status", "step")
        )
        deliveries = Counter(
            Delivery.objects.filter(campaign__automation_step__automation=automation).values_list(
                "campaign_id", "status"
            )
        )
        raise AssertionError(f"not done: {enrolments} {deliveries} {len(handler.count)}") from None

    # The rows: one StepRun and one Delivery per (step, contact), every enrolment done.
    assert StepRun.objects.filter(step__automation=automation).count() == STEPS * CONTACTS
    deliveries = Delivery.objects.filter(campaign__automation_step__automation=automation)
    assert deliveries.count() == STEPS * CONTACTS
    assert Counter(
        Enrolment.objects.filter(automation=automation).values_list("status", "step")
    ) == {("done", None): CONTACTS}
    # A message its dead worker may have had in flight is "unknown", never retried (at
    # most once: docs/sending.md): one per stream of each killed process at most, all
    # to contacts of the first chunk (the only messages committed before the kill).
    # Every other message is "sent".
    step_of = {s.campaign_id: s.position + 1 for s in steps}
    unknown = {
        (step_of[campaign_id], address)
        for campaign_id, address in deliveries.filter(status="unknown").values_list(
            "campaign_id", "contact__email"
        )
    }
    first_chunk = {f"r{i}@example.net" for i in range(CHUNK)}
    assert 1 <= len(unknown) <= 2 * STREAMS, unknown
    assert {address for _, address in unknown} <= first_chunk, unknown
    assert deliveries.filter(status="sent").count() == STEPS * CONTACTS - len(unknown)

    # At the SMTP server: nobody got a step's message twice; each contact got each
    # step's message once, but for the unknown ones, which arrived once or never.
    twice = {key: n for key, n in handler.count.items() if n > 1}
    assert not twice, f"sent twice: {twice}"
    everyone = {(n, f"r{i}@example.net") for n in range(1, STEPS + 1) for i in range(CONTACTS)}
    assert everyone - unknown <= set(handler.count) <= everyone
