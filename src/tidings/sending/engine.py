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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from tidings.audience import mailability
from tidings.audience.models import Contact, Subscription
from tidings.audience.segments import contacts_in
from tidings.campaigns.models import Campaign
from tidings.campaigns.rendering import TemplateError, check
from tidings.core import jobs
from tidings.core.mail import Purpose, send_templated
from tidings.sending import batch
from tidings.sending.batch import CHUNK, BatchResult
from tidings.sending.ledger import (
    database_started_at,
    lease_cutoff,
    recover_stale_claims,
)
from tidings.sending.models import Delivery, SendingSettings
from tidings.sending.relays import pick_relay

__all__ = ["CHUNK", "BatchResult", "pick_relay"]

log = logging.getLogger(__name__)

S = Campaign.Status
D = Delivery.Status

# The engine's jobs, queued by name after the commit (sending.tasks).
DISPATCH = "tidings.sending.tasks.dispatch_campaign"
MATERIALISE = "tidings.sending.tasks.materialise_campaign"
SEND_BATCH = "tidings.sending.tasks.send_batch"


class SendingError(ValueError):
    """A sending action that cannot be done now; the message says why."""


# Recipients ------------------------------------------------------------------------------


def recipients(campaign: Campaign) -> Any:
    """The contacts `campaign` goes to now (the mailability rule, for marketing): those
    confirmed on one of its lists, and the members of its segments confirmed on some
    list. Checked again for each chunk as it is sent."""
    lists = list(campaign.lists.values_list("pk", flat=True))
    wanted = mailability.contacts_q(Purpose.MARKETING, lists)
    segments = _segment_members(campaign)
    if segments:
        on_some_list = mailability.contacts_q(Purpose.MARKETING, mailability.ANY_LIST)
        for members in segments:
            wanted |= on_some_list & Q(pk__in=members)
    return Contact.objects.filter(wanted, account_id=campaign.account_id)


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
    if not campaign.account.is_processing_allowed:
        raise SendingError("This account is closed: nothing is sent.")
    if campaign.account.is_restricted:
        raise SendingError("Processing is restricted for this account: nothing is sent.")
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
            jobs.enqueue(MATERIALISE, locked.pk)
    campaign.refresh_from_db()
    return count


def materialise_rest(campaign_id: int) -> int:
    """The recipients `start_campaign` left for later (contacts after the first
    batch's), then their dispatch. Idempotent; returns the number added."""
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
            jobs.enqueue(DISPATCH, campaign_id)
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
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status != S.PAUSED:
            raise SendingError("Only a paused campaign can be resumed.")
        locked.status, locked.pause_reason = S.SENDING, ""
        locked.save(update_fields=["status", "pause_reason", "updated_at"])
        Delivery.objects.filter(campaign=locked, status=D.QUEUED).update(dispatched_at=None)
        jobs.enqueue(DISPATCH, locked.pk)
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
            _queue_rest(DISPATCH, campaign_id, after=lo - 1)
            break
        pending.filter(pk__gte=lo, pk__lte=hi).update(dispatched_at=now)
        _queue_batch(SEND_BATCH, campaign_id, lo, hi)
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


def _queue_batch(task: str, campaign_id: int, lo: int, hi: int) -> None:
    jobs.enqueue(task, campaign_id, lo, hi)


def _queue_rest(task: str, campaign_id: int, *, after: int) -> None:
    jobs.enqueue(task, campaign_id, after)


# The batch ----------------------------------------------------------------------------------


def send_batch(campaign_id: int, lo: int, hi: int) -> BatchResult:
    """Send the queued deliveries of one id range, at most once each (sending.batch)."""
    result = batch.send_batch(campaign_id, lo, hi, pause=pause_for_relay)
    finish_if_done(campaign_id)
    return result


def claim(campaign: Campaign, lo: int, hi: int, token: str, *, limit: int = CHUNK) -> list[int]:
    """Claim up to `limit` queued deliveries of the range for `token`, as a worker does
    before sending (committed); their ids."""
    claims = batch.Claims(campaign, batch.lists_of(campaign))
    return [recipient.delivery_id for recipient, _, _ in claims.claim(lo, hi, token, limit=limit)]


def is_mailable(contact: Contact, campaign: Campaign) -> bool:
    """Whether `contact` may get `campaign` right now (the rule the batches apply)."""
    lists = batch.lists_of(campaign)
    return contact.pk in mailability.mailable_ids(Purpose.MARKETING, [contact.pk], lists)


def pause_for_relay(campaign: Campaign, reason: str) -> None:
    """The relay refuses the campaign itself (the login, the sender, message after
    message): pause it with the reason and tell the account's users, instead of failing
    every recipient for good. Resuming retries where it stopped."""
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status != S.SENDING:
            return
        locked.status, locked.pause_reason = S.PAUSED, reason[:500]
        locked.save(update_fields=["status", "pause_reason", "updated_at"])
        users = locked.account.users.filter(is_active=True)
        send_templated(
            "sending/mail/campaign_paused",
            [u.email for u in users],
            {"campaign": locked, "reason": reason},
            purpose=Purpose.SERVICE,
            account_id=locked.account_id,
            user_ids={u.email: u.pk for u in users},
        )
    log.warning("campaign %s paused: %s", campaign.pk, reason)


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
    claims = recover_stale_claims(Delivery, lease_cutoff(now), restarted=database_started_at())
    outcome = Recovery(unknown=claims.unknown, requeued=claims.requeued)
    # The task fixing the rest of a campaign's recipients was lost (a broker restart).
    for campaign_id in Campaign.objects.filter(
        status__in=[S.SENDING, S.PAUSED],
        recipients_fixed_at__isnull=True,
        started_at__lt=lease_cutoff(now),
    ).values_list("pk", flat=True):
        jobs.send_now(MATERIALISE, campaign_id)
    for campaign_id in Campaign.objects.filter(status=S.SENDING).values_list("pk", flat=True):
        outcome.batches += dispatch(campaign_id, now=now)
        outcome.finished += int(finish_if_done(campaign_id))
    return outcome


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
