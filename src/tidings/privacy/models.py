"""What the privacy engine itself keeps: collection records, policy versions, erasures."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

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
    # The same version in the other languages: {"fr": {"text": ..., "changes": ...}}.
    translations = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-number",)

    def __str__(self) -> str:
        return f"Version {self.number} of {self.published_at:%Y-%m-%d}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and PolicyVersion.objects.filter(pk=self.pk).exists():
            raise ValueError("A published policy version is never edited: publish a new one.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("A published policy version is never deleted.")

    def text_in(self, language: str) -> str:
        """The text in `language`, or the original (English) one if it has none."""
        return self.translations.get(language, {}).get("text", self.text)

    def changes_in(self, language: str) -> str:
        return self.translations.get(language, {}).get("changes", self.changes)


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


class Disclosure(models.Model):
    """A disclosure of personal data to an authority (P25): what, to whom, on which
    legal ground. Recorded by the privacy officer; kept as proof, never edited."""

    disclosed_at = models.DateTimeField(default=timezone.now)
    authority = models.CharField("to whom", max_length=200)
    legal_ground = models.CharField(
        max_length=300, help_text=_("e.g. a court order, the statute and article relied on")
    )
    reference = models.CharField(
        max_length=100, blank=True, default="", help_text=_("the authority's case or order number")
    )
    data_disclosed = models.TextField("what was disclosed")
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The account's number stays when the account is erased: the record must survive it.
    account_ref = models.PositiveBigIntegerField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    keep_until = models.DateTimeField(null=True, blank=True)
    # A disclosure may concern one of the customer's contacts rather than the customer;
    # `concerns` says whom (the contact's address), and stays as the legal record when
    # the contact is erased and `contact` becomes empty.
    contact = models.ForeignKey(
        "audience.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    concerns = EncryptedTextField("whom it concerns", blank=True, default="")
    # While a legal prohibition on telling applies (a gag order), the customer is not
    # shown the disclosure; when it ends, they are told (privacy.office).
    withheld_until = models.DateTimeField("not told to the customer until", null=True, blank=True)
    withheld_ground = models.CharField(
        "prohibition on telling", max_length=300, blank=True, default=""
    )
    customer_told_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-disclosed_at",)

    def __str__(self) -> str:
        return f"Disclosure to {self.authority} on {self.disclosed_at:%Y-%m-%d}"

    @property
    def is_withheld(self) -> bool:
        return self.withheld_until is not None and self.customer_told_at is None


class DataRequest(models.Model):
    """A request a person sent to the operator about their data (by email, letter, the
    contact page): answered within one month (GDPR art. 12(3))."""

    class Kind(models.TextChoices):
        ACCESS = "access", _("access")
        RECTIFICATION = "rectification", _("rectification")
        ERASURE = "erasure", _("erasure")
        RESTRICTION = "restriction", _("restriction")
        OBJECTION = "objection", _("objection")
        PORTABILITY = "portability", _("portability")
        OTHER = "other", _("other question")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        DONE = "done", _("answered")
        REFUSED = "refused", _("refused, with reasons")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    requester = EncryptedTextField("who asked (name and email)")
    details = EncryptedTextField(blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)
    answer = EncryptedTextField(blank=True, default="")
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_by = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    keep_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("due_at",)

    def __str__(self) -> str:
        return _("%(kind)s request of %(date)s") % {
            "kind": self.get_kind_display(),
            "date": date_format(self.received_at, "DATE_FORMAT"),
        }

    @property
    def overdue(self) -> bool:
        return self.status == self.Status.OPEN and self.due_at < timezone.now()


class AccountExport(models.Model):
    """A customer's request for all their data (P20): one zip archive, built in the
    background, downloadable by the account's users until it expires."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("being built")
        DONE = "done", _("ready")
        FAILED = "failed", _("failed")

    class Format(models.TextChoices):
        CSV = "csv", _("CSV")
        XLSX = "xlsx", _("Excel (XLSX)")
        XLS = "xls", _("Excel 97-2003 (XLS, several sheets past 65,535 rows)")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="account_exports"
    )
    requested_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=4, choices=Format.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    # The archive, relative to settings.ACCOUNT_EXPORT_DIR; rows per file of the archive.
    file = models.CharField(max_length=255, blank=True, default="")
    size = models.BigIntegerField(default=0)
    counts = models.JSONField(default=dict)
    error = models.TextField(blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"archive #{self.pk} ({self.format})"

    @property
    def filename(self) -> str:
        stamp = (self.finished_at or self.created_at).strftime("%Y%m%d-%H%M")
        return f"all-my-data-{stamp}-{self.pk}-{self.format}.zip"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_downloadable(self) -> bool:
        return self.status == self.Status.DONE and bool(self.file) and not self.is_expired
