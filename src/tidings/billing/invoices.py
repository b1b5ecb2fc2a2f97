"""Invoices and credit notes (EU VAT directive art. 226; P14).

The rules, in the order the code follows them:
1. A draft is made from an order: the seller (settings.OPERATOR) and the buyer's billing
   identity are copied into it, so a later change of either alters no invoice.
2. Amounts are `Decimal`. Each line is rounded to cents, half up (ROUND_HALF_UP): its
   net, then its VAT (net times rate); the invoice's net, VAT and total are the sums of the
   rounded lines, so the lines always add up to the total printed.
3. A business buyer with a valid VAT number (check digits verified offline with
   python-stdnum, then confirmed by VIES when the order is placed: billing/vies.py) in
   another EU country than the seller's is invoiced under the reverse charge: no VAT,
   and the invoice says "Reverse charge" with VIES's consultation number. The order
   holds that decision; what is charged and what is invoiced both read it.
4. The number is given only when the draft is finalised, in the same transaction, from
   the series' counter row locked FOR UPDATE: the numbers of a series have no gap and no
   duplicate, and a finalisation that rolls back gives its number back.
5. Once issued, nothing the law fixes changes (the database refuses it on PostgreSQL);
   a correction or a refund is a credit note, its own series, naming the original.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from stdnum.eu import vat as eu_vat

from tidings.accounts.models import User
from tidings.billing import invoice_mail
from tidings.billing.models import (
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Offer,
    Order,
    VatCheck,
    VatTreatment,
)
from tidings.staff import audit

CENT = Decimal("0.01")
SERIES = {Invoice.Kind.INVOICE: "INV", Invoice.Kind.CREDIT_NOTE: "CN"}


class InvoiceRefused(ValueError):
    """An invoice or credit note that cannot be made as asked; the message says why."""


def to_cents(amount: Decimal) -> Decimal:
    """The stated rounding rule: to the cent, half up."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def eu_vat_number(number: str) -> bool:
    """Whether `number` claims to be an EU VAT number (its prefix is a member state's)."""
    prefix = number[:2].lower()
    return prefix == "el" or prefix in eu_vat.MEMBER_STATES


def check_vat_number(number: str) -> str:
    """The number, compact, if its check digits are right; an EU number that fails them
    is refused. A number of a country outside the EU is kept as given, unchecked."""
    if not number or not eu_vat_number(number):
        return number
    if not eu_vat.is_valid(number):
        raise InvoiceRefused(
            _("The VAT number %(n)s is not valid: check it and try again.") % {"n": number}
        )
    return str(eu_vat.compact(number))


def reverse_charge_possible(*, buyer_kind: str, vat_number: str, billing_country: str) -> bool:
    """Whether the reverse charge would apply to this buyer, by the numbers alone: a
    company with an EU VAT number whose check digits are right, in another EU country
    than the seller's. VIES must still confirm the number (billing/vies.py)."""
    seller = settings.OPERATOR.get("country", "").upper()
    return bool(
        seller
        and buyer_kind == Order.BuyerKind.COMPANY
        and vat_number
        and eu_vat_number(vat_number)
        and eu_vat.is_valid(vat_number)
        and billing_country.upper() != seller
    )


def _line_amounts(offer: Offer, price: Decimal, reverse: bool) -> tuple[Decimal, Decimal, Decimal]:
    """Net, rate and VAT of one line, each rounded to cents half up."""
    rate = Decimal(offer.vat_rate)
    if offer.vat_treatment == VatTreatment.EXEMPT:
        return to_cents(price), Decimal(0), Decimal("0.00")
    if offer.vat_treatment == VatTreatment.INCLUDED:
        net = to_cents(price / (1 + rate / 100))
        return net, (Decimal(0) if reverse else rate), (Decimal("0.00") if reverse else price - net)
    net = to_cents(price)
    if reverse:
        return net, Decimal(0), Decimal("0.00")
    return net, rate, to_cents(net * rate / 100)


def amount_due(order: Order, listed: Decimal) -> Decimal:
    """What the buyer pays for an offer listed at `listed`: the invoice's total, by
    the same rule (VAT added, included, reverse-charged or exempt), so the gateway
    charges exactly what the invoice will say."""
    net, _rate, vat = _line_amounts(order.offer, listed, order.reverse_charge)
    return net + vat


