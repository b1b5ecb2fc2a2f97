"""Dunning: what follows a plan's renewal that the gateway could not charge, or that
awaits a bank transfer (opened unpaid: its dunning starts when it is opened).

The steps, in the order the code follows them:
1. The failure (`start`, in the transaction that marks the renewal failed): the
   subscription records when, and its users are mailed at once. A failure told again
   (a re-delivered event, the gateway's next attempt failing too) starts nothing new.
2. Days 3 and 7 after it: a reminder each; day 14: campaigns and automations may no
   longer send (`suspension`: the checklist refuses with a link to Billing, automation
   steps wait), and the users are told. Data is kept and everything else works.
   `advance` takes these steps for every subscription that is due, from the periodic
   job; each step is taken by one conditional UPDATE (`dunning_step` = the step before),
   so two runs at once, or a run repeated, mail nobody twice. A run that comes late
   takes only the latest step due.
3. A payment at any point (`end`, in the transaction that marks the renewal paid) ends
   it: sending is allowed again at once. So does the plan's end (cancelled).
Every step is audited; every mail goes through the one pipeline, to the users the users'
rule allows (`accounts.mailability`, service mail), each posted under a key of its step,
so posting it again posts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tidings.accounts.mailability import account_users
from tidings.accounts.models import Account, User
from tidings.billing.models import Order, Subscription
from tidings.core.mail import Purpose, send_templated
from tidings.staff import audit

Step = Subscription.DunningStep

# Days after the failure each later step is due.
DUE_AFTER_DAYS: dict[int, int] = {
    Step.REMINDED: 3,
    Step.REMINDED_AGAIN: 7,
    Step.SUSPENDED: 14,
}
MAIL: dict[int, str] = {
    Step.TOLD: "billing/mail/renewal_failed",
    Step.REMINDED: "billing/mail/renewal_reminder",
    Step.REMINDED_AGAIN: "billing/mail/renewal_reminder",
    Step.SUSPENDED: "billing/mail/sending_suspended",
}
# Subscriptions one run of `advance` looks at (the rest wait for the next run).
BATCH = 500


@dataclass(frozen=True)
class Dunning:
    """A subscription's unpaid renewal as the customer and staff see it."""

    subscription: Subscription
    order: Order | None
    failed_at: datetime
    reminders: tuple[datetime, datetime]
    suspends_at: datetime
    suspended: bool


def unpaid_renewal(sub: Subscription) -> Order | None:
    """The renewal that is due: a card that failed, or a bank transfer awaited."""
    return (
        sub.renewals.filter(status__in=(Order.Status.FAILED, Order.Status.AWAITING_TRANSFER))
        .order_by("-period_end")
        .first()
    )


def state_of(sub: Subscription | None) -> Dunning | None:
    """The dunning of `sub` with its dates, or None when nothing is unpaid."""
    if sub is None or sub.payment_failed_at is None:
        return None
    at = sub.payment_failed_at
    return Dunning(
        subscription=sub,
        order=unpaid_renewal(sub),
        failed_at=at,
        reminders=(
            at + timedelta(days=DUE_AFTER_DAYS[Step.REMINDED]),
            at + timedelta(days=DUE_AFTER_DAYS[Step.REMINDED_AGAIN]),
        ),
        suspends_at=at + timedelta(days=DUE_AFTER_DAYS[Step.SUSPENDED]),
        suspended=sub.sending_suspended_at is not None,
    )


def suspension(account: Account) -> Subscription | None:
    """The subscription whose unpaid renewal suspends the account's sending, or None.
    The one rule the checklist and the automations read."""
    return (
        Subscription.objects.filter(
            account=account,
            status=Subscription.Status.ACTIVE,
            sending_suspended_at__isnull=False,
        )
        .select_related("offer")
        .first()
    )


def _tell(sub: Subscription, step: int) -> None:
    state = state_of(sub)
    if state is None:
        return
    users = list(account_users(sub.account_id, Purpose.SERVICE))
    order = state.order
    send_templated(
        MAIL[step],
        [u.email for u in users],
        {"dunning": state, "order": order, "plan": sub.offer, "step": step},
        purpose=Purpose.SERVICE,
        account_id=sub.account_id,
        user_ids={u.email: u.pk for u in users},
        key=f"dunning:{sub.pk}:{state.failed_at.timestamp():.0f}:{step}",
    )


def _audit(sub: Subscription, reason: str, by: User | None = None) -> None:
    audit.record(
        audit.AuditEvent.Action.UPDATE,
        sub,
        by=by,
        fields=["payment_failed_at", "dunning_step", "sending_suspended_at"],
        reason=reason,
        account_id=sub.account_id,
    )


def start(sub: Subscription, *, now: datetime | None = None) -> bool:
    """A renewal of the locked `sub` failed: step 1, once. Returns whether it started."""
    if sub.payment_failed_at is not None or sub.status != Subscription.Status.ACTIVE:
        return False
    sub.payment_failed_at = now or timezone.now()
    sub.dunning_step = Step.TOLD
    sub.save(update_fields=["payment_failed_at", "dunning_step"])
    _audit(sub, "dunning: renewal payment failed")
    _tell(sub, Step.TOLD)
    return True


def end(sub: Subscription, *, by: User | None = None, why: str = "renewal paid") -> bool:
    """The renewal of the locked `sub` was paid (or the plan ended): the dunning ends and
    sending is allowed again. Returns whether there was one."""
    if sub.payment_failed_at is None:
        return False
    sub.payment_failed_at = None
    sub.dunning_step = Step.NONE
    sub.sending_suspended_at = None
    sub.save(update_fields=["payment_failed_at", "dunning_step", "sending_suspended_at"])
    _audit(sub, f"dunning ended: {why}", by)
    return True


def step_due(sub: Subscription, now: datetime) -> int:
    """The latest step due at `now` for a subscription in dunning."""
    assert sub.payment_failed_at is not None
    due = int(Step.TOLD)
    for step, days in DUE_AFTER_DAYS.items():
        if now >= sub.payment_failed_at + timedelta(days=days):
            due = step
    return due


def advance(now: datetime | None = None) -> int:
    """Take the step due of every subscription in dunning (the periodic job; idempotent).
    Returns the number of steps taken."""
    now = now or timezone.now()
    # Only those with a step due now: the batch never fills with subscriptions whose
    # next step is days away (which would keep the due ones beyond it waiting).
    due_now = Q()
    for step, days in DUE_AFTER_DAYS.items():
        due_now |= Q(dunning_step__lt=step, payment_failed_at__lte=now - timedelta(days=days))
    candidates = Subscription.objects.filter(
        due_now, status=Subscription.Status.ACTIVE, payment_failed_at__isnull=False
    ).order_by("pk")
    taken = 0
    for sub in candidates.select_related("offer")[:BATCH]:
        due = step_due(sub, now)
        if due <= sub.dunning_step:
            continue
        with transaction.atomic():
            changes: dict[str, object] = {"dunning_step": due}
            if due == Step.SUSPENDED:
                changes["sending_suspended_at"] = now
            won = Subscription.objects.filter(
                pk=sub.pk,
                status=Subscription.Status.ACTIVE,
                payment_failed_at=sub.payment_failed_at,
                dunning_step=sub.dunning_step,
            ).update(**changes)
            if not won:
                continue  # another run took it, or a payment ended it meanwhile
            sub.refresh_from_db()
            _audit(sub, f"dunning: {Step(due).name.lower()}")
            _tell(sub, due)
            taken += 1
    return taken
