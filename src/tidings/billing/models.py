"""Billing: what is sold (plans and credit packs, priced per currency), the credits an
account holds (an append-only ledger with a counter the database keeps from going
negative), orders paid on a gateway's hosted page, and the gateway's webhooks as they
arrived. Invoices outlive an erased account for the legal accounting period (P14).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.core.fields import EncryptedTextField


class InvoiceCounter(models.Model):
    """The last number given in a series, one row per series: locked FOR UPDATE by the
    finalisation that takes the next number, in its transaction, so a rolled-back
    finalisation gives its number back and two at once cannot take the same one."""

    series = models.CharField(max_length=16, unique=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.series}: {self.last}"


class Invoice(models.Model):
    """An invoice or a credit note (its own series). A draft has no number; finalising
    gives it one and freezes it: seller and buyer identity, amounts and lines never
    change after (a trigger refuses it on PostgreSQL, `save` elsewhere). A correction is
    a credit note that names the original."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Invoice")
        CREDIT_NOTE = "credit_note", _("Credit note")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ISSUED = "issued", _("Issued")

    # Who sells to whom, in which currency and language: frozen at issue, and copied as
    # they are onto a credit note of the invoice.
    PARTIES = (
        "currency",
        "language",
        "seller_name",
        "seller_address",
        "seller_vat_number",
        "seller_country",
        "buyer_kind",
        "billing_name",
        "billing_address",
        "billing_country",
        "vat_number",
        "reverse_charge",
        "vies_consultation",
    )
    # The fields the law fixes at issue: the database refuses to change them afterwards.
    LEGAL_FIELDS = (
        "kind",
        "number",
        "sequence",
        "issued_at",
        "supplied_at",
        *PARTIES,
        "net",
        "vat",
        "total",
        "amount_cents",
        "original_id",
        "status",
    )

    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invoices",
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ISSUED)
    # Empty until finalised (a draft); then "<series>-<sequence>" and never again changed.
    number = models.CharField(max_length=32, blank=True, default="")
    sequence = models.PositiveIntegerField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    supplied_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # The order it bills (gone with the erased account: the invoice keeps its copy).
    order = models.ForeignKey(
        "billing.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    # A credit note: the invoice it corrects.
    original = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="credit_notes"
    )
    amount_cents = models.IntegerField(default=0)
    currency = models.CharField(max_length=3, default="EUR")
    language = models.CharField(max_length=8, default="en")
    seller_name = models.CharField(max_length=200, blank=True, default="")
    seller_address = models.TextField(blank=True, default="")
    seller_vat_number = models.CharField(max_length=32, blank=True, default="")
    seller_country = models.CharField(max_length=2, blank=True, default="")
    # The billing identity an invoice legally needs, copied at issue time.
    buyer_kind = models.CharField(max_length=8, blank=True, default="")
    billing_name = models.CharField(max_length=200)
    billing_address = EncryptedTextField(blank=True, default="")
    billing_country = models.CharField(max_length=2, blank=True, default="")
    vat_number = EncryptedTextField(blank=True, default="")
    reverse_charge = models.BooleanField(default=False)
    # The proof of the reverse charge: the consultation number VIES gave when it confirmed
    # the buyer's VAT number (billing/vies.py).
    vies_consultation = models.CharField(max_length=64, blank=True, default="")
    # Sums of the lines (each line rounded to cents, ROUND_HALF_UP): docs/billing.md.
    net = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    vat = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    # Set by the erasure job: after this date the retention job deletes the invoice.
    keep_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["number"], condition=~Q(number=""), name="billing_invoice_number_once"
            ),
            models.UniqueConstraint(
                fields=["kind", "sequence"],
                condition=Q(sequence__isnull=False),
                name="billing_invoice_sequence_once",
            ),
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(kind="invoice") & Q(order__isnull=False),
                name="billing_one_invoice_per_order",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"draft #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Where no trigger guards the table (SQLite), the model refuses a change to an
        issued invoice's legal fields; PostgreSQL refuses it in the database too."""
        if self.pk is not None:
            stored = Invoice.objects.filter(pk=self.pk, status=self.Status.ISSUED).values(
                *self.LEGAL_FIELDS
            )
            before = stored.first()
            if before is not None and any(before[f] != getattr(self, f) for f in self.LEGAL_FIELDS):
                raise ImmutableInvoice(self.number)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.is_issued and self.keep_until is None:
            raise ImmutableInvoice(self.number)
        return super().delete(*args, **kwargs)

    @property
    def is_issued(self) -> bool:
        return self.status == self.Status.ISSUED


class ImmutableInvoice(Exception):
    """An issued invoice was to be changed or deleted: correct it by a credit note."""

    def __init__(self, number: str) -> None:
        super().__init__(f"invoice {number} is issued: correct it by a credit note")


