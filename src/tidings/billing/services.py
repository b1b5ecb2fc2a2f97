"""Orders and the gateway's webhooks (P4, P10).

The protocol of a webhook, in the order the code follows it:
1. The raw request (body, headers, remote address) is stored and committed before
   anything else: untrusted, but kept for audit and replay.
2. The signature is checked (any configured secret, within the tolerance); a forged,
   stale or unreadable request is refused and changes nothing else.
3. In one transaction: a `ProcessedEvent` row for the event id (a unique constraint:
   the same event delivered five times, or twice at once, is applied once), then the
   order, locked, moves only along `MOVES`: a late or repeated event of a state already
   left changes nothing, and a cancelled subscription stays cancelled.
4. Paid is reached only here (or by billing staff for a bank transfer): never by the
   customer coming back to the success page. The amount and currency must be the
   order's, else the event is refused.
5. A plan's renewal is an order too (billing.renewals): the gateway's invoice events
   move it like the others; only a renewal may go from failed to paid (the customer
   pays the failed invoice later), which ends its dunning (billing.dunning).
6. An automatic recharge is an order too (billing.recharge): charged off-session to a
   saved payment method by `run_recharge`, paid only by the gateway's signed
   payment_intent.succeeded; a decline turns automatic recharge off.
"""

from __future__ import annotations

import logging
import secrets
import uuid as uuid_module
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django_countries.data import COUNTRIES

from tidings.accounts.mailability import account_users
from tidings.accounts.models import User
from tidings.billing import cards, credits, dunning, invoices, recharge, renewals, vies
from tidings.billing.gateways import (
    BANK_TRANSFER,
    GatewayDeclined,
    GatewayError,
    GatewayEvent,
    TestGateway,
    WebhookRejected,
    cents,
    gateway,
)
from tidings.billing.models import (
    AutoRecharge,
    Offer,
    Order,
    Price,
    ProcessedEvent,
    Subscription,
    VatCheck,
    WebhookEvent,
)
from tidings.core import collection
from tidings.core.mail import Purpose, send_templated
from tidings.core.text import nul_at
from tidings.staff import audit

log = logging.getLogger(__name__)

S = Order.Status

# Where each outcome may come from; anything else is ignored (late or repeated news).
MOVES: dict[str, frozenset[str]] = {
    S.PROCESSING: frozenset({S.CREATED}),
    S.PAID: frozenset({S.CREATED, S.PROCESSING, S.AWAITING_TRANSFER}),
    S.FAILED: frozenset({S.CREATED, S.PROCESSING}),
    S.EXPIRED: frozenset({S.CREATED}),
    S.REFUNDED: frozenset({S.PAID}),
}

ORDER_PURPOSES = {
    "billing name": ("invoices and the accounting obligation", "legal obligation"),
    "billing address": ("invoices and the accounting obligation", "legal obligation"),
    "country": ("invoices and the VAT that applies", "legal obligation"),
    "VAT number": ("invoices: reverse charge for businesses, only if given", "legal obligation"),
}


class OrderRefused(ValueError):
    """An order that cannot be placed or paid as asked; the message says why."""


def _text(value: str, limit: int) -> str:
    value = (value or "").strip()
    if cards.find_card_numbers(value):
        # P10: never stored, not even by mistake; the customer is told why.
        raise OrderRefused(
            _("Never type a card number here: you pay on the payment provider's page.")
        )
    if nul_at(value) is not None:
        raise OrderRefused(_("The text contains a character that cannot be stored."))
    if len(value) > limit:
        raise OrderRefused(_("A field is longer than %(n)d characters.") % {"n": limit})
    return value


def price_of(offer: Offer, currency: str) -> Price:
    price = offer.prices.filter(currency=currency.upper()).first()
    if price is None:
        raise OrderRefused(
            _("%(offer)s is not sold in %(currency)s.")
            % {"offer": offer.name, "currency": currency}
        )
    return price


