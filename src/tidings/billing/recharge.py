"""Automatic recharge: when an account's credits fall below the threshold it chose, the
credit pack it chose is ordered and charged, off-session, to the payment method it
saved at the gateway when it paid an earlier pack (never card data at Tidings: P10,
only the gateway's customer and payment method ids, on that order).

The rules, in the order the code follows them:
1. Turning it on (`turn_on`) needs a paid order of a pack on the configured gateway
   whose payment method the gateway kept (the buyer asked for it when ordering), an
   offered pack sold in that order's currency, a threshold of at least one credit, and
   the customer's consent to the words shown (`consent_wording`): who, when and those
   words are kept, and audited. Turning it off is one click, audited too.
2. Spending credits (a campaign's reservation, an automation's step: billing.credits)
   that leaves fewer than the threshold queues the recharge job once the spending
   commits (`queue_if_below`).
3. The job (`services.run_recharge`) locks the setting: at most one recharge in flight
   per account, at most BILLING["recharge_per_day"] a day and
   BILLING["recharge_per_month"] in 30 days, never for a closed or restricted account
   nor one whose plan's renewal is unpaid (dunning). It places the order, commits it,
   then charges it with the order's idempotency key: two jobs at once, or a job run
   again, make one charge.
4. Only the gateway's signed webhook (payment_intent.succeeded) fulfils it, as every
   order: credits, the invoice, the mails.
5. A declined charge (or authentication the customer is not there to give) turns it
   off (`turned_off_by_failure`), says why in Billing and mails the account's users
   through the one pipeline; nothing is charged again until they turn it on again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from tidings.accounts.mailability import account_users
from tidings.accounts.models import Account, User
from tidings.billing import invoices
from tidings.billing.gateways import gateway
from tidings.billing.models import AutoRecharge, CreditBalance, Offer, Order, Price, Subscription
from tidings.core import jobs
from tidings.core.mail import Purpose, send_templated
from tidings.staff import audit

RUN = "tidings.billing.tasks.run_recharge"
# The largest threshold taken: beyond it, a typo (a recharge after every campaign).
MAX_THRESHOLD = 10_000_000


class RechargeRefused(ValueError):
    """Automatic recharge cannot be set as asked; the message says why."""


def setting_of(account: Account) -> AutoRecharge | None:
    return AutoRecharge.objects.filter(account=account).select_related("offer").first()


def payment_orders(account: Account) -> list[Order]:
    """The account's paid orders whose payment method the configured gateway keeps for
    later charges, newest first: what a recharge may be charged to."""
    return list(
        Order.objects.filter(
            account=account,
            status=Order.Status.PAID,
            gateway=settings.BILLING["gateway"],
            recharge=False,
        )
        .exclude(gateway_customer="")
        .exclude(gateway_payment_method="")
        .select_related("offer")
        .order_by("-paid_at", "-pk")
    )


def amount_of(setting: AutoRecharge) -> Price | None:
    """What one recharge of `setting` costs now, or None when its pack is no longer
    offered in its currency."""
    order = setting.payment_order
    found = next((p for o, p in packs_for(order) if o.pk == setting.offer_id), None)
    return amount_for(order, setting.offer, found) if found is not None else None


def packs_for(order: Order) -> list[tuple[Offer, Price]]:
    """The packs on offer in `order`'s currency, with their price in it."""
    prices = Price.objects.filter(
        currency=order.currency, offer__kind=Offer.Kind.PACK, offer__active=True
    ).select_related("offer")
    return [(p.offer, p) for p in prices.order_by("offer__position", "offer__pk")]


def amount_for(order: Order, offer: Offer, price: Price) -> Price:
    """What one recharge of `offer` costs, VAT as `order` (the billing identity) pays
    it: the amount the gateway will charge and the invoice will say."""
    probe = Order(offer=offer, reverse_charge=order.reverse_charge)
    return Price(
        offer=offer, currency=price.currency, amount=invoices.amount_due(probe, price.amount)
    )


