"""The audit log (P7): append-only, each entry chained by hash to the one before."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class StaffRole(models.TextChoices):
    """What a staff member may reach (staff.roles gives each role its permissions);
    `accounts.User.staff_role` holds it."""

    NONE = "", _("Not staff")
    SUPPORT = "support", _("Support agent")
    BILLING = "billing", _("Billing")
    PRIVACY_OFFICER = "privacy_officer", _("Privacy officer")
    ADMIN = "admin", _("Administrator")


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(_("audit events cannot be changed"))

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(_("audit events cannot be deleted"))

    # The internal doors Django itself uses (bulk_update, fast cascade deletes) are shut
    # too, so no code path reaches the table except an INSERT.
    def _update(self, values: Any) -> int:
        raise AppendOnlyError(_("audit events cannot be changed"))

    def _raw_delete(self, using: str | None) -> int:
        raise AppendOnlyError(_("audit events cannot be deleted"))


class AuditEvent(models.Model):
    """Who did what to which record, when and why.

    Holds ids and field names, never the personal values themselves, so it can be kept
    after an account's erasure without keeping its data. No foreign keys: an entry is
    never rewritten, not even when the actor or the record is deleted.
    """

    class Action(models.TextChoices):
        READ = "read", _("Read")
        LIST = "list", _("Listed")
        CREATE = "create", _("Created")
        UPDATE = "update", _("Changed")
        DELETE = "delete", _("Deleted")
        EXPORT = "export", _("Exported")
        ERASE = "erase", _("Erased")
        LOGIN = "login", _("Logged in")
        CLOSE = "close", _("Closed")
        REOPEN = "reopen", _("Reopened")

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True, help_text=_("user id, or empty"))
    actor_kind = models.CharField(max_length=16, help_text=_("customer, staff or system"))
    actor_role = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=64, blank=True)
    account_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    fields = models.JSONField(default=list, help_text=_("names of the fields read or changed"))
    reason = models.CharField(max_length=500, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_kind} {self.action} {self.target_type}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError(_("audit events cannot be changed"))
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(_("audit events cannot be deleted"))

    def payload(self) -> dict[str, Any]:
        """The content the hash covers."""
        return {
            "at": self.at.isoformat(),
            "actor_id": self.actor_id,
            "actor_kind": self.actor_kind,
            "actor_role": self.actor_role,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "account_id": self.account_id,
            "fields": list(self.fields),
            "reason": self.reason,
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self) -> str:
        canonical = json.dumps(self.payload(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


GENESIS_HASH = "0" * 64


class AuditExpiry(models.Model):
    """The oldest audit entries were deleted when their retention ended (P12): up to and
    including entry `through_pk`, whose hash is kept, so the entries that remain still
    verify from here. The database lets an audit entry be deleted only at or below such
    a record, and never changes or deletes the record itself."""

    at = models.DateTimeField(default=timezone.now)
    written_before = models.DateTimeField(help_text=_("entries written before this went"))
    through_pk = models.BigIntegerField()
    through_hash = models.CharField(max_length=64)
    count = models.PositiveBigIntegerField()

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ("through_pk",)

    def __str__(self) -> str:
        return f"{self.count} audit entries up to #{self.through_pk} deleted at {self.at:%Y-%m-%d}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError(_("audit expiry records cannot be changed"))
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(_("audit expiry records cannot be deleted"))