def place_order(
    *,
    account_id: int,
    offer_id: int,
    currency: str,
    by: User,
    buyer_kind: str,
    billing_name: str,
    billing_address: str,
    billing_country: str,
    vat_number: str = "",
    method: str = "",
    save_payment_method: bool = False,
) -> Order:
    """Record an order with its billing identity (asked only here: P1, recorded as a
    point of collection: P2). `method` is the gateway or BANK_TRANSFER;
    `save_payment_method` asks the gateway to keep the card of a pack's payment for
    automatic recharges (billing.recharge)."""
    offer = Offer.objects.filter(pk=offer_id, active=True).first()
    if offer is None:
        raise OrderRefused(_("That offer is not available."))
    if buyer_kind not in Order.BuyerKind.values:
        raise OrderRefused(_("Say whether a company or a person is buying."))
    name = _text(billing_name, 200)
    address = _text(billing_address, 1000)
    country = _text(billing_country, 2).upper()
    vat = _text(vat_number, 32).replace(" ", "").upper()
    try:
        vat = invoices.check_vat_number(vat)
    except invoices.InvoiceRefused as error:
        raise OrderRefused(str(error)) from None
    if not name or not address:
        raise OrderRefused(_("Give the billing name and address."))
    if country not in COUNTRIES:
        raise OrderRefused(_("Choose the billing country from the list."))
    method = method or settings.BILLING["gateway"]
    if method == BANK_TRANSFER and not settings.BILLING["bank_transfer"]:
        raise OrderRefused(_("Payment by bank transfer is not offered."))
    if method not in (settings.BILLING["gateway"], BANK_TRANSFER):
        # Only the configured gateway takes orders: another one's order could be paid
        # nowhere (and "stripe" without its keys fails at the hosted page).
        raise OrderRefused(_("Choose one of the payment methods offered."))
    price = price_of(offer, currency)
    vies_answer = _ask_vies(buyer_kind=buyer_kind, vat_number=vat, billing_country=country)
    with transaction.atomic():
        order = Order(
            account_id=account_id,
            created_by=by,
            offer=offer,
            currency=price.currency,
            amount=price.amount,
            credits=offer.credits,
            gateway=method,
            idempotency_key=secrets.token_hex(16),
            status=S.AWAITING_TRANSFER if method == BANK_TRANSFER else S.CREATED,
            buyer_kind=buyer_kind,
            billing_name=name,
            billing_address=address,
            billing_country=country,
            vat_number=vat,
            reverse_charge=vies_answer is not None and vies_answer.status == VatCheck.Status.VALID,
            save_payment_method=bool(save_payment_method)
            and offer.kind == Offer.Kind.PACK
            and method != BANK_TRANSFER
            and gateway(method).saves_payment_methods,
            listed_amount=price.amount,
        )
        # The gateway charges what the invoice will say: VAT added where it applies.
        order.amount = invoices.amount_due(order, price.amount)
        order.save()
        if vies_answer is not None:
            _record_vies(order, vies_answer)
        items = ["billing name", "billing address", "country"] + (["VAT number"] if vat else [])
        collection.record(
            collection.Collection(
                point="order",
                items=[collection.Item(i, *ORDER_PURPOSES[i]) for i in items],
                account=order.account,
                user=by,
            )
        )
        audit.record(
            audit.AuditEvent.Action.CREATE,
            order,
            by=by,
            fields=["billing_name", "billing_address", "billing_country", "vat_number"],
            account_id=account_id,
        )
        if order.status == S.AWAITING_TRANSFER:
            # The customer needs the invoice to pay it: issued unpaid now.
            invoices.issue_for_order(order, paid=False)
    return order


def _ask_vies(*, buyer_kind: str, vat_number: str, billing_country: str) -> vies.Answer | None:
    """VIES's answer for a buyer the reverse charge would apply to (None for others). A
    number VIES does not list is refused: the buyer corrects it or pays VAT without it."""
    if not invoices.reverse_charge_possible(
        buyer_kind=buyer_kind, vat_number=vat_number, billing_country=billing_country
    ):
        return None
    answer = vies.ask(vat_number)
    if answer.status == VatCheck.Status.INVALID:
        raise OrderRefused(
            _(
                "VIES, the EU's register of VAT numbers, does not list %(n)s for trade "
                "between EU countries: check the number, or leave it out to pay with VAT."
            )
            % {"n": vat_number}
        )
    return answer


def _record_vies(order: Order, answer: vies.Answer, now: datetime | None = None) -> None:
    vies.record(order, answer, now)


