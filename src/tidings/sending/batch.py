"""One batch of a campaign: an id range of its deliveries, sent by a few streams at once.

A stream is one connection to the relay (holding one of its connection slots) and one
to the database, in a thread of the worker process. It repeats, until the range is
empty, the campaign stops or half the lease has passed:

1. claim a chunk of queued deliveries with one statement that also reads their contacts
   and asks the mailability rule (`audience.mailability.sql`, marketing) and whether the
   campaign is still sending; the claim is committed before any SMTP traffic;
2. mark the contacts who may no longer be mailed skipped, in one statement;
3. make their messages in one call to the worker's render process (campaigns.renderpool,
   within the rendering limits), then send them one by one, each outcome recorded by one
   statement before the next message starts; when more than CHECK_SECONDS passed since
   the chunk was checked, the rest of it is checked again first (a contact who
   unsubscribes mid-campaign is skipped within a second, a pause stops the stream
   within a second);
4. when the relay's rate says wait, give back what was not attempted and come back with
   the countdown; the worker never sleeps.

The relay refusing the login or the sender, or refusing CONSECUTIVE_REFUSALS messages in
a row after DATA, pauses the campaign with the reason (the customer mends the relay and
resumes); so does a message that exceeds the rendering limits (the customer mends the
template); the delivery that met it goes back to the queue, not to "failed".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections, transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import Account
from tidings.audience import mailability
from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign
from tidings.campaigns.sandbox import TemplateError
from tidings.core.mail import Purpose
from tidings.sending import bounces, limits
from tidings.sending.ledger import backoff_seconds, claim_token
from tidings.sending.mailer import CampaignMailer, Recipient
from tidings.sending.models import Delivery
from tidings.sending.senders import sender_for
from tidings.sending.transport import (
    Ambiguous,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    transport_for,
)

log = logging.getLogger(__name__)

S = Campaign.Status
D = Delivery.Status

# Deliveries claimed per statement. The size does not widen the ambiguity after a crash
# (outcomes are recorded per message), but a chunk must be sent well within half the
# lease.
CHUNK = 50
# The mailability of a chunk's contacts and the campaign's status are read again when
# they are older than this.
CHECK_SECONDS = 1.0
# Refusals after DATA in a row that pause the campaign (listmonk's MaxSendErrors).
CONSECUTIVE_REFUSALS = 10


@dataclass
class BatchResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retry: int = 0
    unknown: int = 0
    retry_at: datetime | None = None
    released: int = 0
    streams: int = 0
    stopped: str = ""
    paused: str = ""
    # Why: the relay refused the campaign, or a message exceeded the rendering limits.
    paused_by_template: bool = False
    # Refusals after DATA in a row, across the batch's streams.
    refusals: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def retry_after(self, when: datetime) -> None:
        with self.lock:
            self.retry_at = when if self.retry_at is None else min(self.retry_at, when)


class Paused(Exception):
    """The relay refuses the campaign itself: it is paused, the reason given."""


# --- the claim -------------------------------------------------------------------------------


def _campaign_open_sql() -> str:
    return (
        f"EXISTS (SELECT 1 FROM {Campaign._meta.db_table} m "  # noqa: S608
        f"JOIN {Account._meta.db_table} a ON a.id = m.account_id WHERE m.id = %s "
        "AND m.status = %s AND a.status = %s AND a.restricted_at IS NULL)"
    )


class Claims:
    """The statements of one campaign's streams, made once per batch."""

    def __init__(
        self, campaign: Campaign, lists: mailability.Lists, relay_id: int | None = None
    ) -> None:
        self.campaign, self.lists, self.relay_id = campaign, lists, relay_id
        self._local = threading.local()
        self.rule, self.rule_params = mailability.sql(Purpose.MARKETING, lists)
        self.open_params: list[Any] = [campaign.pk, S.SENDING, Account.Status.ACTIVE]
        domain = sender_for(campaign.account_id, from_email=campaign.from_email).domain
        self.message_id = (f"<{campaign.uuid.hex}.", f"@{domain}>")
        table, contacts = Delivery._meta.db_table, Contact._meta.db_table
        self.claim_sql = (
            f"WITH claimed AS (UPDATE {table} SET status = %s, claimed_by = %s, "  # noqa: S608
            "claimed_at = %s, attempts = attempts + 1, message_id = %s || id || %s, "
            "relay_id = %s "
            f"WHERE id IN (SELECT id FROM {table} WHERE campaign_id = %s "
            "AND id BETWEEN %s AND %s AND status = %s "
            "AND (not_before IS NULL OR not_before <= %s) "
            f"AND {_campaign_open_sql()} "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING id, contact_id, message_id, attempts) "
            "SELECT claimed.id, claimed.message_id, claimed.attempts, c.email, c.name, "
            f"c.attributes, c.uuid, c.allow_tracking, {self.rule} "
            f"FROM claimed JOIN {contacts} c ON c.id = claimed.contact_id ORDER BY claimed.id"
        )
        self.check_sql = (
            f"SELECT d.id, {self.rule} AND {_campaign_open_sql()} "  # noqa: S608
            f"FROM {table} d JOIN {contacts} c ON c.id = d.contact_id WHERE d.id IN "
        )
        # The mark of one message touches one column no index holds (PostgreSQL updates
        # the row in place, "HOT"); the chunk's marks become status "sent" in one
        # statement (`settle`). On PostgreSQL it commits without waiting for the disk.
        update = (
            f"UPDATE {table} SET sent_at = %s "  # noqa: S608
            "WHERE id = %s AND claimed_by = %s AND status = %s"
        )
        self.mark_sql = update
        self.mark_async_sql = (
            f"WITH done AS ({update} RETURNING id) "
            "SELECT set_config('synchronous_commit', 'off', true)"
        )

    def claim(
        self, lo: int, hi: int, token: str, *, limit: int = CHUNK
    ) -> list[tuple[Recipient, bool, int]]:
        """Up to `limit` queued deliveries of the range, claimed and committed: each with
        whether its contact may be mailed now and its attempts."""
        if connection.vendor != "postgresql":
            return self._claim_portable(lo, hi, token, limit)
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                self.claim_sql,
                [D.SENDING, token, now, *self.message_id, self.relay_id, self.campaign.pk, lo,
                 hi, D.QUEUED, now, *self.open_params, limit, *self.rule_params],
            )  # fmt: skip
            rows = cursor.fetchall()
        return [_recipient(row) for row in rows]

    def _claim_portable(
        self, lo: int, hi: int, token: str, limit: int
    ) -> list[tuple[Recipient, bool, int]]:
        """The same claim in several statements, for SQLite (one writer at a time)."""
        now = timezone.now()
        prefix, suffix = self.message_id
        with transaction.atomic():
            if not Campaign.objects.filter(
                pk=self.campaign.pk, status=S.SENDING, account__status=Account.Status.ACTIVE,
                account__restricted_at__isnull=True,
            ).exists():  # fmt: skip
                return []
            ids = list(
                Delivery.objects.filter(
                    Q(not_before__isnull=True) | Q(not_before__lte=now),
                    campaign=self.campaign,
                    pk__gte=lo,
                    pk__lte=hi,
                    status=D.QUEUED,
                )
                .order_by("pk")
                .values_list("pk", flat=True)[:limit]
            )
            for pk in ids:
                Delivery.objects.filter(pk=pk, status=D.QUEUED).update(
                    status=D.SENDING,
                    claimed_by=token,
                    claimed_at=now,
                    attempts=F("attempts") + 1,
                    message_id=f"{prefix}{pk}{suffix}",
                    relay_id=self.relay_id,
                )
        rows = list(
            Delivery.objects.filter(pk__in=ids, claimed_by=token, status=D.SENDING)
            .order_by("pk")
            .values_list(
                "pk", "message_id", "attempts", "contact__email", "contact__name",
                "contact__attributes", "contact__uuid", "contact__allow_tracking", "contact_id",
            )
        )  # fmt: skip
        mailable = mailability.mailable_ids(
            Purpose.MARKETING, [row[-1] for row in rows], self.lists
        )
        return [_recipient((*row[:-1], row[-1] in mailable)) for row in rows]

    def still(self, ids: list[int]) -> set[int]:
        """Which of these claimed deliveries may still be sent (contact mailable and
        campaign sending), read now."""
        if not ids:
            return set()
        marks = "(" + ", ".join(["%s"] * len(ids)) + ")"
        with connection.cursor() as cursor:
            cursor.execute(self.check_sql + marks, [*self.rule_params, *self.open_params, *ids])
            return {pk for pk, ok in cursor.fetchall() if ok}

    def mark_sent(self, delivery_id: int, token: str) -> None:
        """The server took this message: on record before the next one starts."""
        params: list[Any] = [timezone.now(), delivery_id, token, D.SENDING]
        local = self._local
        db = getattr(local, "db", None)
        if db is None:
            db = local.db = connections[DEFAULT_DB_ALIAS]  # this thread's, looked up once
        if db.vendor != "postgresql" or db.in_atomic_block:
            with db.cursor() as cursor:
                cursor.execute(self.mark_sql, params)
            return
        # One statement per message, committed without waiting for the disk
        # (`set_config(..., true)` in the statement: PostgreSQL reads the setting at
        # commit, so the session's claims stay synchronous). A dead worker cannot lose a
        # mark, the database has it; after a crash of the database itself, recovery
        # treats every unmarked row of a claim older than the restart as ambiguous
        # (ledger). Straight to a psycopg cursor this thread keeps: half the CPU of
        # Django's wrapper.
        cursor = getattr(local, "cursor", None)
        if cursor is None or cursor.closed or cursor.connection.closed:
            db.ensure_connection()
            cursor = local.cursor = db.connection.cursor()
        cursor.execute(self.mark_async_sql, params)

    def settle(self, token: str) -> int:
        """The claim's marked messages become "sent", in one statement."""
        return Delivery.objects.filter(
            claimed_by=token, status=D.SENDING, sent_at__isnull=False
        ).update(status=D.SENT, last_error="")


