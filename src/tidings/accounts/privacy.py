"""Data map entries and retention rules for accounts and users."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.sessions.models import Session
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from tidings.accounts.models import Account, ApiKey, User
from tidings.core import retention
from tidings.core.datamap import (
    DataClass,
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)

register(
    Account,
    owner=Owner.CUSTOMER,
    category=_("identity"),
    purpose=_("providing the service the customer signed up for"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("while the account is open; erased 45 to 60 days after closing"),
    personal_fields=[
        "name",
        "created_at",
        "closed_at",
        "erase_after",
        "erase_deadline",
        "restricted_at",
        "restriction_reason",
        "restriction_lifts_at",
        "language",
    ],
    erase=Erasure.DELETE,
    account_path="",
    dated_by="created_at",
    contact="the customer's own identity and access: no contact's data",
)
register(
    User,
    owner=Owner.CUSTOMER,
    category=_("identity and contact details"),
    purpose=_("logging in, contacting the customer about their account, invoicing"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("while the account is open; erased 45 to 60 days after closing"),
    personal_fields=[
        "name",
        "email",
        "pending_email",
        "phone",
        "postal_address",
        "date_joined",
        "email_confirmed_at",
        "last_login",
        "allow_product_updates",
        "allow_support_followups",
        "allow_analytics",
        "language",
        "time_zone",
    ],
    secret_fields=["password"],
    erase=Erasure.DELETE,
    account_path="account",
    dated_by="date_joined",
    contact="the customer's own identity and access: no contact's data",
)
register(
    TOTPDevice,
    owner=Owner.CUSTOMER,
    category=_("account security"),
    purpose=_("two-factor authentication"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("until the device is removed or the account erased"),
    personal_fields=["name", "confirmed", "last_used_at"],
    secret_fields=["key"],
    erase=Erasure.DELETE,
    account_path="user__account",
    exported=True,
    contact="the customer's own identity and access: no contact's data",
)
declare_free_of_personal_data(
    Session,
    "signed session state keyed by a random id; expires after TIDINGS_SESSION_HOURS and "
    "is flushed at logout and when the account is closed",
)
declare_free_of_personal_data(
    LogEntry,
    "Tidings's admin writes no LogEntry rows: the audit log (staff.AuditEvent) replaces it",
)


def _login_records(
    model: type[AccessAttempt | AccessLog | AccessFailureLog],
) -> Callable[[Account], QuerySet[Any]]:
    def rows(account: Account) -> QuerySet[Any]:
        return model.objects.filter(
            username__in=list(account.users.values_list("email", flat=True))
        )

    return rows


for _model in (AccessAttempt, AccessLog, AccessFailureLog):
    register(
        _model,
        owner=Owner.CUSTOMER,
        category=_("login records"),
        data_class=DataClass.BEHAVIOURAL,
        purpose=_("throttling and locking out repeated failed logins (P9)"),
        legal_basis=LegalBasis.LEGITIMATE_INTEREST,
        retention=_(
            "not written: failures are counted in the cache and expire with the "
            "lockout (TIDINGS_LOGIN_LOCKOUT_MINUTES)"
        ),
        personal_fields=["username", "ip_address", "user_agent"],
        erase=Erasure.DELETE,
        rows_for_account=_login_records(_model),
        contact="the customer's own identity and access: no contact's data",
    )
register(
    ApiKey,
    owner=Owner.CUSTOMER,
    category=_("programmatic access keys"),
    purpose=_("letting the customer's own systems use the API"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("until the key is revoked and the account erased"),
    personal_fields=["name", "created_at", "last_used_at", "revoked_at"],
    shown_fields=("name", "prefix", "created_at", "last_used_at", "revoked_at"),
    secret_fields=["digest"],
    erase=Erasure.DELETE,
    account_path="account",
    contact="the customer's own identity and access: no contact's data",
)


def _unconfirmed_registrations(now: datetime) -> QuerySet[Account]:
    cutoff = now - timedelta(days=settings.RETENTION["unconfirmed_signup_days"])
    return Account.objects.filter(created_at__lt=cutoff).exclude(
        users__email_confirmed_at__isnull=False
    )


retention.register(
    "unconfirmed registrations",
    why=lambda: (
        "a registration whose email address was never confirmed is deleted after "
        f"{settings.RETENTION['unconfirmed_signup_days']} days"
    ),
    expired=_unconfirmed_registrations,
)
