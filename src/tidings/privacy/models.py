"""What the privacy engine itself keeps: collection records, policy versions, erasures."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tidings.core.fields import EncryptedTextField


class CollectionRecord(models.Model):
    """P2: at each point of collection, what was collected, when, why, on which basis."""

    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    point = models.CharField("point of collection", max_length=64)
    data_collected = models.JSONField("fields collected", default=list)
    purpose = models.CharField(max_length=255)
    legal_basis = models.CharField(max_length=32)
    collected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("collected_at", "pk")

    def __str__(self) -> str:
        return f"{self.point} at {self.collected_at:%Y-%m-%d %H:%M}"


class PolicyVersion(models.Model):
    """A published version of the privacy policy (P31). Versions are never edited."""

    number = models.PositiveIntegerField(unique=True)
    published_at = models.DateTimeField(default=timezone.now)
    text = models.TextField()
    changes = models.TextField("what changed", blank=True)
    fingerprint = models.CharField(max_length=64)

    class Meta:
        ordering = ("-number",)

    def __str__(self) -> str:
        return f"Version {self.number} of {self.published_at:%Y-%m-%d}"


class ErasureRecord(models.Model):
    """Proof that an account was erased: counts and dates, no personal data.

    `notice_to` holds the last addresses, encrypted, only until the closing notice has
    been queued (P19); then it is blanked.
    """

    account_ref = models.PositiveBigIntegerField(unique=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict)
    requested_by = models.CharField(max_length=32, default="schedule")
    notice_to = EncryptedTextField(blank=True, default="")

    def __str__(self) -> str:
        return f"Erasure of account #{self.account_ref}"


class SuppressedEmail(models.Model):
    """A keyed hash (HMAC-SHA256) of an erased address, so it is never mailed again
    without a new consent; the address itself is not kept."""

    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"suppressed {self.digest[:12]}…"