def retry_vies_checks(now: datetime | None = None, *, limit: int = 100) -> int:
    """Ask VIES again about the numbers it did not answer for: the record then says what
    VIES said and when (the order keeps the VAT it was charged: a pending number is never
    taken as valid). Returns how many were asked."""
    now = now or timezone.now()
    due = VatCheck.objects.filter(
        status=VatCheck.Status.PENDING, next_try_at__lte=now
    ).select_related("order")[:limit]
    asked = 0
    for check in due:
        answer = vies.ask(check.order.vat_number)
        with transaction.atomic():
            locked = VatCheck.objects.select_for_update().get(pk=check.pk)
            if locked.status != VatCheck.Status.PENDING:
                continue
            locked.attempts += 1
            locked.status = answer.status
            locked.error = answer.error
            if answer.status == VatCheck.Status.PENDING:
                locked.next_try_at = vies.next_try(locked.attempts, now)
            else:
                locked.checked_at, locked.next_try_at = now, None
                locked.consultation = answer.consultation
            locked.save()
            audit.record(
                audit.AuditEvent.Action.UPDATE,
                locked,
                by=None,
                fields=["status"],
                account_id=check.order.account_id,
            )
        asked += 1
    return asked


def start_checkout(order: Order, *, success_url: str, cancel_url: str) -> str:
    """The hosted page's address for `order`. A repeat (a double click on "Pay", a
    second tab) gets the same session: the gateway replays by the idempotency key."""
    if order.status != S.CREATED:
        raise OrderRefused(
            _("This order cannot be paid now (%(s)s).") % {"s": order.get_status_display()}
        )
    try:
        checkout = gateway(order.gateway).create_checkout(
            order, success_url=success_url, cancel_url=cancel_url
        )
    except GatewayError as error:
        log.warning("order %s: the gateway refused the checkout: %s", order.pk, error)
        raise OrderRefused(
            _("The payment provider could not take the order now; nothing was charged. Try again.")
        ) from None
    if order.gateway_ref != checkout.session_id:
        Order.objects.filter(pk=order.pk, gateway_ref="").update(gateway_ref=checkout.session_id)
        order.refresh_from_db()
        if order.gateway_ref != checkout.session_id:
            raise OrderRefused(_("This order is already being paid in another window."))
    return checkout.url


# Webhooks ------------------------------------------------------------------------------------


