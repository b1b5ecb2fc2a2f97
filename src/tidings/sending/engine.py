"""The campaign pipeline: recipients, batches, claims, sending, recovery.

Exactly once, in this order (docs/sending.md):

1. `start_campaign` materialises one queued `Delivery` per recipient with
   INSERT ... SELECT ... ON CONFLICT DO NOTHING (the first batch's at once, the rest in
   `materialise_rest`): starting twice adds nobody twice.
2. `dispatch` queues a batch task per id range of queued deliveries.
3. `send_batch` claims a few deliveries at a time (queued -> sending, with a claim token
   and time) and COMMITS the claim before any SMTP traffic. It then sends them one by
   one in id order, recording each outcome (sent after the server's 250) before the next
   message starts. A re-delivered batch finds nothing queued and does nothing.
4. `recover_stalled` (every minute, from beat) looks at claims older than the lease:
   their worker died. Because a worker records each outcome before starting the next
   message, only the lowest-id delivery still "sending" of a dead claim can have been in
   flight: it becomes "unknown" and is never retried (at most once: a duplicate is worse
   than a miss). The others were never attempted and go back to the queue. Deliveries
   whose batch task was lost (a broker restart) are dispatched again.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from tidings.accounts.models import Account
from tidings.audience.links import preference_url
from tidings.audience.models import Contact, Subscription, SuppressedContact
from tidings.audience.segments import contacts_in
from tidings.audience.services import contact_digest
from tidings.campaigns.models import Campaign
from tidings.campaigns.rendering import TemplateError, check, render
from tidings.sending import bounces, tracking
from tidings.sending.message import Skeleton, dkim_sign, domain_of
from tidings.sending.models import Delivery, Relay, SendingDomain, SendingSettings
from tidings.sending.transport import (
    Ambiguous,
    PermanentFailure,
    SMTPTransport,
    TemporaryFailure,
    Transport,
    give_back_slot,
    take_connection_slot,
    transport_for,
    wait_for_rate,
)

log = logging.getLogger(__name__)

# Deliveries claimed per transaction: one claim commit per CHUNK messages. The size does
# not widen the ambiguity after a crash (outcomes are recorded per message), but a chunk
# must be sent well within half the lease.
CHUNK = 50

S = Campaign.Status
D = Delivery.Status


class SendingError(ValueError):
    """A sending action that cannot be done now; the message says why."""


# Recipients ------------------------------------------------------------------------------


def recipients(campaign: Campaign) -> Any:
    """The contacts `campaign` goes to now: active, with a confirmed subscription to one
    of its lists, or in one of its segments (and confirmed on some list), and not on the
    account's suppression list (checked again before each message)."""
    confirmed = Subscription.objects.filter(
        contact=OuterRef("pk"), status=Subscription.Status.CONFIRMED
    )
    wanted = Q(Exists(confirmed.filter(mailing_list__in=campaign.lists.all())))
    for segment_contacts in _segment_members(campaign):
        wanted |= Q(Exists(confirmed)) & Q(pk__in=segment_contacts)
    return Contact.objects.filter(wanted, account_id=campaign.account_id, status="active")


def _segment_members(campaign: Campaign) -> list[Any]:
    return [contacts_in(segment).values("pk") for segment in campaign.segments.all()]


# Rows changed since the last ANALYZE above which the recipients' tables are analysed
# before a campaign starts.
STALE_STATISTICS = 10_000


