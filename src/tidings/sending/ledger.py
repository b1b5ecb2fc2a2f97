"""What the two ledgers of sent mail share: campaign deliveries (`Delivery`) and every
other message (`OutboundMail`). Both follow one protocol (docs/sending.md):

1. a row is claimed (queued -> sending, with a claim token and time) by a statement
   committed before any SMTP traffic;
2. its outcome is recorded before the same claimant starts its next message (a
   campaign delivery's "sent" is first its `sent_at`, which becomes status "sent" with
   the rest of its chunk);
3. a claim older than the lease belongs to a dead worker: its rows with `sent_at` were
   sent; of the others, the claimant's first may have been in flight and becomes
   *unknown*, never retried (a duplicate is worse than a miss), and the rest were never
   attempted and go back to the queue. After a restart of the database, whose last
   marks may be lost (they are written without waiting for the disk), every unmarked
   row of such a claim is unknown.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

LOST_IN_FLIGHT = (
    "the worker was lost between the claim and the server's answer; not retried, so "
    "that nobody gets the message twice"
)


def claim_token() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def backoff_seconds(attempts: int) -> int:
    """Seconds before the next attempt after `attempts` temporary failures: doubling
    from TIDINGS_SENDING_RETRY_SECONDS, at most 6 hours, jittered."""
    base = settings.SENDING["retry_base_seconds"]
    return int(min(base * 2 ** max(0, attempts - 1), 6 * 3600) * random.uniform(0.9, 1.1))


def database_started_at() -> datetime | None:
    """When the PostgreSQL server last started (None on SQLite, whose marks are
    synchronous)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        row = cursor.fetchone()
    return row[0] if row else None


@dataclass
class Recovered:
    unknown: int = 0
    requeued: int = 0


def recover_stale_claims(
    model: type[models.Model], cutoff: datetime, *, restarted: datetime | None
) -> Recovered:
    """Step 3 of the protocol for `model`'s claims older than `cutoff`; `restarted` is
    when the database last started (`database_started_at`)."""
    outcome = Recovered()
    sending = model.Status.SENDING  # type: ignore[attr-defined]
    rows = model._default_manager.filter(status=sending, claimed_at__lt=cutoff)
    tokens = list(rows.values_list("claimed_by", flat=True).distinct())
    for token in tokens:
        with transaction.atomic():
            claim = rows.select_for_update().filter(claimed_by=token)
            # Marked sent before the worker died: sent.
            claim.filter(sent_at__isnull=False).update(
                status=model.Status.SENT,  # type: ignore[attr-defined]
                last_error="",
            )
            stuck = list(
                claim.filter(sent_at__isnull=True).order_by("pk").values_list("pk", "claimed_at")
            )
            if not stuck:
                continue
            claimed_at = stuck[0][1] or cutoff
            lost_marks = restarted is not None and claimed_at < restarted
            ambiguous = [pk for pk, _ in (stuck if lost_marks else stuck[:1])]
            model._default_manager.filter(pk__in=ambiguous).update(
                status=model.Status.UNKNOWN,  # type: ignore[attr-defined]
                last_error=LOST_IN_FLIGHT,
            )
            outcome.unknown += len(ambiguous)
            rest = [pk for pk, _ in stuck if pk not in set(ambiguous)]
            outcome.requeued += model._default_manager.filter(pk__in=rest).update(
                status=model.Status.QUEUED,  # type: ignore[attr-defined]
                claimed_by="",
                claimed_at=None,
                dispatched_at=None,
            )
    return outcome


def lease_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=settings.SENDING["lease_seconds"])