def receive_webhook(
    gateway_name: str, body: bytes, headers: Mapping[str, str], *, remote_ip: str | None = None
) -> tuple[int, str]:
    """Store, verify, apply once (the module's protocol). Returns the HTTP status and
    what happened, for the gateway's log."""
    # Stored as it came, less any card number (P10: a gateway never sends one, and if
    # it did, Tidings would not keep it; the signature is checked on the original).
    raw = WebhookEvent.objects.create(
        gateway=gateway_name,
        remote_ip=remote_ip,
        headers={
            k: cards.redact(v)
            for k, v in headers.items()
            if k.lower() not in {"cookie", "authorization"}
        },
        body=cards.redact(body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")),
    )
    try:
        event = gateway(gateway_name).verify(body, headers)
    except (WebhookRejected, KeyError) as error:
        WebhookEvent.objects.filter(pk=raw.pk).update(outcome=f"refused: {error}"[:500])
        return 400, "refused"
    try:
        with transaction.atomic():
            ProcessedEvent.objects.create(gateway=gateway_name, event_id=event.id)
            outcome, account_id = _apply(gateway_name, event)
            ProcessedEvent.objects.filter(gateway=gateway_name, event_id=event.id).update(
                account_id=account_id
            )
    except IntegrityError:
        outcome, account_id = "duplicate: applied before", None
    except OrderRefused as refused:
        # Nothing of the event was applied (the transaction rolled back): a later
        # delivery, if the gateway corrects itself, is looked at again.
        outcome, account_id = f"refused: {refused}", None
        WebhookEvent.objects.filter(pk=raw.pk).update(
            valid=True, event_id=event.id, event_type=event.type[:100], outcome=outcome[:500]
        )
        return 400, outcome
    WebhookEvent.objects.filter(pk=raw.pk).update(
        valid=True,
        processed=True,
        event_id=event.id,
        event_type=event.type[:100],
        outcome=outcome[:500],
        account_id=account_id,
    )
    return 200, outcome


def _order_for(gateway_name: str, event: GatewayEvent) -> Order | None:
    orders = Order.objects.select_for_update().filter(gateway=gateway_name)
    if event.session_id:
        return orders.filter(gateway_ref=event.session_id).first()
    if event.payment_ref:
        return orders.filter(payment_ref=event.payment_ref).first()
    return None


def _apply(gateway_name: str, event: GatewayEvent) -> tuple[str, int | None]:
    kind = event.type
    if kind.startswith("customer.subscription."):
        return _subscription_event(event)
    if kind in ("invoice.paid", "invoice.payment_failed"):
        return _renewal_event(gateway_name, event)
    if kind in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        return _payment_intent_event(gateway_name, event)
    order = _order_for(gateway_name, event)
    if order is None:
        return "ignored: no order of this gateway", None
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        _same_amount(order, event)
        if event.payment_ref and not order.payment_ref:
            order.payment_ref = event.payment_ref
        if order.save_payment_method and event.customer_ref and not order.gateway_customer:
            Order.objects.filter(pk=order.pk).update(gateway_customer=event.customer_ref)
            order.gateway_customer = event.customer_ref
        if kind == "checkout.session.completed" and event.payment_status == "unpaid":
            return _move(order, S.PROCESSING), order.account_id  # paid later, or failed
        outcome = _move(order, S.PAID)
        if order.status == S.PAID and event.subscription_ref:
            Subscription.objects.filter(order=order).update(gateway_ref=event.subscription_ref)
        return outcome, order.account_id
    if kind == "checkout.session.async_payment_failed":
        return _move(order, S.FAILED), order.account_id
    if kind == "checkout.session.expired":
        return _move(order, S.EXPIRED), order.account_id
    if kind in ("charge.refunded", "refund.created"):
        return _refunded(order, event), order.account_id
    return f"ignored: {kind[:80]}", order.account_id


def _refunded(order: Order, event: GatewayEvent) -> str:
    """A full refund ends the order and takes its credits back; a partial one (the
    operator gave some money back) changes neither: it is in the gateway's records and
    the raw webhook, for billing staff. A refund in another currency is no refund of
    this order."""
    if event.currency and event.currency != order.currency:
        raise OrderRefused(
            _("The refund's currency (%(rc)s) is not the order's (%(dc)s).")
            % {"rc": event.currency, "dc": order.currency}
        )
    if event.amount_cents is not None and event.amount_cents < cents(order.amount):
        return f"ignored: partial refund of order {order.reference} ({event.amount_cents})"
    return _move(order, S.REFUNDED)


def _same_amount(order: Order, event: GatewayEvent) -> None:
    if event.amount_cents != cents(order.amount) or event.currency != order.currency:
        raise OrderRefused(
            _("The payment (%(paid)s %(pc)s) is not the order's (%(due)s %(dc)s).")
            % {
                "paid": event.amount_cents,
                "pc": event.currency,
                "due": cents(order.amount),
                "dc": order.currency,
            }
        )


def _payment_intent_event(gateway_name: str, event: GatewayEvent) -> tuple[str, int | None]:
    """A payment's outcome. An automatic recharge is paid (or fails) by it; for a
    checkout's payment whose card the buyer asked to keep, it names the saved payment
    method (the checkout's own events fulfil that order)."""
    orders = Order.objects.select_for_update().filter(gateway=gateway_name)
    order = None
    if event.order_uuid:
        order = orders.filter(uuid__in=_uuids(event.order_uuid)).first()
    if order is None and event.payment_ref:
        order = orders.filter(recharge=True, gateway_ref=event.payment_ref).first() or (
            orders.filter(payment_ref=event.payment_ref).first()
        )
    if order is None:
        return "ignored: no order of this gateway", None
    known = order.gateway_ref if order.recharge else order.payment_ref
    if known and event.payment_ref and event.payment_ref != known:
        # Another payment naming this order: not the one made for it.
        return f"ignored: not the payment of order {order.reference}", order.account_id
    if not order.recharge:
        if (
            event.type == "payment_intent.succeeded"
            and order.save_payment_method
            and event.payment_method_ref
        ):
            _same_amount(order, event)
            Order.objects.filter(pk=order.pk).update(
                gateway_payment_method=event.payment_method_ref,
                gateway_customer=order.gateway_customer or event.customer_ref,
            )
            return f"order {order.reference}: payment method kept", order.account_id
        return f"ignored: {event.type} of a checkout", order.account_id
    _same_amount(order, event)
    if event.payment_ref and not order.gateway_ref:
        order.gateway_ref = order.payment_ref = event.payment_ref
        Order.objects.filter(pk=order.pk).update(
            gateway_ref=event.payment_ref, payment_ref=event.payment_ref
        )
    if event.type == "payment_intent.succeeded":
        return _move(order, S.PAID), order.account_id
    return _move(order, S.FAILED, why="payment_failed"), order.account_id


def _uuids(value: str) -> list[str]:
    """`value` as an order's uuid, or nothing (a gateway's metadata is free text)."""
    try:
        return [str(uuid_module.UUID(value))]
    except ValueError:
        return []


def _renewal_event(gateway_name: str, event: GatewayEvent) -> tuple[str, int | None]:
    """The gateway charged (or failed to charge) a plan's next period."""
    if event.billing_reason != "subscription_cycle":
        # The first period's invoice is the checkout's; others (a plan changed at the
        # gateway, a manual invoice) are no renewal: they stay in the raw webhook.
        return f"ignored: not a renewal ({event.billing_reason[:40] or 'no reason'})", None
    if not event.invoice_ref:
        return "ignored: no invoice", None
    order = (
        Order.objects.select_for_update()
        .filter(gateway=gateway_name, gateway_ref=event.invoice_ref)
        .first()
    )
    if order is None:
        sub = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("offer", "order")
            .filter(gateway_ref=event.subscription_ref, order__gateway=gateway_name)
            .exclude(gateway_ref="")
            .first()
        )
        if sub is None:
            return "ignored: unknown subscription", None
        if sub.status == Subscription.Status.CANCELLED:
            return "ignored: a cancelled subscription stays cancelled", sub.account_id
        try:
            order = renewals.renewal_order(sub, gateway_ref=event.invoice_ref)
        except renewals.RenewalRefused as refused:
            raise OrderRefused(str(refused)) from None
    if order.renewal_of_id is None:
        return "ignored: not a renewal", order.account_id
    sub = Subscription.objects.select_for_update().get(pk=order.renewal_of_id)
    if sub.status == Subscription.Status.CANCELLED:
        return "ignored: a cancelled subscription stays cancelled", order.account_id
    _same_amount(order, event)
    if event.payment_ref:
        order.payment_ref = event.payment_ref
    if event.pay_url:
        order.pay_url = event.pay_url
    if event.type == "invoice.paid":
        return _move(order, S.PAID), order.account_id
    return _move(order, S.FAILED), order.account_id


