"""API keys: created and revoked by the customer, stored hashed, shown once."""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account, ApiKey, User
from tidings.accounts.services import AccountError, Change, _notify_changes
from tidings.staff import audit

KEY_PREFIX = "tid_"


def digest(key: str) -> str:
    # A key is 32 random bytes: a fast hash cannot be brute-forced, unlike a password.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(account: Account, *, name: str, by: User) -> tuple[ApiKey, str]:
    """Make a key for `account`; returns the row and the key, which is never shown again."""
    name = name.strip()
    if not name:
        raise AccountError(_("Give the key a name, so you can tell it apart later."))
    if by.account_id != account.pk:
        raise AccountError(_("You can only create keys for your own account."))
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            account=account, name=name[:100], prefix=key[:10], digest=digest(key), created_by=by
        )
        audit.record(audit.AuditEvent.Action.CREATE, api_key, by=by, fields=["name"])
        change = Change("API key", "", f"“{api_key.name}” ({api_key.prefix}…) created", False)
        for user in account.users.all():
            _notify_changes(user, [change], by=by, to=[user.email])
    return api_key, key


def revoke_api_key(api_key: ApiKey, *, by: User) -> ApiKey:
    if by.account_id != api_key.account_id and not by.is_staff:
        raise AccountError(_("That key belongs to another account."))
    if api_key.revoked_at is not None:
        return api_key
    with transaction.atomic():
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit.record(audit.AuditEvent.Action.UPDATE, api_key, by=by, fields=["revoked_at"])
        change = Change("API key", "", f"“{api_key.name}” ({api_key.prefix}…) revoked", False)
        for user in api_key.account.users.all():
            _notify_changes(user, [change], by=by, to=[user.email])
    return api_key


def authenticate(key: str) -> ApiKey | None:
    """The active key of an open account that `key` is, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    api_key = (
        ApiKey.objects.select_related("account")
        .filter(digest=digest(key), revoked_at__isnull=True)
        .first()
    )
    if api_key is None or api_key.account.status != Account.Status.ACTIVE:
        return None  # a closed account stops all processing at once (P17)
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key
