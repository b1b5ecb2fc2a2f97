"""A closed account's plans end, here and at the gateway: Stripe must charge it no more.

The rules, in the order the code follows them:
1. Closing the account (`account_closed`, called by accounts.services.close_account in
   its transaction) cancels every active plan of the account at once, here: its dunning
   ends, it is never renewed, and a later event of the gateway (a renewal charged, an
   "active" subscription) never revives it (services: a cancelled subscription stays
   cancelled). Each is audited.
2. A plan at a gateway that renews by itself (Stripe) is cancelled there too: a
   `GatewayCancellation` row is written in the close's transaction, so the request is
   never lost; it holds only the gateway's ids and outlives the account's erasure (an
   "erase now" runs at once) until the gateway confirms. One per subscription at the
   gateway (a unique constraint). The job (`cancel_due`, queued after the close's commit
   and run every ten minutes) asks the gateway.
3. Each try is claimed first by one conditional UPDATE that moves `due_at` past a
   lease: two runs at once never both ask, and a run that dies mid-request leaves it to
   the next one after the lease. Every try carries the same idempotency key, so a
   request repeated after a crash is the same cancellation at the gateway; a
   subscription the gateway no longer knows (cancelled already) is done too.
4. A gateway that does not answer (or refuses) is asked again later, after 5 minutes
   then doubling up to 6 hours, never given up: the attempts and the last error are in
   the staff console. Done once: `done_at`, audited.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tidings.accounts.models import Account, User
from tidings.billing import dunning
from tidings.billing.gateways import GATEWAYS, GatewayError
from tidings.billing.models import GatewayCancellation, Subscription
from tidings.core import jobs
from tidings.staff import audit

log = logging.getLogger(__name__)

TASK = "tidings.billing.tasks.cancel_at_gateways"
FIRST_RETRY = timedelta(minutes=5)
LONGEST_WAIT = timedelta(hours=6)
# How long a claimed try may take before another run may ask again.
LEASE = timedelta(minutes=10)
# Plans one run asks about (the rest wait for the next run).
BATCH = 100


def retry_after(attempts: int) -> timedelta:
    """The wait after `attempts` failed tries: 5 minutes, doubling, at most 6 hours."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT)


def account_closed(account: Account, *, by: User | None) -> int:
    """The account closes: its active plans are cancelled here now, and those at a
    gateway that renews by itself are due to be cancelled there. In the close's
    transaction. Returns how many plans it cancelled."""
    cancelled = 0
    for sub in (
        Subscription.objects.select_for_update()
        .select_related("order")
        .filter(account_id=account.pk, status=Subscription.Status.ACTIVE)
    ):
        dunning.end(sub, by=by, why="account closed")
        sub.status = Subscription.Status.CANCELLED
        sub.save(update_fields=["status"])
        audit.record(
            audit.AuditEvent.Action.UPDATE,
            sub,
            by=by,
            fields=["status"],
            reason="plan cancelled: account closed",
            account_id=sub.account_id,
        )
        at_gateway = GATEWAYS.get(sub.order.gateway)
        if at_gateway is not None and at_gateway.renews_itself and sub.gateway_ref:
            GatewayCancellation.objects.get_or_create(
                gateway=sub.order.gateway,
                gateway_ref=sub.gateway_ref,
                defaults={
                    "subscription": sub,
                    "idempotency_key": f"{sub.order.idempotency_key}-cancel",
                    "due_at": timezone.now(),
                },
            )
        cancelled += 1
    if cancelled:
        jobs.enqueue(TASK)
    return cancelled


def cancel_due(now: datetime | None = None) -> int:
    """Ask the gateways to cancel the plans whose cancellation is due (the job;
    idempotent). Returns how many the gateways confirmed."""
    now = now or timezone.now()
    due = GatewayCancellation.objects.filter(due_at__lte=now, done_at__isnull=True).order_by(
        "due_at", "pk"
    )
    done = 0
    for asked in due[:BATCH]:
        claimed = GatewayCancellation.objects.filter(
            pk=asked.pk, done_at__isnull=True, due_at=asked.due_at
        ).update(due_at=now + LEASE)
        if not claimed:
            continue  # another run took it
        done += _ask(asked, now)
    return done


def _ask(asked: GatewayCancellation, now: datetime) -> int:
    attempts = asked.attempts + 1
    try:
        said = GATEWAYS[asked.gateway].cancel_subscription(
            asked.gateway_ref, idempotency_key=asked.idempotency_key
        )
    except GatewayError as error:
        wait = retry_after(attempts)
        log.warning(
            "%s did not cancel the subscription %s (try %d, again in %s): %s",
            asked.gateway,
            asked.gateway_ref,
            attempts,
            wait,
            error,
        )
        GatewayCancellation.objects.filter(pk=asked.pk, done_at__isnull=True).update(
            attempts=attempts, error=str(error)[:200], due_at=now + wait
        )
        return 0
    with transaction.atomic():
        GatewayCancellation.objects.filter(pk=asked.pk).update(
            done_at=now, due_at=None, attempts=attempts, error="", outcome=said
        )
        # The plan's account, unless the account was erased meanwhile.
        account_id = (
            Subscription.objects.filter(pk=asked.subscription_id)
            .values_list("account_id", flat=True)
            .first()
            if asked.subscription_id is not None
            else None
        )
        audit.record(
            audit.AuditEvent.Action.UPDATE,
            asked,
            by=None,
            fields=["done_at"],
            reason=f"plan cancelled at the gateway {asked.gateway} ({said})",
            account_id=account_id,
        )
    return 1