def _fresh_statistics() -> None:
    """A list imported a minute ago is not in the planner's statistics yet: it takes the
    new contacts for a handful and joins them with a nested loop over the list's
    subscriptions, quadratic in the list's size (a 100,000-recipient campaign was still
    materialising after 9 minutes). Analysing such a table first takes a sample, well
    under a second."""
    if connection.vendor != "postgresql":
        return
    tables = [Contact._meta.db_table, Subscription._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s) AND n_mod_since_analyze > %s",
            [tables, STALE_STATISTICS],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def materialise(campaign: Campaign, *, after: int = 0, limit: int | None = None) -> int:
    """Insert one queued delivery per recipient (contact ids above `after`; with
    `limit`, only the first so many by id); existing ones are left as they are.
    Without `limit` the campaign's recipients are then all fixed."""
    # For the first batch too: with stale statistics its 500 recipients took minutes at
    # 100,000 (the nested loop described there).
    _fresh_statistics()
    wanted = recipients(campaign).filter(pk__gt=after).order_by()
    if limit is not None:
        wanted = wanted.order_by("pk")[:limit]
    select_sql, params = wanted.values_list("pk").query.sql_with_params()
    table = Delivery._meta.db_table
    # The table name is the model's own; the recipients query is Django's, with params.
    sql = (
        f"INSERT INTO {table} (campaign_id, contact_id, status, attempts, message_id, "  # noqa: S608
        "claimed_by, created_at, last_error) "
        f"SELECT %s, r.id, %s, 0, '', '', %s, '' FROM ({select_sql}) AS r(id) WHERE true "
        "ON CONFLICT (campaign_id, contact_id) DO NOTHING"
    )
    if connection.vendor == "sqlite":  # no column list on a derived table
        sql = sql.replace("AS r(id)", "AS r").replace("r.id", "r.*")
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk, D.QUEUED, now, *params])
        added = cursor.rowcount
    if limit is None:
        Campaign.objects.filter(pk=campaign.pk, recipients_fixed_at__isnull=True).update(
            recipients_fixed_at=now
        )
    return added


# Campaign actions --------------------------------------------------------------------------


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _check_postal_address(campaign: Campaign) -> None:
    settings_ = SendingSettings.objects.filter(account_id=campaign.account_id).first()
    if settings_ is None or not settings_.postal_address.strip():
        raise SendingError(
            "Add your postal address in the sending settings first: every campaign must "
            "show a valid physical postal address (CAN-SPAM). Nothing was sent."
        )


def _check_content(campaign: Campaign) -> None:
    try:
        check(campaign.subject, html=False)
        check(campaign.body)
    except TemplateError as error:
        raise SendingError(f"The campaign's content has an error ({error}).") from None


def start_campaign(campaign: Campaign) -> int:
    """Send now: the campaign starts, its recipients are fixed, batches are queued.
    Returns the number of recipients fixed now: all of them, or the first batch's when
    there are more (the rest follows in `materialise_rest`)."""
    from tidings.sending.tasks import materialise_campaign

    if not campaign.account.is_processing_allowed:
        raise SendingError("This account is closed: nothing is sent.")
    _check_postal_address(campaign)
    _check_content(campaign)
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status not in (S.DRAFT, S.SCHEDULED):
            raise SendingError(f"A {locked.get_status_display()} campaign cannot be started.")
        if not locked.lists.exists() and not locked.segments.exists():
            raise SendingError("Choose at least one list or segment to send to.")
        locked.status = S.SENDING
        locked.started_at = timezone.now()
        # The first batch's recipients now, queued at once; a large audience's rest is
        # written by a task behind that batch (a minute's work at a million), so the
        # first message need not wait for it.
        first = settings.SENDING["batch_size"]
        count = materialise(locked, limit=first)
        if count < first:
            locked.recipients_fixed_at = locked.started_at
        locked.save(update_fields=["status", "started_at", "recipients_fixed_at", "updated_at"])
        dispatch(locked.pk)
        if locked.recipients_fixed_at is None:
            transaction.on_commit(lambda: materialise_campaign.delay(locked.pk))
    campaign.refresh_from_db()
    return count


def materialise_rest(campaign_id: int) -> int:
    """The recipients `start_campaign` left for later (contacts after the first
    batch's), then their dispatch. Idempotent; returns the number added."""
    from tidings.sending.tasks import dispatch_campaign

    with transaction.atomic():
        # Locked: a pause or a cancel waits, so a cancelled campaign gets no new queue.
        campaign = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign_id, recipients_fixed_at__isnull=True)
            .first()
        )
        if campaign is None:
            return 0
        if campaign.status not in (S.SENDING, S.PAUSED):  # cancelled meanwhile
            campaign.recipients_fixed_at = timezone.now()
            campaign.save(update_fields=["recipients_fixed_at", "updated_at"])
            return 0
        last = Delivery.objects.filter(campaign=campaign).aggregate(m=Max("contact_id"))["m"]
        added = materialise(campaign, after=last or 0)
        if campaign.status == S.SENDING:
            transaction.on_commit(lambda: dispatch_campaign.delay(campaign_id))
    return added