def _recipient(row: tuple[Any, ...]) -> tuple[Recipient, bool, int]:
    pk, message_id, attempts, email, name, attributes, uuid, allow_tracking, mailable = row
    if isinstance(attributes, str):  # SQLite gives JSON as text
        attributes = json.loads(attributes)
    recipient = Recipient(
        delivery_id=pk,
        message_id=message_id,
        email=email,
        name=name,
        attributes=attributes or {},
        uuid=uuid.hex if hasattr(uuid, "hex") else str(uuid).replace("-", ""),
        allow_tracking=bool(allow_tracking),
    )
    return recipient, bool(mailable), attempts


def lists_of(campaign: Campaign) -> mailability.Lists:
    """A campaign to segments goes to contacts confirmed on any list; one to lists, to
    those confirmed on one of its lists."""
    if campaign.segments.exists():
        return mailability.ANY_LIST
    return list(campaign.lists.values_list("pk", flat=True))


def _mark(delivery_id: int, token: str, **values: Any) -> None:
    Delivery.objects.filter(pk=delivery_id, claimed_by=token, status=D.SENDING).update(**values)


def release(ids: list[int], token: str) -> int:
    """Give back claimed deliveries this worker did not attempt."""
    mine = Delivery.objects.filter(pk__in=list(ids), claimed_by=token, status=D.SENDING)
    return mine.filter(sent_at__isnull=True).update(
        status=D.QUEUED,
        claimed_by="",
        claimed_at=None,
        attempts=Case(
            When(attempts__gt=0, then=F("attempts") - 1),
            default=Value(0),
            output_field=IntegerField(),
        ),
    )