def consent_wording(order: Order, offer: Offer, price: Price, threshold: int) -> str:
    """The words the customer agrees to, in the current language: shown on the form,
    and kept as they were shown."""
    due = amount_for(order, offer, price)
    return _(
        "I agree that %(operator)s charges %(amount)s %(currency)s for %(pack)s to the "
        "payment method kept by the payment provider with order %(ref)s, while I am not "
        "there, each time the account's credits fall below %(threshold)s: at most "
        "%(day)s times a day and %(month)s times in 30 days, until I turn automatic "
        "recharge off."
    ) % {
        "operator": settings.OPERATOR["name"],
        "amount": due.amount,
        "currency": due.currency,
        "pack": offer.name,
        "ref": order.reference,
        "threshold": threshold,
        "day": settings.BILLING["recharge_per_day"],
        "month": settings.BILLING["recharge_per_month"],
    }


def _threshold(value: object) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise RechargeRefused(_("Give the threshold as a whole number of credits.")) from None
    if number < 1 or number > MAX_THRESHOLD:
        raise RechargeRefused(
            _("The threshold is a number of credits from 1 to %(max)s.") % {"max": MAX_THRESHOLD}
        )
    return number


@dataclass(frozen=True)
class Choice:
    """What the customer asked for, checked: the order whose payment method is charged,
    the pack, its price in that order's currency, and the threshold."""

    order: Order
    offer: Offer
    price: Price
    threshold: int

    @property
    def wording(self) -> str:
        return consent_wording(self.order, self.offer, self.price, self.threshold)

    @property
    def amount(self) -> Price:
        return amount_for(self.order, self.offer, self.price)


def check(
    account: Account, *, payment_order: object, offer_id: object, threshold: object
) -> Choice:
    """The customer's choice for `account`, checked, or RechargeRefused saying why."""
    if not account.may_process:
        raise RechargeRefused(_("This account cannot be recharged now."))
    order = next((o for o in payment_orders(account) if str(o.uuid) == str(payment_order)), None)
    if order is None:
        raise RechargeRefused(
            _("Choose a payment method kept with one of this account's paid orders.")
        )
    try:
        wanted = int(str(offer_id))
    except ValueError:
        wanted = -1
    found = next(((o, p) for o, p in packs_for(order) if o.pk == wanted), None)
    if found is None:
        raise RechargeRefused(
            _("Choose a credit pack on offer in %(currency)s.") % {"currency": order.currency}
        )
    return Choice(order=order, offer=found[0], price=found[1], threshold=_threshold(threshold))


def turn_on(
    account: Account,
    *,
    by: User,
    payment_order: object,
    offer_id: object,
    threshold: object,
    agreed: bool,
) -> AutoRecharge:
    """Turn automatic recharge on (or change it) for `account`, as `by` asked and agreed
    to: RechargeRefused, and nothing changes, unless every part is right."""
    choice = check(account, payment_order=payment_order, offer_id=offer_id, threshold=threshold)
    if not agreed:
        raise RechargeRefused(_("Automatic recharge needs your agreement to the charges."))
    order, offer, number = choice.order, choice.offer, choice.threshold
    wording = choice.wording
    with transaction.atomic():
        setting = AutoRecharge.objects.select_for_update().filter(account=account).first()
        action = audit.AuditEvent.Action.UPDATE if setting else audit.AuditEvent.Action.CREATE
        setting = setting or AutoRecharge(account=account)
        setting.enabled = True
        setting.offer = offer
        setting.threshold = number
        setting.payment_order = order
        setting.consented_by = by
        setting.consented_at = timezone.now()
        setting.consent_text = wording
        setting.consent_language = translation.get_language() or ""
        setting.turned_off_at = None
        setting.turned_off_reason = ""
        setting.failed_order = None
        setting.save()
        audit.record(
            action,
            setting,
            by=by,
            fields=["enabled", "offer", "threshold", "payment_order", "consent_text"],
            reason=f"automatic recharge on, consent given: {wording}"[:500],
            account_id=account.pk,
        )
    queue_if_below(account)  # already below the new threshold: recharged now
    return setting


def turn_off(account: Account, *, by: User | None, reason: str) -> bool:
    """Turn automatic recharge off; False if it was not on. Audited."""
    with transaction.atomic():
        setting = (
            AutoRecharge.objects.select_for_update().filter(account=account, enabled=True).first()
        )
        if setting is None:
            return False
        _off(setting, why=reason, by=by, audit_reason=f"automatic recharge off: {reason}")
    return True