def schedule_campaign(campaign: Campaign, when: datetime) -> Campaign:
    """Send at `when` (aware); beat starts it within the minute."""
    if timezone.is_naive(when):
        raise SendingError("Give the time with its time zone.")
    if when <= timezone.now():
        raise SendingError("That time has passed: choose a time in the future, or send now.")
    _check_postal_address(campaign)
    _check_content(campaign)
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status not in (S.DRAFT, S.SCHEDULED):
            raise SendingError(f"A {locked.get_status_display()} campaign cannot be scheduled.")
        locked.status, locked.scheduled_at = S.SCHEDULED, when
        # Kept to show the time again as the customer chose it.
        locked.schedule_timezone = getattr(when.tzinfo, "key", None) or "UTC"
        locked.save(update_fields=["status", "scheduled_at", "schedule_timezone", "updated_at"])
    campaign.refresh_from_db()
    return campaign


def unschedule_campaign(campaign: Campaign) -> Campaign:
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status != S.SCHEDULED:
            raise SendingError("Only a scheduled campaign can be unscheduled.")
        locked.status, locked.scheduled_at = S.DRAFT, None
        locked.save(update_fields=["status", "scheduled_at", "updated_at"])
    campaign.refresh_from_db()
    return campaign


def pause_campaign(campaign: Campaign) -> Campaign:
    """Workers stop after the message they are sending; the rest waits, queued."""
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status != S.SENDING:
            raise SendingError("Only a campaign that is sending can be paused.")
        locked.status = S.PAUSED
        locked.save(update_fields=["status", "updated_at"])
    campaign.refresh_from_db()
    return campaign


def resume_campaign(campaign: Campaign) -> Campaign:
    from tidings.sending.tasks import dispatch_campaign

    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status != S.PAUSED:
            raise SendingError("Only a paused campaign can be resumed.")
        locked.status = S.SENDING
        locked.save(update_fields=["status", "updated_at"])
        Delivery.objects.filter(campaign=locked, status=D.QUEUED).update(dispatched_at=None)
        transaction.on_commit(lambda: dispatch_campaign.delay(locked.pk))
    campaign.refresh_from_db()
    return campaign


def cancel_campaign(campaign: Campaign) -> Campaign:
    """Stop for good: whoever has not been sent to yet gets nothing."""
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status not in (S.SCHEDULED, S.SENDING, S.PAUSED):
            raise SendingError(f"A {locked.get_status_display()} campaign cannot be cancelled.")
        locked.status, locked.finished_at = S.CANCELLED, timezone.now()
        locked.save(update_fields=["status", "finished_at", "updated_at"])
        Delivery.objects.filter(campaign=locked, status=D.QUEUED).update(
            status=D.SKIPPED, last_error="campaign cancelled"
        )
    campaign.refresh_from_db()
    return campaign


def start_due_campaigns(now: datetime | None = None) -> list[int]:
    """Start every scheduled campaign whose time has come (beat, every minute)."""
    now = now or timezone.now()
    started = []
    for campaign in Campaign.objects.filter(status=S.SCHEDULED, scheduled_at__lte=now):
        try:
            start_campaign(campaign)
        except SendingError as error:
            log.warning("scheduled campaign %s not started: %s", campaign.pk, error)
            continue
        started.append(campaign.pk)
    return started


def finish_if_done(campaign_id: int) -> bool:
    """A sending campaign whose recipients are all fixed, with nothing queued or in
    flight, is sent."""
    open_ = Delivery.objects.filter(campaign_id=campaign_id, status__in=[D.QUEUED, D.SENDING])
    if open_.exists():
        return False
    return bool(
        Campaign.objects.filter(
            pk=campaign_id, status=S.SENDING, recipients_fixed_at__isnull=False
        ).update(status=S.SENT, finished_at=timezone.now())
    )


# Dispatch ----------------------------------------------------------------------------------


# Batches one dispatch task queues before it hands the rest of the campaign to a new
# dispatch task, queued behind them: a worker running one task at a time (`--pool
# solo`) sends those first, instead of dispatching a whole campaign before its first
# message.
DISPATCH_STEP = 20


