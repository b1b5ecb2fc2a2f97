"""Renewals: a plan renews at the end of its period.

The rules, in the order the code follows them:
1. A renewal is an `Order` of the plan (`renewal_of`, `period_end`: the end of the
   period it pays for), with the billing identity and the price of the order that
   bought the plan, so it goes through the orders' one path: the gateway's signed event,
   `services.MOVES`, the invoice (`invoices.issue_for_order`), the audit. A period is
   renewed once (a unique constraint on the subscription and the period's end).
2. Who charges: Stripe renews its subscriptions itself and tells Tidings by
   `invoice.paid` / `invoice.payment_failed` (the renewal order is made from the first
   event of the gateway's invoice); a gateway that does not (the test gateway) gets each
   renewal opened by the periodic job (`renew_due`) when the period ends. A plan bought
   by bank transfer is renewed by the same job: the renewal awaits a transfer, its
   invoice is issued unpaid and mailed (as for the first transfer order), billing staff
   mark it paid, and until then it is unpaid from the start: its dunning begins at once
   (billing.dunning), as for a card that failed.
3. The VAT of a business buyer with an EU VAT number (the reverse charge) is decided
   again for each renewal Tidings opens (the test gateway, bank transfer): VIES is asked
   afresh and its answer recorded on the renewal (`VatCheck`, the consultation number
   its invoice prints). Confirmed: reverse charged; not listed any more: charged and
   invoiced with VAT, from the plan's listed price; no answer: the previous decision
   (and its valid check) stands, and the check is asked again by the VIES retry job.
   The renewal order holds the decision, so what is charged and what is invoiced agree.
   Stripe charges the price fixed at its checkout by itself: its renewals keep the
   decision of the order that bought the plan.
4. A paid renewal extends `current_period_end` by the plan's interval (`extend`: never
   backwards, so a repeat changes nothing) and ends any dunning; a failed one starts it
   (billing.dunning). A cancelled subscription is never renewed nor revived.
"""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import Account
from tidings.billing import dunning, invoices, vies
from tidings.billing.gateways import BANK_TRANSFER, GATEWAYS, gateway
from tidings.billing.models import Offer, Order, Subscription, VatCheck
from tidings.staff import audit

# Subscriptions one run of `renew_due` looks at (the rest wait for the next run).
BATCH = 500

# What is the renewal's own: its payment and its state. Every other field of the order
# that bought the plan (what was sold, at which price, to whom, how VAT applies) is
# copied, so a field a later change adds to the sale is renewed too.
OWN = frozenset(
    {
        "id",
        "uuid",
        "created_by",
        "created_at",
        "status",
        "gateway_ref",
        "payment_ref",
        "idempotency_key",
        "paid_at",
        "status_changed_at",
        "renewal_of",
        "period_end",
        "pay_url",
        "save_payment_method",
        "gateway_customer",
        "gateway_payment_method",
        "recharge",
    }
)


def copied_fields() -> list[str]:
    return [f.attname for f in Order._meta.concrete_fields if f.name not in OWN]


class RenewalRefused(ValueError):
    """A renewal that cannot be made as the gateway tells it; the message says why."""


def period_after(end: datetime, offer: Offer) -> datetime:
    """The end of the period that follows one ending at `end`."""
    step = relativedelta(years=1) if offer.period == Offer.Period.YEAR else relativedelta(months=1)
    return end + step


def ask_vies(sub: Subscription) -> vies.Answer | None:
    """VIES's answer now for the buyer of `sub`, if the reverse charge could apply to
    them (None for others). Asked before the renewal's transaction (a network call)."""
    bought = sub.order
    if not invoices.reverse_charge_possible(
        buyer_kind=bought.buyer_kind,
        vat_number=bought.vat_number,
        billing_country=bought.billing_country,
    ):
        return None
    return vies.ask(bought.vat_number)


def _decide_vat(sub: Subscription, order: Order, answer: vies.Answer) -> None:
    """The renewal `order`'s reverse charge by VIES's `answer`, and what it is charged."""
    bought = sub.order
    if answer.status == VatCheck.Status.VALID:
        order.reverse_charge = True
    elif answer.status == VatCheck.Status.INVALID:
        order.reverse_charge = False
    else:
        # No answer: the previous decision stands (never a number taken as valid that
        # was not confirmed before).
        assert order.period_end is not None
        previous = (
            Order.objects.filter(renewal_of=sub, period_end__lt=order.period_end)
            .order_by("-period_end")
            .first()
        )
        order.reverse_charge = (previous or bought).reverse_charge
    if order.reverse_charge != bought.reverse_charge:
        order.amount = invoices.amount_due(order, invoices.listed_price(bought))