class InvoiceLine(models.Model):
    """One line: what was sold, its net, rate and VAT, each rounded to cents."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=1)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=10, decimal_places=2, default=1)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    net = models.DecimalField(max_digits=12, decimal_places=2)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    vat = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["invoice", "position"]

    def __str__(self) -> str:
        return self.description


class VatTreatment(models.TextChoices):
    """How VAT applies to an offer's price (the invoices issue reads it)."""

    STANDARD = "standard", _("VAT added at the rate given")
    INCLUDED = "included", _("VAT included in the price")
    REVERSE_CHARGE = "reverse_charge", _("Reverse charge for business buyers with a VAT number")
    EXEMPT = "exempt", _("Exempt from VAT")


class Offer(models.Model):
    """A plan (monthly or yearly, up to a number of contacts) or a credit pack (one
    credit = one message), defined by billing staff in the console."""

    class Kind(models.TextChoices):
        PLAN = "plan", _("Plan")
        PACK = "pack", _("Credit pack")

    class Period(models.TextChoices):
        NONE = "", _("Once (credit pack)")
        MONTH = "month", _("Monthly")
        YEAR = "year", _("Yearly")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=300, blank=True)
    period = models.CharField(
        _("billing period"), max_length=8, choices=Period.choices, blank=True, default=""
    )
    contact_limit = models.PositiveIntegerField(
        _("contact limit"),
        null=True,
        blank=True,
        help_text=_("plans: contacts a campaign may reach"),
    )
    credits = models.PositiveIntegerField(
        _("credits"), default=0, help_text=_("credits the order adds (one credit = one message)")
    )
    vat_treatment = models.CharField(
        _("VAT treatment"), max_length=16, choices=VatTreatment.choices
    )
    vat_rate = models.DecimalField(_("VAT rate (%)"), max_digits=5, decimal_places=2, default=0)
    active = models.BooleanField(_("offered"), default=True)
    position = models.PositiveSmallIntegerField(_("position on the pricing page"), default=0)

    class Meta:
        ordering = ["kind", "position", "pk"]
        verbose_name = _("plan or credit pack")
        verbose_name_plural = _("plans and credit packs")
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="plan") & ~Q(period="")) | (Q(kind="pack") & Q(period="")),
                name="billing_offer_period_by_kind",
            ),
            models.CheckConstraint(
                condition=Q(vat_rate__gte=0) & Q(vat_rate__lte=100), name="billing_offer_vat_rate"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Price(models.Model):
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="prices")
    currency = models.CharField(_("currency"), max_length=3, help_text=_("ISO 4217, e.g. EUR"))
    amount = models.DecimalField(_("amount"), max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["currency"]
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        constraints = [
            models.UniqueConstraint(
                fields=["offer", "currency"], name="billing_one_price_per_currency"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class CreditBalance(models.Model):
    """The credits an account may spend now: kept with every ledger row, in its
    transaction; the constraint makes overspending an error, not a race."""

    account = models.OneToOneField(
        "accounts.Account", on_delete=models.CASCADE, related_name="credit_balance"
    )
    available = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(available__gte=0), name="billing_credits_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="billing_reserved_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.available} credits"


class CreditEntry(models.Model):
    """One movement of credits, never changed afterwards."""

    class Kind(models.TextChoices):
        GRANT = "grant", _("Free allowance")
        PURCHASE = "purchase", _("Purchase")
        RESERVE = "reserve", _("Reserved for a campaign")
        RELEASE = "release", _("Returned from a campaign")
        SPEND = "spend", _("Spent by a campaign")
        STEP = "step", _("Spent by an automation's step")
        REFUND = "refund", _("Refunded order")
        ADJUST = "adjust", _("Adjusted by staff")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="credit_entries"
    )
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # Signed: what the entry did to the available credits.
    credits = models.BigIntegerField()
    # A spend row: the messages sent (its credits were taken by the reservation).
    messages = models.PositiveIntegerField(default=0)
    order = models.ForeignKey(
        "billing.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # No foreign key: the ledger outlives a deleted campaign.
    campaign_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = _("credit entries")
        constraints = [
            # An order credits once, a campaign reserves and returns once, whatever
            # delivers the same news twice.
            models.UniqueConstraint(
                fields=["order", "kind"],
                condition=Q(order__isnull=False),
                name="billing_once_per_order",
            ),
            models.UniqueConstraint(
                # An automation's step pays each time contacts reach it.
                fields=["campaign_id", "kind"],
                condition=Q(campaign_id__isnull=False) & ~Q(kind="step"),
                name="billing_once_per_campaign",
            ),
            models.UniqueConstraint(
                fields=["account"], condition=Q(kind="grant"), name="billing_one_free_allowance"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.credits}"


class Order(models.Model):
    """A customer's order of one offer, paid on a gateway's hosted page (or by bank
    transfer). Fulfilled only by the gateway's signed webhook (or billing staff for a
    transfer): coming back to the success page changes nothing."""

    class Status(models.TextChoices):
        CREATED = "created", _("Awaiting payment")
        AWAITING_TRANSFER = "awaiting_transfer", _("Awaiting bank transfer")
        PROCESSING = "processing", _("Payment processing")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Payment failed")
        EXPIRED = "expired", _("Expired")
        REFUNDED = "refunded", _("Refunded")

    class BuyerKind(models.TextChoices):
        COMPANY = "company", _("A company or organisation")
        PERSON = "person", _("A person")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="orders")
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="orders")
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED)
    # What was sold, copied at ordering: a later price change alters no order.
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    credits = models.PositiveIntegerField(default=0)
    gateway = models.CharField(max_length=16)
    # The gateway's session id; the only thing Tidings keeps of the payment (P10).
    gateway_ref = models.CharField(max_length=255, blank=True, default="")
    # The gateway's payment id (refunds name it, not the session).
    payment_ref = models.CharField(max_length=255, blank=True, default="")
    # Sent with every request to the gateway about this order: a repeat replays.
    idempotency_key = models.CharField(max_length=64, unique=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # The billing identity, asked only here (P1).
    buyer_kind = models.CharField(max_length=8, choices=BuyerKind.choices)
    billing_name = models.CharField(max_length=200)
    billing_address = EncryptedTextField()
    billing_country = models.CharField(max_length=2)
    vat_number = EncryptedTextField(blank=True, default="")
    # Decided once, when the order is placed (a VAT number VIES confirmed then; for a
    # renewal, VIES asked again when it is opened): what is charged and what the invoice
    # says both read it.
    reverse_charge = models.BooleanField(default=False)
    # The offer's price as listed when ordered (before VAT is added or reverse charged):
    # a renewal whose VAT decision differs from the order before it is charged from it.
    listed_amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    # A renewal: the plan it renews and the end of the period it pays for. Its
    # `gateway_ref` is the gateway's invoice (Stripe's, or the test gateway's).
    renewal_of = models.ForeignKey(
        "billing.Subscription",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="renewals",
    )
    period_end = models.DateTimeField(null=True, blank=True)
    # Where the customer pays a failed renewal: the gateway's page for that invoice.
    pay_url = models.URLField(max_length=500, blank=True, default="")
    # Automatic recharge (billing.recharge): the buyer asked the gateway to keep the
    # payment method for later charges off-session, and the gateway's ids of it (its
    # customer and its payment method: never anything of the card itself, P10).
    save_payment_method = models.BooleanField(default=False)
    gateway_customer = models.CharField(max_length=255, blank=True, default="")
    gateway_payment_method = models.CharField(max_length=255, blank=True, default="")
    # An automatic recharge: charged off-session to a saved payment method; its
    # `gateway_ref` is the gateway's payment (a PaymentIntent at Stripe).
    recharge = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "gateway_ref"],
                condition=~Q(gateway_ref=""),
                name="billing_one_order_per_session",
            ),
            # A period is renewed once, whatever delivers the news twice.
            models.UniqueConstraint(
                fields=["renewal_of", "period_end"],
                condition=Q(renewal_of__isnull=False),
                name="billing_one_renewal_per_period",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        return f"T-{self.pk:06d}" if self.pk else "T-new"


class AutoRecharge(models.Model):
    """An account's automatic recharge (billing.recharge): when its credits fall below
    `threshold`, the pack `offer` is ordered and charged off-session to the payment
    method saved at the gateway with `payment_order` (whose billing identity the
    recharge copies). The customer's consent is kept as it was given: who, when, the
    words shown. A failed charge turns it off (`turned_off_reason`)."""

    account = models.OneToOneField(
        "accounts.Account", on_delete=models.CASCADE, related_name="auto_recharge"
    )
    enabled = models.BooleanField(default=False)
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="+")
    threshold = models.PositiveIntegerField()
    payment_order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    consented_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consented_at = models.DateTimeField(default=timezone.now)
    consent_text = models.TextField()
    consent_language = models.CharField(max_length=8, blank=True, default="")
    turned_off_at = models.DateTimeField(null=True, blank=True)
    turned_off_reason = models.CharField(max_length=300, blank=True, default="")
    # The recharge whose failure turned it off (shown in Billing).
    failed_order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("automatic recharge")
        verbose_name_plural = _("automatic recharges")
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold__gte=1), name="billing_recharge_threshold_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} below {self.threshold}: {self.offer_id}"