def _move(order: Order, target: str, *, by: User | None = None, why: str = "") -> str:
    """Move the locked `order` to `target` and do what that means, or change nothing."""
    sources = MOVES[target]
    if order.renewal_of_id is not None and target == S.PAID:
        sources = sources | {S.FAILED}  # a failed renewal paid later
    if order.status not in sources:
        return f"ignored: order {order.reference} is {order.status}"
    order.status = target
    order.status_changed_at = timezone.now()
    if target == S.PAID:
        order.paid_at = order.status_changed_at
        _fulfil(order)
    elif target == S.REFUNDED:
        credits.take_back_refund(order)
        paid = order.invoices.filter(kind="invoice", status="issued").first()
        if paid is not None and not paid.credit_notes.exists():
            invoices.credit_note(paid, by=by)
        Subscription.objects.filter(order=order).update(status=Subscription.Status.CANCELLED)
    order.save(update_fields=["status", "status_changed_at", "paid_at", "payment_ref", "pay_url"])
    audit.record(
        audit.AuditEvent.Action.UPDATE,
        order,
        by=by,
        fields=["status"],
        reason=f"payment: {target}",
        account_id=order.account_id,
    )
    if target == S.FAILED and order.renewal_of_id is not None:
        # The dunning's first mail says it (once), not the order's.
        sub = Subscription.objects.select_for_update().get(pk=order.renewal_of_id)
        dunning.start(sub, now=order.status_changed_at)
    elif target == S.FAILED and order.recharge:
        # Automatic recharge is turned off, and its mail says so (once), not the order's.
        recharge.turned_off_by_failure(order, why or "declined")
    else:
        _tell(order)
    return f"order {order.reference}: {target}"