def renewal_order(sub: Subscription, *, gateway_ref: str, vat: vies.Answer | None = None) -> Order:
    """The renewal of the locked `sub`'s next period, made once: the one already made for
    that period, or a new one known to the gateway as `gateway_ref`. `vat`: what VIES
    said of the buyer's number for this renewal (`ask_vies`), recorded on it."""
    period_end = period_after(sub.current_period_end, sub.offer)
    found = Order.objects.select_for_update().filter(renewal_of=sub, period_end=period_end).first()
    if found is not None:
        if gateway_ref and found.gateway_ref and found.gateway_ref != gateway_ref:
            raise RenewalRefused(
                _("The period to %(end)s is already renewed by another payment.")
                % {"end": period_end.date().isoformat()}
            )
        return found
    bought = sub.order
    order = Order(
        **{f: getattr(bought, f) for f in copied_fields()},
        renewal_of=sub,
        period_end=period_end,
        gateway_ref=gateway_ref,
        idempotency_key=f"renewal-{sub.pk}-{int(period_end.timestamp())}",
        created_by=None,
    )
    if vat is not None:
        _decide_vat(sub, order, vat)
    order.save()
    if vat is not None:
        vies.record(order, vat)
    audit.record(
        audit.AuditEvent.Action.CREATE,
        order,
        by=None,
        fields=["status", "reverse_charge", "amount"],
        reason=f"renewal of subscription {sub.pk} to {period_end.isoformat()}"
        + (f"; VIES: {vat.status}, reverse charge: {order.reverse_charge}" if vat else ""),
        account_id=order.account_id,
    )
    return order


def extend(order: Order) -> Subscription | None:
    """The renewal `order` is paid: its subscription runs to the period's end (never
    backwards) and its dunning ends. In the payment's transaction."""
    if order.renewal_of_id is None or order.period_end is None:
        return None
    sub = Subscription.objects.select_for_update().filter(pk=order.renewal_of_id).first()
    if sub is None:
        return None
    if order.period_end > sub.current_period_end:
        sub.current_period_end = order.period_end
        sub.save(update_fields=["current_period_end"])
        audit.record(
            audit.AuditEvent.Action.UPDATE,
            sub,
            by=None,
            fields=["current_period_end"],
            reason=f"renewed by order {order.reference}",
            account_id=sub.account_id,
        )
    dunning.end(sub)
    return sub


def renew_due(now: datetime | None = None) -> int:
    """Open the renewal of every active plan whose period has ended, at a gateway that
    does not renew by itself or by bank transfer (the periodic job; idempotent: the
    subscription is locked and a period renewed once, a unique constraint). A closed
    account's plan is not renewed: closing stops all processing. Returns how many
    opened."""
    now = now or timezone.now()
    names = [name for name, g in GATEWAYS.items() if not g.renews_itself] + [BANK_TRANSFER]
    due = (
        Subscription.objects.filter(
            status=Subscription.Status.ACTIVE,
            current_period_end__lte=now,
            order__gateway__in=names,
            payment_failed_at__isnull=True,
            account__status=Account.Status.ACTIVE,
        )
        .exclude(
            # Opened already, waiting for its outcome (a renewal pays for a period beyond the
            # current one until it is paid): such plans never fill the batch.
            Exists(
                Order.objects.filter(
                    renewal_of=OuterRef("pk"), period_end__gt=OuterRef("current_period_end")
                )
            )
        )
        .order_by("pk")
    )
    opened = 0
    for pk in list(due.values_list("pk", flat=True)[:BATCH]):
        found = Subscription.objects.select_related("order").filter(pk=pk).first()
        vat = ask_vies(found) if found is not None else None
        with transaction.atomic():
            sub = (
                Subscription.objects.select_for_update(of=("self",))
                .select_related("offer", "order")
                .filter(pk=pk, status=Subscription.Status.ACTIVE)
                .first()
            )
            if sub is None or sub.current_period_end > now:
                continue
            period_end = period_after(sub.current_period_end, sub.offer)
            if Order.objects.filter(renewal_of=sub, period_end=period_end).exists():
                continue  # opened before, waiting for its outcome
            order = renewal_order(sub, gateway_ref="", vat=vat)
            if order.gateway == BANK_TRANSFER:
                _await_transfer(sub, order, now)
            else:
                order.gateway_ref = gateway(order.gateway).start_renewal(order)
                order.save(update_fields=["gateway_ref"])
            opened += 1
    return opened


def _await_transfer(sub: Subscription, order: Order, now: datetime) -> None:
    """The renewal `order` of the locked `sub`, bought by bank transfer: it awaits the
    transfer with its invoice issued unpaid (mailed), and is unpaid from now on."""
    order.status = Order.Status.AWAITING_TRANSFER
    order.status_changed_at = now
    order.save(update_fields=["status", "status_changed_at"])
    invoices.issue_for_order(order, paid=False)
    dunning.start(sub, now=now)