def dispatch(
    campaign_id: int, *, now: datetime | None = None, after: int = 0, limit: int | None = None
) -> int:
    """Queue one batch task per BATCH queued, due deliveries (ids above `after`) that no
    live task carries. With `limit`, stop after that many batches and queue a dispatch
    task for the rest. Returns the number of batches queued.

    One pass over the pending ids in id order (a server-side cursor), each batch marked
    and queued as soon as its range is known: the first message goes out while the rest
    is still being dispatched, and a million recipients cost one scan, not one per
    batch."""
    from tidings.sending.tasks import dispatch_campaign, send_batch

    now = now or timezone.now()
    size = settings.SENDING["batch_size"]
    stale = now - timedelta(seconds=settings.SENDING["lease_seconds"])
    pending = Delivery.objects.filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now),
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale),
        campaign_id=campaign_id,
        status=D.QUEUED,
        pk__gt=after,
    )
    batches = 0
    ids = pending.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=size * 4)
    for chunk in _batches(ids, size):
        lo, hi = chunk[0], chunk[-1]
        if batches == limit:
            _queue_rest(dispatch_campaign, campaign_id, after=lo - 1)
            break
        pending.filter(pk__gte=lo, pk__lte=hi).update(dispatched_at=now)
        _queue_batch(send_batch, campaign_id, lo, hi)
        batches += 1
    return batches


def _batches(ids: Iterable[int], size: int) -> Iterable[list[int]]:
    batch: list[int] = []
    for pk in ids:
        batch.append(pk)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _queue_batch(task: Any, campaign_id: int, lo: int, hi: int) -> None:
    transaction.on_commit(lambda: task.delay(campaign_id, lo, hi))


def _queue_rest(task: Any, campaign_id: int, *, after: int) -> None:
    transaction.on_commit(lambda: task.delay(campaign_id, after))


# The batch ----------------------------------------------------------------------------------


@dataclass
class BatchResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retry: int = 0
    unknown: int = 0
    retry_at: datetime | None = None
    released: int = 0
    stopped: str = ""
    errors: list[str] = field(default_factory=list)