def _fulfil(order: Order) -> None:
    credits.add_purchase(order)
    if order.gateway == BANK_TRANSFER:
        invoices.mark_paid(order)
    else:
        invoices.issue_for_order(order, paid=True)
    offer = order.offer
    if order.renewal_of_id is not None:
        renewals.extend(order)
    elif offer.kind == Offer.Kind.PLAN:
        # One plan at a time: a new one replaces the old (and its dunning ends with it).
        for old in Subscription.objects.select_for_update().filter(
            account=order.account, status=Subscription.Status.ACTIVE
        ):
            dunning.end(old, why="replaced by another plan")
        Subscription.objects.filter(
            account=order.account, status=Subscription.Status.ACTIVE
        ).update(status=Subscription.Status.CANCELLED)
        Subscription.objects.create(
            account=order.account,
            offer=offer,
            order=order,
            current_period_end=renewals.period_after(timezone.now(), offer),
        )


def _tell(order: Order) -> None:
    """The order's news to the account's users who may get service mail (the one
    users rule: not those of a closed or restricted account)."""
    users = list(account_users(order.account_id, Purpose.SERVICE))
    send_templated(
        "billing/mail/order_status",
        [u.email for u in users],
        {"order": order, "status": order.get_status_display()},
        purpose=Purpose.SERVICE,
        account_id=order.account_id,
        user_ids={u.email: u.pk for u in users},
    )


def _subscription_event(event: GatewayEvent) -> tuple[str, int | None]:
    sub = (
        Subscription.objects.select_for_update()
        .filter(gateway_ref=event.subscription_ref)
        .exclude(gateway_ref="")
        .first()
    )
    if sub is None:
        return "ignored: unknown subscription", None
    if sub.event_at is not None and event.created < sub.event_at:
        return "ignored: older than the last event applied", sub.account_id
    if sub.status == Subscription.Status.CANCELLED:
        return "ignored: a cancelled subscription stays cancelled", sub.account_id
    sub.event_at = event.created
    if event.type == "customer.subscription.deleted" or event.subscription_status in (
        "canceled",
        "unpaid",
        "incomplete_expired",
    ):
        sub.status = Subscription.Status.CANCELLED
        # The plan is over: so is its dunning (campaigns spend credits again).
        dunning.end(sub, why="plan cancelled")
    sub.save(update_fields=["status", "event_at"])
    return f"subscription: {sub.status}", sub.account_id


# Automatic recharge --------------------------------------------------------------------------


def run_recharge(account_id: int, now: datetime | None = None) -> str:
    """The recharge job (billing.recharge): under the account's setting's lock, place
    the recharge order unless one is in flight, a limit is reached or the account may
    not be recharged; commit it; then charge it off-session by its idempotency key (a
    job run again, or two at once, charge the same order once). Returns what it did."""
    now = now or timezone.now()
    with transaction.atomic():
        setting = (
            AutoRecharge.objects.select_for_update()
            .select_related("account", "payment_order", "offer")
            .filter(account_id=account_id)
            .first()
        )
        why = recharge.why_not(setting, now) if setting is not None else "off"
        if setting is None or why == "off":
            return "not recharged: off"
        order = recharge.in_flight(account_id)
        if order is not None and order.gateway_ref:
            return f"not recharged: order {order.reference} is in flight"
        if why and (order is None or why not in recharge.RETRY_DESPITE):
            # An order placed but not charged yet (the gateway was down, the worker died)
            # is charged again by its key, unless the account may no longer be charged.
            log.info("account %s: not recharged: %s", account_id, why)
            return f"not recharged: {why}"
        if order is None:
            order = _recharge_order(setting)
    return _charge(order)


def sweep_recharges(now: datetime | None = None, *, limit: int = 500) -> int:
    """Run the recharge job for accounts whose automatic recharge is on and whose credits
    are below its threshold, or whose recharge was placed and never charged: what a lost
    job or a gateway that was down left undone (spending may not come again to queue it:
    a balance too low starts no campaign). A job still charging the same order at once
    makes no second charge: both send its idempotency key. Returns how many charged."""
    now = now or timezone.now()
    waiting = Order.objects.filter(recharge=True, status=S.CREATED, gateway_ref="").values_list(
        "account_id", flat=True
    )
    below = AutoRecharge.objects.filter(
        enabled=True, account__credit_balance__available__lt=F("threshold")
    ).values_list("account_id", flat=True)
    accounts = sorted({*waiting[:limit], *below[:limit]})
    return sum(1 for a in accounts if "charged, waiting" in run_recharge(a, now))