class VatCheck(models.Model):
    """What VIES said of an order's VAT number, and when (billing/vies.py): the proof of
    the reverse charge. A pending check (VIES did not answer) is asked again until it
    answers; it never counts as valid."""

    class Status(models.TextChoices):
        VALID = "valid", _("Confirmed by VIES")
        INVALID = "invalid", _("Not registered in VIES")
        PENDING = "pending", _("VIES did not answer yet")

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="vat_check")
    status = models.CharField(max_length=8, choices=Status.choices)
    requested_at = models.DateTimeField(default=timezone.now)
    # When VIES answered (valid or not); empty while pending.
    checked_at = models.DateTimeField(null=True, blank=True)
    # The consultation number VIES gives a requester that sent its own VAT number.
    consultation = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=1)
    next_try_at = models.DateTimeField(null=True, blank=True)
    # Why VIES did not answer (its error code, or the network's).
    error = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("VAT check")
        verbose_name_plural = _("VAT checks")
        indexes = [
            models.Index(
                fields=["next_try_at"], condition=Q(status="pending"), name="billing_vies_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.status}"


class Subscription(models.Model):
    """The account's plan. Cancelled is final: no later (or late) event revives it.
    It renews at `current_period_end` (billing.renewals); a failed renewal starts the
    dunning (`payment_failed_at`, `dunning_step`, `sending_suspended_at`: billing.dunning)
    that a payment ends."""

    class DunningStep(models.IntegerChoices):
        NONE = 0, _("None")
        TOLD = 1, _("Told of the failed payment")
        REMINDED = 2, _("Reminded (day 3)")
        REMINDED_AGAIN = 3, _("Reminded again (day 7)")
        SUSPENDED = 4, _("Sending suspended (day 14)")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CANCELLED = "cancelled", _("Cancelled")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="subscriptions"
    )
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="subscriptions")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="subscription")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    current_period_end = models.DateTimeField()
    gateway_ref = models.CharField(max_length=255, blank=True, default="")
    # The time of the last gateway event applied: an older one changes nothing.
    event_at = models.DateTimeField(null=True, blank=True)
    # Dunning: since when a renewal is unpaid, the last step taken, and since when
    # campaigns may not start (day 14). All empty once the renewal is paid.
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    dunning_step = models.PositiveSmallIntegerField(
        choices=DunningStep.choices, default=DunningStep.NONE
    )
    sending_suspended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-current_period_end"]

    def __str__(self) -> str:
        return f"{self.offer_id} {self.status}"