# --- the batch -------------------------------------------------------------------------------


def send_batch(
    campaign_id: int,
    lo: int,
    hi: int,
    *,
    pause: Callable[[Campaign, str], None],
    pause_for_template: Callable[[Campaign, str], None] | None = None,
) -> BatchResult:
    """Send the queued deliveries of one id range, at most once each. `pause` is how
    the campaign is paused when the relay refuses it (lifecycle.pause_for_relay),
    `pause_for_template` when a message exceeds the rendering limits
    (lifecycle.pause_for_template; `pause` when not given)."""
    result = BatchResult()
    campaign = Campaign.objects.select_related("account").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != S.SENDING:
        result.stopped = "campaign not sending"
        return result
    mailer = CampaignMailer(campaign)
    relay = mailer.relay
    claims = Claims(campaign, lists_of(campaign), relay.id if relay is not None else None)
    streams = (
        1 if relay is None else max(1, min(settings.SENDING["streams"], relay.max_connections))
    )
    run = _Stream(mailer, claims, lo, hi, result).run
    if streams == 1:
        run(own_thread=False)
    else:
        futures = [_pool(streams).submit(run, own_thread=True) for _ in range(streams)]
        for future in futures:
            future.result()
    if not result.streams and not result.paused:
        # Every connection slot of the relay is taken: come back a little later.
        result.stopped = "no free connection to the relay"
        result.retry_after(timezone.now() + timedelta(seconds=5))
    if result.paused:
        if result.paused_by_template and pause_for_template is not None:
            pause_for_template(campaign, result.paused)
        else:
            pause(campaign, result.paused)
    return result


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(size: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if size not in _pools:
            _pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="stream")
        return _pools[size]


