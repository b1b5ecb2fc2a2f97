from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from tidings.billing.models import (
    AutoRecharge,
    CreditBalance,
    CreditEntry,
    GatewayCancellation,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Offer,
    Order,
    Price,
    ProcessedEvent,
    Subscription,
    VatCheck,
    WebhookEvent,
)
from tidings.core import retention
from tidings.core.datamap import (
    DataClass,
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)


def invoice_years(seller_country: str = "", buyer_country: str = "") -> int:
    """How long an invoice outlives its account: the longer of the periods its seller's
    and its buyer's countries set (TIDINGS_INVOICE_RETENTION_YEARS_BY_COUNTRY), each
    TIDINGS_INVOICE_RETENTION_YEARS where not set."""
    default = int(settings.RETENTION["invoice_years"])
    by_country = settings.RETENTION["invoice_years_by_country"]
    return max(by_country.get(c.upper(), default) for c in (seller_country, buyer_country))


register(
    Invoice,
    owner=Owner.CUSTOMER,
    category=_("billing"),
    data_class=DataClass.FINANCIAL,
    purpose=_("invoicing and the legal accounting obligation"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_(
        "while the account exists, then the legal accounting period "
        "(TIDINGS_INVOICE_RETENTION_YEARS, default 10 years), or longer where the "
        "seller's or the buyer's country requires it"
    ),
    # What the law needs on an invoice (art. 226), and nothing else: no user, no email,
    # no order (the order goes with the account; `order` is then emptied by the database).
    personal_fields=[
        "billing_name",
        "billing_address",
        "billing_country",
        "vat_number",
        "buyer_kind",
    ],
    shown_fields=(
        "kind",
        "number",
        "issued_at",
        "currency",
        "net",
        "vat",
        "total",
        "billing_name",
        "billing_address",
        "billing_country",
        "vat_number",
    ),
    erase=Erasure.KEEP_FOR_LEGAL_REASON,
    account_path="account",
    keep_until_field="keep_until",
    keep_years=invoice_years,
    keep_years_by=("seller_country", "billing_country"),
    detach_with={"account": None},
    contact="the customer's invoices: no contact's data",
)

# Orders hold the billing identity asked only when ordering (P1). The invoices keep what
# the law needs after erasure (P14); the orders themselves go with the account.
register(
    Order,
    owner=Owner.CUSTOMER,
    category=_("billing"),
    data_class=DataClass.FINANCIAL,
    purpose=_("processing orders and payments (P4)"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("while the account exists; the invoices keep what the law requires"),
    personal_fields=["billing_name", "billing_address", "billing_country", "vat_number"],
    shown_fields=(
        "created_at",
        "status",
        "currency",
        "amount",
        "billing_name",
        "billing_address",
        "billing_country",
        "vat_number",
    ),
    secret_fields=["idempotency_key"],
    erase=Erasure.DELETE,
    account_path="account",
    # The billing identity says where the customer is: their latest order's country.
    country="billing_country",
    contact="the customer's orders: no contact's data",
)
# Automatic recharge: the customer's consent to off-session charges, kept as given (who,
# when, the words shown). The card stays at the gateway: the order keeps only its ids.
register(
    AutoRecharge,
    owner=Owner.CUSTOMER,
    category=_("billing"),
    data_class=DataClass.FINANCIAL,
    purpose=_("recharging credits automatically, with the customer's consent to the charges"),
    legal_basis=LegalBasis.CONSENT,
    retention=_("while the account exists"),
    personal_fields=["consented_by", "consented_at", "consent_text"],
    shown_fields=(
        "enabled",
        "threshold",
        "consented_at",
        "consent_text",
        "turned_off_at",
        "turned_off_reason",
    ),
    erase=Erasure.DELETE,
    account_path="account",
    contact="the customer's automatic recharge: no contact's data",
)
register(
    WebhookEvent,
    owner=Owner.CUSTOMER,
    category=_("billing"),
    data_class=DataClass.FINANCIAL,
    purpose=_("proof of what the payment provider told us, for audit and replay"),
    legal_basis=LegalBasis.LEGITIMATE_INTEREST,
    retention=_("deleted with the account, and after TIDINGS_RAW_WEBHOOK_DAYS (default 90 days)"),
    personal_fields=["body", "headers", "remote_ip"],
    erase=Erasure.DELETE,
    account_path="account",
    in_archive=False,
    contact="the payment provider's messages about orders: no contact's data",
)
declare_free_of_personal_data(
    CreditEntry, "the credits the account received and spent", account_path="account"
)
declare_free_of_personal_data(CreditBalance, "the account's credit counter", account_path="account")
declare_free_of_personal_data(
    Subscription, "the account's plan and its period", account_path="account"
)
declare_free_of_personal_data(
    VatCheck,
    "what VIES said of an order's VAT number, when, and its consultation number",
    account_path="order__account",
)
declare_free_of_personal_data(ProcessedEvent, "ids of payment events already applied (no content)")
# No account path: it outlives an erased account until the gateway confirms (an "erase
# now" runs at once), holding only the gateway's ids; once done, kept CANCELLATIONS_KEPT_DAYS.
declare_free_of_personal_data(
    GatewayCancellation,
    "a closed account's plan to cancel at the payment gateway: the gateway's "
    "subscription id, the tries and the outcome",
)
declare_free_of_personal_data(
    InvoiceLine,
    "what an invoice sold: the operator's offers and amounts",
    account_path="invoice__account",
)
declare_free_of_personal_data(InvoiceCounter, "the last number of each invoice series")
declare_free_of_personal_data(Offer, "the operator's plans and credit packs")
declare_free_of_personal_data(Price, "the operator's prices")


def _old_webhooks(now: datetime) -> QuerySet[WebhookEvent]:
    cutoff = now - timedelta(days=settings.BILLING["raw_webhook_days"])
    return WebhookEvent.objects.filter(received_at__lt=cutoff)


retention.register(
    "raw payment webhooks",
    why=lambda: (
        "raw payment webhooks are deleted after "
        f"{settings.BILLING['raw_webhook_days']} days (TIDINGS_RAW_WEBHOOK_DAYS)"
    ),
    expired=_old_webhooks,
)


# A cancellation the gateway confirmed is kept a while as its proof, then deleted.
CANCELLATIONS_KEPT_DAYS = 90


def _old_cancellations(now: datetime) -> QuerySet[GatewayCancellation]:
    cutoff = now - timedelta(days=CANCELLATIONS_KEPT_DAYS)
    return GatewayCancellation.objects.filter(done_at__lt=cutoff)


retention.register(
    "plans cancelled at the payment gateway",
    why=lambda: (
        "cancellations the payment gateway confirmed are deleted after "
        f"{CANCELLATIONS_KEPT_DAYS} days"
    ),
    expired=_old_cancellations,
)