def _recharge_order(setting: AutoRecharge) -> Order:
    """The recharge order of the locked `setting`: its pack at today's price, with the
    billing identity (and VAT decision) of the order whose payment method it charges."""
    source = setting.payment_order
    price = price_of(setting.offer, source.currency)
    order = Order(
        account_id=setting.account_id,
        created_by=None,
        offer=setting.offer,
        currency=price.currency,
        amount=price.amount,
        credits=setting.offer.credits,
        gateway=source.gateway,
        idempotency_key=secrets.token_hex(16),
        status=S.CREATED,
        buyer_kind=source.buyer_kind,
        billing_name=source.billing_name,
        billing_address=source.billing_address,
        billing_country=source.billing_country,
        vat_number=source.vat_number,
        reverse_charge=source.reverse_charge,
        listed_amount=price.amount,
        gateway_customer=source.gateway_customer,
        gateway_payment_method=source.gateway_payment_method,
        recharge=True,
    )
    order.amount = invoices.amount_due(order, price.amount)
    order.save()
    audit.record(
        audit.AuditEvent.Action.CREATE,
        order,
        by=None,
        fields=["offer", "amount"],
        reason=f"automatic recharge below {setting.threshold} credits",
        account_id=setting.account_id,
    )
    return order


def _charge(order: Order) -> str:
    """Charge the committed recharge `order` at its gateway (outside any transaction: the
    order exists whatever happens there)."""
    try:
        ref = gateway(order.gateway).charge_saved(
            order, customer=order.gateway_customer, payment_method=order.gateway_payment_method
        )
    except GatewayDeclined as declined:
        with transaction.atomic():
            locked = Order.objects.select_for_update().get(pk=order.pk)
            _move(locked, S.FAILED, why=declined.code)
        return f"order {order.reference}: declined ({declined.code})"
    except GatewayError as error:
        # Not reached: the order waits, and the next run charges it by the same key.
        log.warning("order %s: the gateway could not charge the recharge: %s", order.pk, error)
        return f"order {order.reference}: gateway unreachable, left for the next run"
    Order.objects.filter(pk=order.pk, gateway_ref="").update(gateway_ref=ref, payment_ref=ref)
    if order.gateway == TestGateway.name:
        # The test gateway tells the outcome at once, by the signed event a card
        # gateway would post (no money moves).
        order.refresh_from_db()
        confirm_on_test_gateway(order)
    return f"order {order.reference}: charged, waiting for the gateway's word"


# Bank transfer -------------------------------------------------------------------------------