class _Stream:
    def __init__(
        self, mailer: CampaignMailer, claims: Claims, lo: int, hi: int, result: BatchResult
    ) -> None:
        self.mailer, self.claims, self.lo, self.hi, self.result = mailer, claims, lo, hi, result
        self.lease = settings.SENDING["lease_seconds"]

    def run(self, *, own_thread: bool) -> None:
        if own_thread:
            close_old_connections()
        try:
            self._run()
        except Exception:
            log.exception("a sending stream of campaign %s failed", self.claims.campaign.pk)
            raise
        finally:
            if own_thread:
                connection.close()

    def _run(self) -> None:
        relay, result = self.mailer.relay, self.result
        token = claim_token()
        if relay is not None and not limits.take_slot(relay, token, hold_seconds=self.lease):
            return
        result.add(streams=1)
        transport = transport_for(relay)
        deadline = time.monotonic() + self.lease / 2
        try:
            while not result.paused:
                chunk = self.claims.claim(self.lo, self.hi, token)
                if not chunk:
                    break
                go_on = self._chunk(chunk, token, transport, deadline)
                self.claims.settle(token)
                if not go_on:
                    break
        finally:
            self.claims.settle(token)
            transport.close()
            if relay is not None:
                limits.give_back_slot(relay, token)

    def _chunk(
        self,
        chunk: list[tuple[Recipient, bool, int]],
        token: str,
        transport: Transport,
        deadline: float,
    ) -> bool:
        """Send a claimed chunk in id order; False when the stream must stop."""
        result, relay = self.result, self.mailer.relay
        skipped = [r.delivery_id for r, mailable, _ in chunk if not mailable]
        if skipped:
            Delivery.objects.filter(pk__in=skipped, claimed_by=token, status=D.SENDING).update(
                status=D.SKIPPED, last_error="no longer mailable"
            )
            result.add(skipped=len(skipped))
        todo = [(r, attempts) for r, mailable, attempts in chunk if mailable]
        # The chunk's messages are made in one call to a render process, within the
        # rendering limits (campaigns.renderpool); the worker only waits for them.
        made = self.mailer.wire_many([r for r, _ in todo])
        checked = time.monotonic()
        for position, (recipient, attempts) in enumerate(todo):
            rest = [r.delivery_id for r, _ in todo[position:]]
            if time.monotonic() - checked > CHECK_SECONDS:
                still = self.claims.still(rest)
                checked = time.monotonic()
                if recipient.delivery_id not in still:
                    if not self._campaign_open():
                        result.add(released=release(rest, token))
                        return False
                    _mark(
                        recipient.delivery_id,
                        token,
                        status=D.SKIPPED,
                        last_error="no longer mailable",
                    )
                    result.add(skipped=1)
                    continue
            if time.monotonic() > deadline or result.paused:
                result.add(released=release(rest, token))
                return False
            if relay is not None:
                wait_ms = limits.reserve(relay)
                if wait_ms:
                    result.add(released=release(rest, token))
                    result.retry_after(timezone.now() + timedelta(milliseconds=wait_ms))
                    return False
            if not self._send(recipient, attempts, token, transport, made[position]):
                result.add(released=release(rest[1:], token))
                return False
        return True

    def _campaign_open(self) -> bool:
        c = self.claims.campaign
        return Campaign.objects.filter(
            pk=c.pk, status=S.SENDING, account__status=Account.Status.ACTIVE,
            account__restricted_at__isnull=True,
        ).exists()  # fmt: skip

    def _send(
        self,
        recipient: Recipient,
        attempts: int,
        token: str,
        transport: Transport,
        data: bytes | Exception | None,
    ) -> bool:
        """One message (`data`: its bytes, or what stopped them being made) to its
        outcome; False when the campaign must pause."""
        result, mailer = self.result, self.mailer
        delivery_id = recipient.delivery_id
        if isinstance(data, TemplateError) and data.limit:
            # The customer's template, not this contact: pause with the reason rather
            # than fail every recipient, or hold the worker for each of them.
            release([delivery_id], token)
            with result.lock:
                result.paused_by_template = True
                result.paused = _(
                    "A message of this campaign exceeds the rendering limits (for %(email)s): "
                    "%(error)s. Change the template, then resume the campaign."
                ) % {"email": recipient.email, "error": data}
            return False
        if not isinstance(data, bytes):
            error = data or RuntimeError("the message was not made")
            _mark(delivery_id, token, status=D.FAILED, last_error=str(error)[:500])
            result.add(failed=1)
            return True
        try:
            transport.send(mailer.sender, recipient.email, data, stuffed=True)
        except TemporaryFailure as error:
            self._temporary(delivery_id, attempts, token, str(error))
        except PermanentFailure as error:
            return self._refused(recipient, token, error)
        except Ambiguous as error:
            _mark(delivery_id, token, status=D.UNKNOWN, last_error=str(error)[:500])
            result.add(unknown=1)
        else:
            self.claims.mark_sent(delivery_id, token)
            with result.lock:
                result.sent += 1
                result.refusals = 0
        return True

    def _refused(self, recipient: Recipient, token: str, error: PermanentFailure) -> bool:
        result, delivery_id = self.result, recipient.delivery_id
        if error.stage in ("relay", "auth", "mail"):
            release([delivery_id], token)
            with result.lock:
                result.paused = f"The relay refused the campaign: {error}"
            return False
        _mark(delivery_id, token, status=D.FAILED, last_error=str(error)[:500])
        result.add(failed=1)
        if error.stage == "address":
            return True  # this relay cannot carry the address; nobody is blamed
        if error.stage == "rcpt" or _about_the_address(error):
            contact = Contact.objects.filter(
                pk=Delivery.objects.filter(pk=delivery_id).values("contact_id")[:1]
            ).first()
            if contact is not None:
                bounces.hard_bounce(
                    contact, campaign=self.claims.campaign, source="smtp", detail=str(error)
                )
            return True
        # The message itself refused after DATA (policy, content): not the contact's fault.
        with result.lock:
            result.refusals += 1
            if result.refusals >= CONSECUTIVE_REFUSALS:
                result.paused = (
                    f"The relay refused {result.refusals} messages in a row; the last said: {error}"
                )
                return False
        return True

    def _temporary(self, delivery_id: int, attempts: int, token: str, error: str) -> None:
        # `attempts` already counts this attempt (the claim added it).
        if attempts >= settings.SENDING["max_attempts"]:
            _mark(delivery_id, token, status=D.FAILED, last_error=error[:500])
            self.result.add(failed=1)
            return
        when = timezone.now() + timedelta(seconds=backoff_seconds(attempts))
        _mark(
            delivery_id,
            token,
            status=D.QUEUED,
            not_before=when,
            claimed_by="",
            dispatched_at=timezone.now(),
            last_error=error[:500],
        )
        self.result.add(retry=1)
        self.result.retry_after(when)


def _about_the_address(error: PermanentFailure) -> bool:
    """A refusal after DATA whose enhanced status code (RFC 3463) is about the mailbox
    (5.1.x address, 5.2.x mailbox) is the recipient's hard bounce; others (5.7 policy,
    5.6 content, 5.3 system, none) are about the message."""
    text = str(error)
    return " 5.1." in text or " 5.2." in text
