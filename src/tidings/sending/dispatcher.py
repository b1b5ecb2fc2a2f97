"""Dispatch: one batch task per range of queued, due deliveries that no live task
carries, queued as soon as its range is known (docs/sending.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from tidings.campaigns.models import Campaign
from tidings.core import jobs
from tidings.sending.models import Delivery

log = logging.getLogger(__name__)

S = Campaign.Status
D = Delivery.Status


# The engine's jobs, queued by name after the commit (sending.tasks).
DISPATCH = "tidings.sending.tasks.dispatch_campaign"
MATERIALISE = "tidings.sending.tasks.materialise_campaign"
SEND_BATCH = "tidings.sending.tasks.send_batch"


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