def _off(
    setting: AutoRecharge,
    *,
    why: str,
    by: User | None,
    audit_reason: str,
    failed_order: Order | None = None,
) -> None:
    """Turn the (locked) setting off, saying why, audited."""
    setting.enabled = False
    setting.turned_off_at = timezone.now()
    setting.turned_off_reason = why[:300]
    fields = ["enabled", "turned_off_at", "turned_off_reason"]
    if failed_order is not None:
        setting.failed_order = failed_order
        fields.append("failed_order")
    setting.save(update_fields=fields)
    audit.record(
        audit.AuditEvent.Action.UPDATE,
        setting,
        by=by,
        fields=["enabled"],
        reason=audit_reason[:500],
        account_id=setting.account_id,
    )


def turned_off_by_failure(order: Order, code: str) -> None:
    """The recharge `order` could not be charged (in the caller's transaction): turn the
    account's automatic recharge off and tell its users, once per order."""
    setting = AutoRecharge.objects.select_for_update().filter(account_id=order.account_id).first()
    if setting is None:
        return
    if setting.enabled:
        _off(
            setting,
            why=code,
            by=None,
            audit_reason=f"automatic recharge off: order {order.reference} declined ({code})",
            failed_order=order,
        )
    users = list(account_users(order.account_id, Purpose.SERVICE))
    send_templated(
        "billing/mail/recharge_failed",
        [u.email for u in users],
        {"order": order, "authentication": code == "authentication_required"},
        purpose=Purpose.SERVICE,
        account_id=order.account_id,
        user_ids={u.email: u.pk for u in users},
        key=f"recharge-failed:{order.pk}",
    )


def queue_if_below(account: Account) -> bool:
    """Queue the recharge job (after the caller's transaction commits) when the account's
    automatic recharge is on and its credits are below the threshold. The job decides
    again, under its lock: this only saves it a run."""
    available = (
        CreditBalance.objects.filter(account=account).values_list("available", flat=True).first()
    )
    if available is None:
        return False
    if not AutoRecharge.objects.filter(
        account=account, enabled=True, threshold__gt=available
    ).exists():
        return False
    jobs.enqueue(RUN, account.pk)
    return True


# Reasons that stop a new recharge but not the charge of one already placed (by its
# key: Stripe replays it if it was made): it counts already, and was due when placed.
NOT_BELOW = "not below the threshold"
DAY_LIMIT = "the day's limit is reached"
MONTH_LIMIT = "the month's limit is reached"
RETRY_DESPITE = frozenset({NOT_BELOW, DAY_LIMIT, MONTH_LIMIT})


def why_not(setting: AutoRecharge | None, now: datetime) -> str:
    """Why the account of `setting` (locked) is not recharged now, or ""."""
    if setting is None or not setting.enabled:
        return "off"
    account = setting.account
    if not account.may_process:
        return "account closed or restricted"
    if Subscription.objects.filter(
        account=account, status=Subscription.Status.ACTIVE, payment_failed_at__isnull=False
    ).exists():
        return "a renewal is unpaid (dunning)"
    if setting.payment_order.status != Order.Status.PAID:
        return "the order that kept the payment method was refunded"
    if amount_of(setting) is None:
        return "the pack is no longer offered in its currency"
    balance = CreditBalance.objects.filter(account=account).first()
    if balance is None or balance.available >= setting.threshold:
        return NOT_BELOW
    if setting.payment_order.gateway != settings.BILLING["gateway"] or not (
        gateway(setting.payment_order.gateway).saves_payment_methods
    ):
        return "the payment method's gateway is not in use"
    made = Order.objects.filter(account=account, recharge=True)
    if made.filter(created_at__gt=now - timedelta(days=1)).count() >= int(
        settings.BILLING["recharge_per_day"]
    ):
        return DAY_LIMIT
    if made.filter(created_at__gt=now - timedelta(days=30)).count() >= int(
        settings.BILLING["recharge_per_month"]
    ):
        return MONTH_LIMIT
    return ""


def in_flight(account_id: int) -> Order | None:
    """The account's recharge that the gateway has not answered yet, if any."""
    return (
        Order.objects.filter(
            account_id=account_id,
            recharge=True,
            status__in=(Order.Status.CREATED, Order.Status.PROCESSING),
        )
        .order_by("pk")
        .first()
    )