def mark_transfer_paid(order: Order, *, by: User, amount: Decimal, currency: str) -> str:
    """Billing staff record a bank transfer received for `order` (audited)."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.gateway != BANK_TRANSFER:
            raise OrderRefused(_("Only an order paid by bank transfer is marked paid by hand."))
        if amount != locked.amount or currency.upper() != locked.currency:
            raise OrderRefused(_("The amount received is not the order's."))
        if locked.status != S.AWAITING_TRANSFER:
            raise OrderRefused(_("This order is not awaiting a transfer."))
        return _move(locked, S.PAID, by=by)


# The test gateway's hosted page -------------------------------------------------------------

TEST_OUTCOMES = {
    # What the page offers: the events a real gateway would send for each outcome.
    "pay": [("checkout.session.completed", "paid")],
    "pay_later": [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_succeeded", "paid"),
    ],
    "fail_later": [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_failed", "unpaid"),
    ],
    "expire": [("checkout.session.expired", "unpaid")],
    # The card is kept (an order that asked for it), and a later recharge of it is
    # declined: what a card that expires or runs out does.
    "pay_keep_declining": [("checkout.session.completed", "paid")],
}


# A renewal on the test gateway: the saved card pays, or is declined.
TEST_RENEWAL_OUTCOMES = {"pay": "invoice.paid", "fail": "invoice.payment_failed"}


def test_gateway_order(session: str) -> Order | None:
    return Order.objects.filter(gateway=TestGateway.name, gateway_ref=session).first()


def test_gateway_page_open(order: Order) -> bool:
    """Whether the test gateway's page still takes an answer for `order`: a checkout not
    answered yet, or a renewal not paid yet (failed: the customer pays it there)."""
    if order.renewal_of_id is not None:
        return order.status in (S.CREATED, S.FAILED)
    return order.status == S.CREATED


def pay_on_test_gateway(session: str, outcome: str) -> list[tuple[int, str]]:
    """The test gateway's page was answered: post back the signed webhooks a card
    gateway would, to the one receiver. No money moves."""
    order = test_gateway_order(session)
    if order is not None and order.renewal_of_id is not None:
        return [renew_on_test_gateway(order, outcome)]
    if order is None or outcome not in TEST_OUTCOMES:
        raise OrderRefused(_("There is no such payment session."))
    answers = []
    saving = order.save_payment_method and outcome in ("pay", "pay_keep_declining")
    customer = f"test_cus_{order.uuid.hex}" if saving else ""
    for kind, status in TEST_OUTCOMES[outcome]:
        body, headers = TestGateway.event(
            kind,
            {
                "object": "checkout.session",
                "id": session,
                "payment_status": status,
                "amount_total": cents(order.amount),
                "currency": order.currency.lower(),
                "payment_intent": f"test_pi_{order.uuid.hex}",
                **({"customer": customer} if customer else {}),
            },
        )
        answers.append(receive_webhook(TestGateway.name, body, headers))
    if saving:
        # The payment's own event names the payment method kept.
        method = f"test_pm_{order.uuid.hex}"
        if outcome == "pay_keep_declining":
            method += "_declined"
        body, headers = TestGateway.event(
            "payment_intent.succeeded",
            {
                "object": "payment_intent",
                "id": f"test_pi_{order.uuid.hex}",
                "amount": cents(order.amount),
                "currency": order.currency.lower(),
                "customer": customer,
                "payment_method": method,
                "metadata": {"tidings_order": str(order.uuid)},
            },
        )
        answers.append(receive_webhook(TestGateway.name, body, headers))
    return answers


def confirm_on_test_gateway(order: Order, outcome: str = "succeeded") -> tuple[int, str]:
    """The test gateway's word on the off-session charge of the recharge `order`: the
    signed payment_intent event a card gateway posts, to the one receiver."""
    body, headers = TestGateway.event(
        f"payment_intent.{outcome}",
        {
            "object": "payment_intent",
            "id": order.gateway_ref,
            "amount": cents(order.amount),
            "currency": order.currency.lower(),
            "customer": order.gateway_customer,
            "payment_method": order.gateway_payment_method,
            "metadata": {"tidings_order": str(order.uuid)},
        },
    )
    return receive_webhook(TestGateway.name, body, headers)


def renew_on_test_gateway(order: Order, outcome: str) -> tuple[int, str]:
    """The test gateway charges the saved card for the renewal `order` ("pay") or is
    declined ("fail"): the signed invoice event a card gateway posts, to the one
    receiver. The test gateway's page and the tests use it; no money moves."""
    if order.renewal_of_id is None or outcome not in TEST_RENEWAL_OUTCOMES:
        raise OrderRefused(_("There is no such payment session."))
    amount = cents(order.amount)
    body, headers = TestGateway.event(
        TEST_RENEWAL_OUTCOMES[outcome],
        {
            "object": "invoice",
            "id": order.gateway_ref,
            "billing_reason": "subscription_cycle",
            "amount_due": amount,
            "amount_paid": amount if outcome == "pay" else 0,
            "currency": order.currency.lower(),
            "payment_intent": f"test_pi_{order.uuid.hex}",
        },
    )
    return receive_webhook(TestGateway.name, body, headers)


def refund_on_test_gateway(order: Order) -> tuple[int, str]:
    """What the gateway posts when the operator refunds a test payment."""
    body, headers = TestGateway.event(
        "charge.refunded",
        {
            "object": "charge",
            "id": f"test_ch_{order.uuid.hex}",
            "payment_intent": order.payment_ref,
            "amount_refunded": cents(order.amount),
            "currency": order.currency.lower(),
        },
    )
    return receive_webhook(TestGateway.name, body, headers)