def listed_price(order: Order) -> Decimal:
    """The offer's price as listed when `order` was placed (before VAT): recorded on the
    order, or, for an order placed before it was, found back from what it charged (by
    `amount_due`'s rule; a reverse-charged price with VAT included lost it: the price
    list's, then)."""
    if order.listed_amount is not None:
        return Decimal(order.listed_amount)
    offer = order.offer
    rate = Decimal(offer.vat_rate)
    if offer.vat_treatment == VatTreatment.EXEMPT:
        return Decimal(order.amount)
    if offer.vat_treatment == VatTreatment.INCLUDED:
        if not order.reverse_charge:
            return Decimal(order.amount)
        price = offer.prices.filter(currency=order.currency).first()
        return price.amount if price else to_cents(order.amount * (1 + rate / 100))
    if order.reverse_charge or not rate:
        return Decimal(order.amount)
    return to_cents(order.amount / (1 + rate / 100))


def vat_check_for(order: Order) -> VatCheck | None:
    """The VIES check that proves `order`'s reverse charge: its own when VIES confirmed
    the number; for a renewal VIES did not answer for, the plan's latest valid one
    before it (the order that bought the plan, or an earlier renewal)."""
    own = VatCheck.objects.filter(order=order, status=VatCheck.Status.VALID).first()
    if own is not None or order.renewal_of_id is None:
        return own
    earlier = Order.objects.filter(renewal_of_id=order.renewal_of_id)
    if order.period_end is not None:
        earlier = earlier.filter(period_end__lt=order.period_end)
    plan_orders = list(earlier.values_list("pk", flat=True))
    plan_orders.append(order.renewal_of.order_id)  # type: ignore[union-attr]
    return (
        VatCheck.objects.filter(order__in=plan_orders, status=VatCheck.Status.VALID)
        .order_by("-checked_at", "-pk")
        .first()
    )


def _paid_amounts(offer: Offer, paid: Decimal, reverse: bool) -> tuple[Decimal, Decimal, Decimal]:
    """Net, rate and VAT of what was paid (`amount_due`'s total), split back."""
    rate = Decimal(offer.vat_rate)
    if offer.vat_treatment == VatTreatment.EXEMPT or reverse or not rate:
        return to_cents(paid), Decimal(0), Decimal("0.00")
    net = to_cents(paid / (1 + rate / 100))
    return net, rate, paid - net


def _fill_totals(invoice: Invoice) -> None:
    sums = invoice.lines.aggregate(net=Sum("net"), vat=Sum("vat"))
    invoice.net = sums["net"] or Decimal("0.00")
    invoice.vat = sums["vat"] or Decimal("0.00")
    invoice.total = invoice.net + invoice.vat
    invoice.amount_cents = int(invoice.total * 100)


def draft_for_order(order: Order) -> Invoice:
    """A draft invoice of `order`: seller and buyer identity frozen now, one line."""
    reverse = order.reverse_charge
    # A renewal has its own check (VIES asked again); if VIES did not answer then, the
    # plan's previous valid check stands.
    check = vat_check_for(order) if reverse else None
    seller = settings.OPERATOR
    invoice = Invoice.objects.create(
        account_id=order.account_id,
        order=order,
        kind=Invoice.Kind.INVOICE,
        status=Invoice.Status.DRAFT,
        issued_at=None,
        currency=order.currency,
        language=order.account.language or settings.LANGUAGE_CODE,
        seller_name=seller["name"],
        seller_address=seller["postal_address"],
        seller_vat_number=seller.get("vat_number", ""),
        seller_country=seller.get("country", "").upper(),
        buyer_kind=order.buyer_kind,
        billing_name=order.billing_name,
        billing_address=order.billing_address,
        billing_country=order.billing_country,
        vat_number=order.vat_number,
        reverse_charge=reverse,
        vies_consultation=check.consultation if (reverse and check) else "",
    )
    net, rate, vat = _paid_amounts(order.offer, order.amount, reverse)
    InvoiceLine.objects.create(
        invoice=invoice,
        description=order.offer.name,
        unit_price=net,
        net=net,
        vat_rate=rate,
        vat=vat,
    )
    _fill_totals(invoice)
    invoice.save(update_fields=["net", "vat", "total", "amount_cents"])
    return invoice


