"""What the billing pages read, always scoped by account."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from tidings.accounts.models import Account
from tidings.billing.models import CreditEntry, Invoice, Offer, Order, Price, Subscription


def offers_for_sale() -> QuerySet[Offer]:
    return (
        Offer.objects.filter(active=True, prices__isnull=False)
        .distinct()
        .prefetch_related(Prefetch("prices", queryset=Price.objects.order_by("currency")))
    )


def orders_of(account: Account) -> QuerySet[Order]:
    return Order.objects.filter(account=account).select_related("offer")


def ledger_of(account: Account, limit: int = 50) -> QuerySet[CreditEntry]:
    return CreditEntry.objects.filter(account=account)[:limit]


def invoices_of(account: Account) -> QuerySet[Invoice]:
    """The account's issued invoices and credit notes (drafts are nobody's yet)."""
    return Invoice.objects.filter(account=account, status=Invoice.Status.ISSUED)


def pending_renewal(plan: Subscription | None) -> Order | None:
    """The plan's renewal waiting for the gateway's word (opened, not paid or failed)."""
    if plan is None:
        return None
    return plan.renewals.filter(status=Order.Status.CREATED).order_by("-period_end").first()
