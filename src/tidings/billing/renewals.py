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
   renewal opened by the periodic job (`renew_due`) when the period ends.
3. A paid renewal extends `current_period_end` by the plan's interval (`extend`: never
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
from tidings.billing import dunning
from tidings.billing.gateways import GATEWAYS, gateway
from tidings.billing.models import Offer, Order, Subscription
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


def renewal_order(sub: Subscription, *, gateway_ref: str) -> Order:
    """The renewal of the locked `sub`'s next period, made once: the one already made for
    that period, or a new one known to the gateway as `gateway_ref`."""
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
    order.save()
    audit.record(
        audit.AuditEvent.Action.CREATE,
        order,
        by=None,
        fields=["status"],
        reason=f"renewal of subscription {sub.pk} to {period_end.isoformat()}",
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
    does not renew by itself (the periodic job; idempotent). A closed account's plan is
    not renewed: closing stops all processing. Returns how many opened."""
    now = now or timezone.now()
    names = [name for name, g in GATEWAYS.items() if not g.renews_itself]
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
            order = renewal_order(sub, gateway_ref="")
            order.gateway_ref = gateway(order.gateway).start_renewal(order)
            order.save(update_fields=["gateway_ref"])
            opened += 1
    return opened