def finalise(invoice: Invoice, *, supplied_at: datetime | None = None) -> Invoice:
    """Give the draft its number, in the caller's transaction (or a new one), and issue
    it. The counter row is locked until that transaction ends: the next finalisation
    waits, and a rollback gives the number back."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.is_issued:
            raise InvoiceRefused(_("This invoice is already issued."))
        series = SERIES[Invoice.Kind(locked.kind)]
        InvoiceCounter.objects.get_or_create(series=series)
        counter = InvoiceCounter.objects.select_for_update().get(series=series)
        counter.last += 1
        counter.save(update_fields=["last"])
        now = timezone.now()
        locked.sequence = counter.last
        locked.number = f"{series}-{counter.last:06d}"
        locked.issued_at = now
        locked.supplied_at = supplied_at or now
        locked.status = Invoice.Status.ISSUED
        locked.save()
        audit.record(
            audit.AuditEvent.Action.CREATE,
            locked,
            by=None,
            fields=["number"],
            reason=f"issued {locked.number}",
            account_id=locked.account_id,
        )
        invoice_mail.mail_issued(locked)
    return locked


def issue_for_order(order: Order, *, paid: bool) -> Invoice:
    """The order's invoice, issued now (once: an order has one invoice). `paid` for a
    gateway's payment; an unpaid one (a bank transfer) is marked paid later."""
    existing = Invoice.objects.filter(order=order, kind=Invoice.Kind.INVOICE).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        draft = draft_for_order(order)
        if paid:
            # Paid before it is issued: its mail says so.
            Invoice.objects.filter(pk=draft.pk).update(paid_at=order.paid_at or timezone.now())
        invoice = finalise(draft)
    return invoice


def mark_paid(order: Order) -> None:
    """The order was paid: its unpaid invoice says so (the only field that may change)."""
    Invoice.objects.filter(order=order, kind=Invoice.Kind.INVOICE, paid_at__isnull=True).update(
        paid_at=order.paid_at or timezone.now()
    )


def credit_note(
    original: Invoice, *, amount: Decimal | None = None, by: User | None = None
) -> Invoice:
    """A credit note correcting `original` (all of it, or `amount` of its total, VAT
    in the original's proportion): its own series, naming the original, the same
    frozen identities. More than is left to credit is refused."""
    if original.kind != Invoice.Kind.INVOICE or not original.is_issued:
        raise InvoiceRefused(_("Only an issued invoice can be credited."))
    credited = -(
        Invoice.objects.filter(original=original, status=Invoice.Status.ISSUED).aggregate(
            t=Sum("total")
        )["t"]
        or Decimal(0)
    )
    left = original.total - credited
    amount = left if amount is None else to_cents(Decimal(amount))
    if amount <= 0 or amount > left:
        raise InvoiceRefused(
            _("A credit note must be more than zero and at most %(left)s %(cur)s.")
            % {"left": left, "cur": original.currency}
        )
    share = amount / original.total if original.total else Decimal(1)
    with transaction.atomic():
        note = Invoice.objects.create(
            account_id=original.account_id,
            order=original.order,
            original=original,
            kind=Invoice.Kind.CREDIT_NOTE,
            status=Invoice.Status.DRAFT,
            issued_at=None,
            **{f: getattr(original, f) for f in Invoice.PARTIES},
        )
        for line in original.lines.all():
            net = -to_cents(line.net * share)
            InvoiceLine.objects.create(
                invoice=note,
                position=line.position,
                description=_("Credit: %(what)s") % {"what": line.description},
                unit_price=net,
                net=net,
                vat_rate=line.vat_rate,
                vat=-to_cents(-net * line.vat_rate / 100),
            )
        _fill_totals(note)
        note.save(update_fields=["net", "vat", "total", "amount_cents"])
        note = finalise(note)
        audit.record(
            audit.AuditEvent.Action.CREATE,
            note,
            by=by,
            fields=["total"],
            reason=f"credit note of {original.number}",
            account_id=note.account_id,
        )
    return note