class GatewayCancellation(models.Model):
    """A plan to cancel at a gateway that renews by itself (Stripe), asked when its
    account closed (billing.cancellation): kept until the gateway confirms, even past the
    account's erasure (the plan then goes; this stays, holding only the gateway's ids),
    so the request is never lost; one per subscription at the gateway, so never made
    twice."""

    subscription = models.OneToOneField(
        Subscription,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="gateway_cancellation",
    )
    gateway = models.CharField(max_length=16)
    gateway_ref = models.CharField(max_length=255)
    # Sent with every try: a try repeated (after a crash) is the same request there.
    idempotency_key = models.CharField(max_length=80)
    requested_at = models.DateTimeField(default=timezone.now)
    # When the next try is due; empty once the gateway confirmed.
    due_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Why the last try failed.
    error = models.CharField(max_length=200, blank=True, default="")
    done_at = models.DateTimeField(null=True, blank=True)
    # What the gateway said: "cancelled", or "gone" (it knew no such subscription).
    outcome = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        verbose_name = _("cancellation at the payment gateway")
        verbose_name_plural = _("cancellations at the payment gateway")
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "gateway_ref"], name="billing_cancel_at_gateway_once"
            )
        ]
        indexes = [
            models.Index(
                fields=["due_at"], condition=Q(done_at__isnull=True), name="billing_cancel_due"
            )
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.gateway_ref}"


class WebhookEvent(models.Model):
    """A request to a payment webhook, stored as it arrived, before anything else:
    untrusted until verified (dj-stripe's WebhookEventTrigger). Holds billing
    identities: deleted with the account, and after TIDINGS_RAW_WEBHOOK_DAYS."""

    gateway = models.CharField(max_length=16)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict)
    body = EncryptedTextField()
    valid = models.BooleanField(default=False)
    processed = models.BooleanField(default=False)
    event_id = models.CharField(max_length=255, blank=True, default="")
    event_type = models.CharField(max_length=100, blank=True, default="")
    outcome = models.CharField(max_length=500, blank=True, default="")
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.gateway} {self.event_type or '?'} {self.received_at:%Y-%m-%d %H:%M}"


class ProcessedEvent(models.Model):
    """One row per gateway event applied: the unique constraint is what makes a
    delivery that comes five times, or twice at once, count once."""

    gateway = models.CharField(max_length=16)
    event_id = models.CharField(max_length=255)
    at = models.DateTimeField(default=timezone.now)
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gateway", "event_id"], name="billing_event_once"),
        ]

    def __str__(self) -> str:
        return self.event_id