def claim_token() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim(campaign: Campaign, lo: int, hi: int, token: str, *, limit: int = CHUNK) -> list[int]:
    """Take up to `limit` queued deliveries of the range for this worker, committed
    before anything is sent. Returns their ids in order."""
    now = timezone.now()
    domain = domain_of(campaign.from_email)
    if connection.vendor == "postgresql":
        # One statement, its own transaction (one round trip), committed with the
        # session's synchronous commit: pick, lock (skipping rows another worker holds)
        # and claim.
        table = Delivery._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET status = %s, claimed_by = %s, claimed_at = %s, "  # noqa: S608
                "attempts = attempts + 1, message_id = %s || id || %s "
                f"WHERE id IN (SELECT id FROM {table} WHERE campaign_id = %s "
                "AND id BETWEEN %s AND %s AND status = %s "
                "AND (not_before IS NULL OR not_before <= %s) "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
                [D.SENDING, token, now, f"<{campaign.uuid.hex}.", f"@{domain}>",
                 campaign.pk, lo, hi, D.QUEUED, now, limit],
            )  # fmt: skip
            return sorted(row[0] for row in cursor.fetchall())
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(
                Q(not_before__isnull=True) | Q(not_before__lte=now),
                campaign=campaign,
                pk__gte=lo,
                pk__lte=hi,
                status=D.QUEUED,
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        # The Message-ID is recorded with the claim, before the message exists.
        Delivery.objects.filter(pk__in=ids, status=D.QUEUED).update(
            status=D.SENDING,
            claimed_by=token,
            claimed_at=now,
            attempts=F("attempts") + 1,
            message_id=Concat(
                Value(f"<{campaign.uuid.hex}."),
                Cast("pk", CharField()),
                Value(f"@{domain}>"),
                output_field=CharField(),
            ),
        )
    return list(
        Delivery.objects.filter(pk__in=ids, claimed_by=token, status=D.SENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _mark(delivery_id: int, token: str, **values: Any) -> None:
    Delivery.objects.filter(pk=delivery_id, claimed_by=token, status=D.SENDING).update(**values)


def _asynchronous_commit() -> str:
    """A select-list item that lets the statement's own transaction commit without
    waiting for the disk (`SET LOCAL` in the statement: PostgreSQL reads the setting
    at commit, before the transaction's settings are undone). A "sent" mark need not
    wait: a dead worker cannot lose it (the database has it), and after a crash of the
    database itself `recover_stalled` treats every claim older than the restart as
    entirely ambiguous (docs/sending.md). Inside a caller's transaction it would apply
    to all of it, claims included, so there it is left out."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return "NULL"
    return "set_config('synchronous_commit', 'off', true)"


class MailableCheck:
    """Whether a contact may get `campaign` right now: active, confirmed on one of its
    lists (for segment campaigns: on some list), not suppressed, account open. One
    boolean expression (`sql`), prepared once per campaign."""

    def __init__(self, campaign: Campaign) -> None:
        list_ids = list(campaign.lists.values_list("pk", flat=True))
        any_list = campaign.segments.exists()
        self.campaign = campaign
        on_lists = ""
        self.list_params: list[Any] = []
        if not any_list:
            on_lists = " AND s.mailing_list_id IN ({})".format(
                ", ".join(["%s"] * len(list_ids)) or "NULL"
            )
            self.list_params = list_ids
        self.sql = (
            f"EXISTS (SELECT 1 FROM {Contact._meta.db_table} c "  # noqa: S608
            f"JOIN {Account._meta.db_table} a ON a.id = c.account_id "
            "WHERE c.id = %s AND c.status = %s AND a.status = %s "
            f"AND EXISTS (SELECT 1 FROM {Subscription._meta.db_table} s "
            f"WHERE s.contact_id = c.id AND s.status = %s{on_lists}) "
            f"AND NOT EXISTS (SELECT 1 FROM {SuppressedContact._meta.db_table} x "
            "WHERE x.account_id = c.account_id AND x.digest = %s))"
        )

    def params(self, contact: Contact) -> list[Any]:
        return [
            contact.pk,
            Contact.Status.ACTIVE,
            Account.Status.ACTIVE,
            Subscription.Status.CONFIRMED,
            *self.list_params,
            contact_digest(contact.email),
        ]

    def __call__(self, contact: Contact) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {self.sql}", self.params(contact))
            row = cursor.fetchone()
        return bool(row and row[0])


class SentMarks:
    """Records "sent" marks and asks, before each message, whether the campaign is still
    sending and the contact still mailable. On PostgreSQL that is one autocommit
    statement per message: the pending mark of the previous message (a data-modifying
    CTE, committed without waiting for the disk) with the next message's two checks."""

    def __init__(
        self, check: MailableCheck, campaign_id: int, token: str, relay_id: int | None
    ) -> None:
        self.check_one = check
        self.token, self.relay_id = token, relay_id
        self.pending: int | None = None
        self.combined = connection.vendor == "postgresql"
        table = Delivery._meta.db_table
        self.mark_sql = (
            f"UPDATE {table} SET status = %s, sent_at = %s, relay_id = %s, "  # noqa: S608
            "last_error = '' WHERE id = %s AND claimed_by = %s AND status = %s"
        )
        sending = (
            f"EXISTS (SELECT 1 FROM {Campaign._meta.db_table} m "  # noqa: S608
            f"JOIN {Account._meta.db_table} a ON a.id = m.account_id "
            "WHERE m.id = %s AND m.status = %s AND a.status = %s)"
        )
        self.sending_params = [campaign_id, S.SENDING, Account.Status.ACTIVE]
        # Built once per batch, not per message. The batch runs in one transaction state
        # throughout, so the commit mode chosen now holds for each of its statements.
        if self.combined:
            mark = f"WITH done AS ({self.mark_sql} RETURNING id) "
            self.flush_sql = f"{mark}SELECT {_asynchronous_commit()}"
            self.check_sql = (
                f"{mark}SELECT {_asynchronous_commit()}, (SELECT count(*) FROM done), "  # noqa: S608
                f"{sending}, {check.sql}"
            )
        else:
            self.flush_sql = self.mark_sql
            self.check_sql = f"SELECT NULL, 0, {sending}, {check.sql}"

    def _mark_params(self, delivery_id: int | None) -> list[Any]:
        return [D.SENT, timezone.now(), self.relay_id, delivery_id, self.token, D.SENDING]

    def sent(self, delivery_id: int) -> None:
        self.flush()
        self.pending = delivery_id

    def flush(self) -> None:
        if self.pending is None:
            return
        with connection.cursor() as cursor:
            cursor.execute(self.flush_sql, self._mark_params(self.pending))
        self.pending = None

    def check(self, contact: Contact) -> tuple[bool, bool]:
        """(the campaign is still sending, `contact` may be mailed), after recording the
        pending mark."""
        params = [*self.sending_params, *self.check_one.params(contact)]
        if self.combined:
            params = [*self._mark_params(self.pending), *params]
        else:
            self.flush()
        with connection.cursor() as cursor:
            cursor.execute(self.check_sql, params)
            row = cursor.fetchone()
        self.pending = None
        return (bool(row and row[2]), bool(row and row[3]))


def is_mailable(contact: Contact, campaign: Campaign) -> bool:
    """Right now: active, confirmed on one of the campaign's lists (or, for segment
    campaigns, on some list), not suppressed, account open."""
    return MailableCheck(campaign)(contact)


class CampaignMailer:
    """Everything that is the same for all messages of a campaign, made once per batch."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        account = campaign.account
        self.relay = pick_relay(account)
        self.settings = SendingSettings.objects.filter(account=account).first()
        self.postal_address = self.settings.postal_address if self.settings else ""
        self.aggregate_only = (
            self.settings is None or self.settings.tracking == SendingSettings.Tracking.AGGREGATE
        )
        domain = domain_of(campaign.from_email)
        self.signing = SendingDomain.objects.filter(account=account, domain=domain).first()
        first_list = campaign.lists.order_by("pk").first()
        self.skeleton = Skeleton.make(
            from_name=campaign.from_name,
            from_email=campaign.from_email,
            reply_to=campaign.reply_to,
            list_name=first_list.name if first_list else campaign.name,
            list_key=(first_list.uuid.hex if first_list else campaign.uuid.hex),
        )
        self.sender = settings.SENDING["bounce_address"] or campaign.from_email
        self.is_mailable = MailableCheck(campaign)

    def message_for(self, delivery: Delivery, contact: Contact) -> bytes:
        unsubscribe = tracking.unsubscribe_url(contact, self.campaign.pk)
        preferences = preference_url(contact)
        rendered = render(
            self.campaign,
            contact,
            links={"unsubscribe_url": unsubscribe, "preferences_url": preferences},
            postal_address=self.postal_address,
        )
        html, text = rendered.html, rendered.text
        if contact.allow_tracking:
            delivery_ref = None if self.aggregate_only else delivery.pk
            html = tracking.instrument(
                html,
                campaign=self.campaign,
                delivery_id=delivery_ref,
                skip=(unsubscribe, preferences),
            )
        # The layout's own footer may already carry the link and the address: never twice.
        html, text = tracking.add_footer(
            html,
            text,
            unsubscribe_url=None if "unsubscribe_url" in rendered.links_used else unsubscribe,
            postal_address=self.postal_address,
        )
        urls = [unsubscribe]
        if self.settings is not None and self.settings.unsubscribe_mailto:
            urls.append(f"mailto:{self.settings.unsubscribe_mailto}?subject=unsubscribe")
        headers: tuple[tuple[str, str], ...] = ()
        if self.relay is not None and self.relay.esp:
            headers = esp_headers(self.relay.esp, delivery.pk)
        data = self.skeleton.build(
            to=contact.email,
            subject=rendered.subject,
            html=html,
            text=text,
            message_id=delivery.message_id,
            unsubscribe_urls=urls,
            headers=headers,
        )
        if self.signing is not None:
            data = dkim_sign(
                data,
                domain=self.signing.domain,
                selector=self.signing.selector,
                private_key=self.signing.private_key,
            )
        return data


def esp_headers(esp: str, delivery_id: int) -> tuple[tuple[str, str], ...]:
    """Headers a provider's SMTP relay turns into webhook metadata, so its bounce and
    complaint events name the delivery they are about."""
    if esp == Relay.Esp.POSTMARK:
        return (("X-PM-Metadata-tidings", f"d{delivery_id}"),)
    if esp == Relay.Esp.MAILGUN:
        return (("X-Mailgun-Variables", f'{{"tidings": "d{delivery_id}"}}'),)
    return ()


def pick_relay(account: Account) -> Relay | None:
    """The account's own active relay, else the operator's, else None (Django's mail
    backend: the outbox of the embedded default)."""
    own = Relay.objects.filter(account=account, active=True).order_by("pk").first()
    return own or Relay.objects.filter(account__isnull=True, active=True).order_by("pk").first()


def backoff_seconds(attempts: int) -> int:
    base = settings.SENDING["retry_base_seconds"]
    return int(min(base * 2 ** max(0, attempts - 1), 6 * 3600) * random.uniform(0.9, 1.1))


def send_batch(campaign_id: int, lo: int, hi: int) -> BatchResult:
    """Send the queued deliveries of one id range, at most once each."""
    result = BatchResult()
    campaign = Campaign.objects.select_related("account").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != S.SENDING:
        result.stopped = "campaign not sending"
        return result
    mailer = CampaignMailer(campaign)
    transport = transport_for(mailer.relay)
    lease = settings.SENDING["lease_seconds"]
    try:
        if isinstance(transport, SMTPTransport) and not take_connection_slot(
            transport, hold_seconds=lease
        ):
            result.stopped = "no free connection to the relay"
            result.retry_at = timezone.now() + timedelta(seconds=5)
            Delivery.objects.filter(
                campaign=campaign, pk__gte=lo, pk__lte=hi, status=D.QUEUED
            ).update(dispatched_at=timezone.now())
            return result
        while True:
            status = Campaign.objects.filter(pk=campaign_id).values_list(
                "status", "account__status"
            )[0]
            if status != (S.SENDING, Account.Status.ACTIVE):
                result.stopped = "campaign paused, cancelled or account closed"
                break
            token = claim_token()
            ids = claim(campaign, lo, hi, token)
            if not ids:
                break
            _send_chunk(mailer, transport, ids, token, result, lease=lease)
    finally:
        if isinstance(transport, SMTPTransport):
            give_back_slot(transport)
        transport.release()
    finish_if_done(campaign_id)
    return result


def _send_chunk(
    mailer: CampaignMailer,
    transport: Transport,
    ids: list[int],
    token: str,
    result: BatchResult,
    *,
    lease: int,
) -> None:
    """Send a claimed chunk in id order, each outcome recorded before the next message.
    Stops (and gives back what it did not attempt) well before the lease ends."""
    deadline = time.monotonic() + lease / 2
    deliveries = {
        d.pk: d
        for d in Delivery.objects.select_related("contact").filter(pk__in=ids, claimed_by=token)
    }
    relay_config = getattr(transport, "config", None)
    # The "sent" mark of a message is written together with the next message's checks
    # (one round trip), always before the next message goes out.
    outcomes = SentMarks(mailer.is_mailable, mailer.campaign.pk, token, transport.relay_id)
    try:
        for position, delivery_id in enumerate(ids):
            delivery = deliveries.get(delivery_id)
            if delivery is None:
                continue
            stop = time.monotonic() > deadline or (
                relay_config is not None and not wait_for_rate(relay_config, deadline=deadline)
            )
            sending, mailable = (False, False) if stop else outcomes.check(delivery.contact)
            if not sending:
                outcomes.flush()
                result.released += _release(ids[position:], token)
                return
            _send_one(mailer, transport, delivery, token, result, outcomes, mailable=mailable)
    finally:
        outcomes.flush()


def _send_one(
    mailer: CampaignMailer,
    transport: Transport,
    delivery: Delivery,
    token: str,
    result: BatchResult,
    outcomes: SentMarks,
    *,
    mailable: bool,
) -> None:
    campaign, contact, delivery_id = mailer.campaign, delivery.contact, delivery.pk
    if not mailable:
        _mark(delivery_id, token, status=D.SKIPPED, last_error="no longer mailable")
        result.skipped += 1
        return
    try:
        data = mailer.message_for(delivery, contact)
    except TemplateError as error:
        _mark(delivery_id, token, status=D.FAILED, last_error=str(error)[:500])
        result.failed += 1
        return
    try:
        transport.send(mailer.sender, contact.email, data)
    except TemporaryFailure as error:
        _temporary(delivery, token, str(error), result)
    except PermanentFailure as error:
        _mark(delivery_id, token, status=D.FAILED, last_error=str(error)[:500])
        result.failed += 1
        if error.recipient:
            bounces.hard_bounce(contact, campaign=campaign, source="smtp", detail=str(error))
    except Ambiguous as error:
        _mark(delivery_id, token, status=D.UNKNOWN, last_error=str(error)[:500])
        result.unknown += 1
    else:
        outcomes.sent(delivery_id)
        result.sent += 1


def _temporary(delivery: Delivery, token: str, error: str, result: BatchResult) -> None:
    # `attempts` already counts this attempt (the claim added it).
    if delivery.attempts >= settings.SENDING["max_attempts"]:
        _mark(delivery.pk, token, status=D.FAILED, last_error=error[:500])
        result.failed += 1
        return
    when = timezone.now() + timedelta(seconds=backoff_seconds(delivery.attempts))
    _mark(
        delivery.pk,
        token,
        status=D.QUEUED,
        not_before=when,
        claimed_by="",
        dispatched_at=timezone.now(),
        last_error=error[:500],
    )
    result.retry += 1
    result.retry_at = when if result.retry_at is None else min(result.retry_at, when)


def _release(ids: Iterable[int], token: str) -> int:
    """Give back claimed deliveries this worker did not attempt."""
    return Delivery.objects.filter(pk__in=list(ids), claimed_by=token, status=D.SENDING).update(
        status=D.QUEUED,
        claimed_by="",
        claimed_at=None,
        attempts=Case(
            When(attempts__gt=0, then=F("attempts") - 1),
            default=Value(0),
            output_field=IntegerField(),
        ),
    )


# Recovery ------------------------------------------------------------------------------------


@dataclass
class Recovery:
    unknown: int = 0
    requeued: int = 0
    batches: int = 0
    finished: int = 0


def recover_stalled(now: datetime | None = None) -> Recovery:
    """Claims older than the lease belong to dead workers: the delivery that may have
    been in flight becomes unknown, the rest is queued again; lost batches are queued
    again; campaigns with nothing left are finished."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SENDING["lease_seconds"])
    outcome = Recovery()
    tokens = (
        Delivery.objects.filter(status=D.SENDING, claimed_at__lt=cutoff)
        .values_list("claimed_by", flat=True)
        .distinct()
    )
    restarted = database_started_at()
    for token in list(tokens):
        with transaction.atomic():
            stuck = list(
                Delivery.objects.select_for_update()
                .filter(status=D.SENDING, claimed_by=token, claimed_at__lt=cutoff)
                .order_by("pk")
                .values("pk", "claimed_at")
            )
            if not stuck:
                continue
            # Outcomes are recorded in order, so only the first delivery still "sending"
            # can have been in flight; unless the database restarted since the claim and
            # may have lost recent "sent" marks: then none of them is retried.
            claimed_at = stuck[0]["claimed_at"] or cutoff
            lost_marks = restarted is not None and claimed_at < restarted
            ambiguous = [row["pk"] for row in (stuck if lost_marks else stuck[:1])]
            Delivery.objects.filter(pk__in=ambiguous).update(
                status=D.UNKNOWN,
                last_error="the worker was lost between the claim and the server's answer; "
                "not retried, so that nobody gets the message twice",
            )
            outcome.unknown += len(ambiguous)
            rest = [row["pk"] for row in stuck if row["pk"] not in set(ambiguous)]
            outcome.requeued += Delivery.objects.filter(pk__in=rest).update(
                status=D.QUEUED, claimed_by="", claimed_at=None, dispatched_at=None
            )
    # The task fixing the rest of a campaign's recipients was lost (a broker restart).
    from tidings.sending.tasks import materialise_campaign

    for campaign_id in Campaign.objects.filter(
        status__in=[S.SENDING, S.PAUSED], recipients_fixed_at__isnull=True, started_at__lt=cutoff
    ).values_list("pk", flat=True):
        materialise_campaign.delay(campaign_id)
    for campaign_id in Campaign.objects.filter(status=S.SENDING).values_list("pk", flat=True):
        outcome.batches += dispatch(campaign_id, now=now)
        outcome.finished += int(finish_if_done(campaign_id))
    return outcome


def database_started_at() -> datetime | None:
    """When the PostgreSQL server last started (None on SQLite, whose marks are
    synchronous)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        row = cursor.fetchone()
    return row[0] if row else None


# Progress -------------------------------------------------------------------------------------


def progress(campaign: Campaign) -> dict[str, Any]:
    """Counts for the live progress view."""
    counts = dict.fromkeys(D.values, 0)
    for status, n in (
        Delivery.objects.filter(campaign=campaign)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    ):
        counts[status] = n
    since = timezone.now() - timedelta(minutes=1)
    per_minute = Delivery.objects.filter(
        campaign=campaign, status=D.SENT, sent_at__gte=since
    ).count()
    total = sum(counts.values())
    return {
        "status": campaign.status,
        "total": total,
        "sent": counts[D.SENT],
        "failed": counts[D.FAILED] + counts[D.BOUNCED],
        "skipped": counts[D.SKIPPED],
        "unknown": counts[D.UNKNOWN],
        "remaining": counts[D.QUEUED] + counts[D.SENDING],
        # False for the few seconds after the start in which a large audience's
        # deliveries are still being written: `total` is still growing.
        "recipients_fixed": campaign.recipients_fixed_at is not None,
        "rate_per_minute": per_minute,
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }
