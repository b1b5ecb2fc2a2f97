"""Customers: the organisation's Account and the people (Users) who log in to it."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.core.addresses import canonical
from tidings.core.fields import EncryptedTextField
from tidings.staff.models import StaffRole


class Account(models.Model):
    """A customer organisation. Its users, and later its audience, belong to it."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed, erasure scheduled")
        ERASING = "erasing", _("Being erased")

    name = models.CharField("organisation name", max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Erasure starts at erase_after (end of the grace period) and must be complete by
    # erase_deadline (P13).
    erase_after = models.DateTimeField(null=True, blank=True)
    erase_deadline = models.DateTimeField(null=True, blank=True)
    # Restriction of processing (GDPR art. 18, P18): the account and its data are kept,
    # nothing is processed (no campaign, import or export to a third party, no mail to
    # its users but legal notices) until it is lifted, and its users are told before.
    restricted_at = models.DateTimeField(null=True, blank=True)
    restriction_reason = models.CharField(max_length=500, blank=True, default="")
    restriction_lifts_at = models.DateTimeField(null=True, blank=True)
    # The language of the mails the account's contacts get (confirmations, receipts).
    language = models.CharField(
        max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def is_processing_allowed(self) -> bool:
        """False once closed: closing stops every processing at once (P21)."""
        return self.status == self.Status.ACTIVE

    @property
    def may_process(self) -> bool:
        """Open and not restricted (P18): what sending, importing and collecting need.
        A restricted account's users still log in, see and download their data."""
        return self.is_processing_allowed and self.restricted_at is None

    @property
    def is_restricted(self) -> bool:
        return self.restricted_at is not None

    @staticmethod
    def may_process_q(path: str = "") -> Q:
        """`may_process` as a filter: on Account, or through a relation named by `path`
        (e.g. "account__")."""
        return Q(**{f"{path}status": Account.Status.ACTIVE, f"{path}restricted_at__isnull": True})


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        # A user saved before addresses were stored with an IDNA domain keeps the
        # Unicode one; either form finds them.
        typed = (username or "").strip().lower()
        found = (
            self.filter(Q(email__iexact=canonical(typed)) | Q(email__iexact=typed))
            .order_by("pk")
            .first()
        )
        if found is None:
            raise self.model.DoesNotExist(f"No user {typed!r}")
        return found

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        user = self.model(email=canonical(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("staff_role", User.StaffRole.ADMIN)
        extra.setdefault("email_confirmed_at", timezone.now())
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in: a customer's user (with an account) or a staff member."""

    StaffRole = StaffRole

    email = models.EmailField(unique=True, max_length=254)
    name = models.CharField(max_length=150)
    # Optional (P1): asked only where needed; encrypted at rest (P8).
    phone = EncryptedTextField(blank=True, default="")
    postal_address = EncryptedTextField(blank=True, default="")
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="users"
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    staff_role = models.CharField(
        max_length=20, choices=StaffRole.choices, default=StaffRole.NONE, blank=True
    )
    date_joined = models.DateTimeField(default=timezone.now)
    email_confirmed_at = models.DateTimeField(null=True, blank=True)
    # An address change takes effect only once the new address is confirmed.
    pending_email = models.EmailField(blank=True, default="")
    # Empty: the browser's language and the operator's time zone.
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, blank=True, default="")
    time_zone = models.CharField(max_length=64, blank=True, default="")

    # Optional processing the customer can switch off one by one (P18). Analytics is
    # off until they switch it on (privacy by default).
    allow_product_updates = models.BooleanField("product-update emails", default=True)
    allow_support_followups = models.BooleanField("follow-ups after support", default=True)
    allow_analytics = models.BooleanField("usage analytics", default=False)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["name"]

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def email_confirmed(self) -> bool:
        return self.email_confirmed_at is not None


class ApiKey(models.Model):
    """A key for the HTTP API, scoped to one account. Only its SHA-256 digest is
    stored: the key itself is shown once, when it is created."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # The first characters of the key, shown in lists so the customer can tell keys apart.
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
