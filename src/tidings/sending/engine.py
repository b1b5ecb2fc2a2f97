"""The campaign pipeline's batches and recovery. Its other parts: who a campaign goes
to (`recipients`), its life (`lifecycle`, a transition table), dispatch (`dispatcher`),
the batch loop (`batch`) and the ledger of claims (`ledger`).

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q
from django.utils import timezone

from tidings.audience import mailability
from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign
from tidings.core import jobs
from tidings.core.mail import Purpose
from tidings.sending import batch
from tidings.sending.batch import CHUNK, BatchResult
from tidings.sending.dispatcher import MATERIALISE, dispatch
from tidings.sending.ledger import database_started_at, lease_cutoff, recover_stale_claims
from tidings.sending.lifecycle import finish_if_done, pause_for_relay, pause_for_template
from tidings.sending.models import Delivery
from tidings.sending.relays import pick_relay

__all__ = ["CHUNK", "BatchResult", "pick_relay"]

log = logging.getLogger(__name__)

S = Campaign.Status
D = Delivery.Status


# The batch ----------------------------------------------------------------------------------


def send_batch(campaign_id: int, lo: int, hi: int) -> BatchResult:
    """Send the queued deliveries of one id range, at most once each (sending.batch)."""
    result = batch.send_batch(
        campaign_id, lo, hi, pause=pause_for_relay, pause_for_template=pause_for_template
    )
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


def unknown_recipients(campaign: Campaign, *, limit: int) -> list[str]:
    """Addresses whose message a lost worker may or may not have sent, first ones first."""
    return list(
        Delivery.objects.filter(campaign=campaign, status=D.UNKNOWN)
        .order_by("id")
        .values_list("contact__email", flat=True)[:limit]
    )


# Progress -------------------------------------------------------------------------------------


def progress(campaign: Campaign) -> dict[str, Any]:
    """Counts for the live progress view."""
    counts = dict.fromkeys(D.values, 0)
    # The last sign of life rides on the counting scan: no second pass over the rows.
    last_activity = campaign.started_at
    for status, n, last_sent, last_claim in (
        Delivery.objects.filter(campaign=campaign)
        .values("status")
        .annotate(n=Count("pk"), sent=Max("sent_at"), claimed=Max("claimed_at"))
        .values_list("status", "n", "sent", "claimed")
    ):
        counts[status] = n
        for when in (last_sent, last_claim):
            if when is not None and (last_activity is None or when > last_activity):
                last_activity = when
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
        # Minutes without any message claimed or sent while some wait to go (no worker
        # running, the broker down): the page says so instead of standing still.
        "stalled_minutes": _stalled_minutes(campaign, counts, last_activity),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }


# A sending campaign with messages waiting and no sign of life for this long is stalled.
STALLED_AFTER = timedelta(minutes=3)


def _stalled_minutes(
    campaign: Campaign, counts: dict[str, int], last_activity: datetime | None
) -> int:
    waiting = counts[D.QUEUED] > 0 and campaign.status == S.SENDING
    if not waiting or last_activity is None:
        return 0
    # Messages waiting for a retry's time are not stalled: nothing is due.
    idle = timezone.now() - last_activity
    if idle < STALLED_AFTER:
        return 0
    due = Delivery.objects.filter(campaign=campaign, status=D.QUEUED).filter(
        Q(not_before__isnull=True) | Q(not_before__lte=timezone.now())
    )
    return int(idle.total_seconds() // 60) if due.exists() else 0


def failure_reasons(campaign: Campaign, *, limit: int) -> list[tuple[str, int]]:
    """The most frequent reasons messages of the campaign failed, with their counts."""
    return list(
        Delivery.objects.filter(campaign=campaign, status=D.FAILED)
        .exclude(last_error="")
        .values("last_error")
        .annotate(n=Count("pk"))
        .order_by("-n", "last_error")
        .values_list("last_error", "n")[:limit]
    )
