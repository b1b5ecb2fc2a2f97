"""Invoices. They outlive an erased account for the legal accounting period (P14)."""

from django.db import models
from django.utils import timezone

from tidings.core.fields import EncryptedTextField


class Invoice(models.Model):
    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invoices",
    )
    number = models.CharField(max_length=32, unique=True)
    issued_at = models.DateTimeField(default=timezone.now)
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="EUR")
    # The billing identity an invoice legally needs, copied at issue time.
    billing_name = models.CharField(max_length=200)
    billing_address = EncryptedTextField(blank=True, default="")
    # Set by the erasure job: after this date the retention job deletes the invoice.
    keep_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.number
