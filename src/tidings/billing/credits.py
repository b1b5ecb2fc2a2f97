"""Credits: one credit is one message. The ledger (`CreditEntry`) is append-only; the
balance (`CreditBalance`) moves in the same transaction as each entry, by one
conditional UPDATE, so two campaigns starting at once cannot spend the same credits:
the second finds too few and is refused, and the CHECK constraint stops any path that
forgets the condition.

1. An account's balance row is made on first use with the free allowance
   (BILLING["free_credits"]), once (a unique constraint on the grant).
2. Starting a campaign reserves its recipients' credits once (`reserve_for_campaign`),
   not per message: the hot path never touches the balance.
3. The available credits are always the sum of the ledger's `credits`; a spend row
   moves nothing (the reservation did) and says how many messages went in `messages`.
4. Cancelling returns the unsent ones (`settle_campaign`); a finished campaign's
   reservation is settled as spent, the unsent ones returned.
5. Spending that leaves the balance below the account's automatic recharge threshold
   queues the recharge job once it commits (billing.recharge).
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from tidings.accounts.models import Account
from tidings.billing import dunning, recharge
from tidings.billing.models import CreditBalance, CreditEntry, Order, Subscription

K = CreditEntry.Kind


class NotEnoughCredits(ValueError):
    """The account has fewer credits than the work needs; the message says how many."""


def balance_of(account: Account) -> CreditBalance:
    """The account's balance, made with its free allowance the first time."""
    found = CreditBalance.objects.filter(account=account).first()
    if found is not None:
        return found
    free = max(0, int(settings.BILLING["free_credits"]))
    try:
        with transaction.atomic():
            made = CreditBalance.objects.create(account=account, available=free)
            CreditEntry.objects.create(account=account, kind=K.GRANT, credits=free)
            return made
    except IntegrityError:
        # Made by a concurrent first use: that one granted the allowance.
        return CreditBalance.objects.get(account=account)


def _add(account: Account, credits: int, reserved: int = 0) -> None:
    balance_of(account)
    CreditBalance.objects.filter(account=account).update(
        available=F("available") + credits, reserved=F("reserved") + reserved
    )


def add_purchase(order: Order) -> None:
    """Credit a paid order's credits (in the caller's transaction; once per order)."""
    if order.credits:
        CreditEntry.objects.create(
            account=order.account, kind=K.PURCHASE, credits=order.credits, order=order
        )
        _add(order.account, order.credits)


def take_back_refund(order: Order) -> int:
    """Take back a refunded order's credits, as many as are left (some may be spent)."""
    if not order.credits:
        return 0
    balance = CreditBalance.objects.select_for_update().get(account=order.account)
    taken = min(order.credits, balance.available)
    CreditEntry.objects.create(account=order.account, kind=K.REFUND, credits=-taken, order=order)
    _add(order.account, -taken)
    return taken


def active_plan(account: Account) -> Subscription | None:
    return (
        Subscription.objects.filter(account=account, status=Subscription.Status.ACTIVE)
        .select_related("offer")
        .first()
    )


def reserve_for_campaign(account: Account, campaign_id: int, credits: int) -> None:
    """Hold `credits` for a campaign that starts, in the caller's transaction:
    NotEnoughCredits when the balance is short, and nothing changes. A negative number
    is a caller's bug that would mint credits: refused."""
    if credits < 0:
        raise ValueError(f"cannot reserve {credits} credits")
    balance_of(account)
    taken = CreditBalance.objects.filter(account=account, available__gte=credits).update(
        available=F("available") - credits, reserved=F("reserved") + credits
    )
    if not taken:
        have = CreditBalance.objects.get(account=account).available
        raise NotEnoughCredits(have)
    CreditEntry.objects.create(
        account=account, kind=K.RESERVE, credits=-credits, campaign_id=campaign_id
    )
    recharge.queue_if_below(account)


def spend_for_step(account: Account, campaign_id: int, wanted: int) -> int:
    """Pay for `wanted` messages of an automation's step, in the caller's transaction:
    as many as the balance holds (all of them on a plan), spent at once, since an
    automation never finishes to settle a reservation. Returns how many were paid; the
    contacts beyond wait for their step until credits come (all of them while sending
    is suspended for an unpaid renewal: billing.dunning)."""
    if wanted <= 0 or dunning.suspension(account) is not None:
        return 0
    if not needs_credits(account):
        return wanted
    balance_of(account)
    balance = CreditBalance.objects.select_for_update().get(account=account)
    paid = min(wanted, balance.available)
    if paid:
        CreditBalance.objects.filter(account=account).update(available=F("available") - paid)
        CreditEntry.objects.create(
            account=account, kind=K.STEP, credits=-paid, messages=paid, campaign_id=campaign_id
        )
        recharge.queue_if_below(account)
    return paid


def reserved_for(campaign_id: int) -> int:
    entry = CreditEntry.objects.filter(campaign_id=campaign_id, kind=K.RESERVE).first()
    return -entry.credits if entry is not None else 0


def settle_campaign(account: Account, campaign_id: int, *, sent: int) -> int:
    """The campaign is over (cancelled or finished): `sent` credits are spent, the
    rest of its reservation returns to the balance. Once per campaign; returns the
    credits returned."""
    held = reserved_for(campaign_id)
    if not held or CreditEntry.objects.filter(campaign_id=campaign_id, kind=K.SPEND).exists():
        return 0
    spent = min(sent, held)
    back = held - spent
    CreditEntry.objects.create(
        account=account, kind=K.SPEND, credits=0, messages=spent, campaign_id=campaign_id
    )
    if back:
        CreditEntry.objects.create(
            account=account, kind=K.RELEASE, credits=back, campaign_id=campaign_id
        )
    CreditBalance.objects.filter(account=account).update(
        available=F("available") + back, reserved=F("reserved") - held
    )
    return back


def refusal(account: Account, recipients: int) -> str | None:
    """Why a campaign to `recipients` contacts may not start on this account's credits
    or plan, or None. Read by the checklist (the one place that says when a campaign
    may go) and again, under the balance's own condition, when it starts."""
    if not settings.BILLING["credits_required"]:
        return None
    plan = active_plan(account)
    if plan is not None:
        limit = plan.offer.contact_limit
        if limit is not None and recipients > limit:
            return _(
                "This campaign goes to %(n)s contacts; your plan %(plan)s allows %(limit)s."
            ) % {"n": recipients, "plan": plan.offer.name, "limit": limit}
        return None
    have = balance_of(account).available
    if recipients > have:
        return _("This campaign needs %(n)s credits (one per message); you have %(have)s.") % {
            "n": recipients,
            "have": have,
        }
    return None


def needs_credits(account: Account) -> bool:
    """Campaigns of this account spend credits (not on a plan, credits required)."""
    return bool(settings.BILLING["credits_required"]) and active_plan(account) is None
