"""Every write to a customer's account and personal data (DESIGN principle 2).

Each service runs in one transaction, writes the audit event and queues the notice that
tells the person what changed (P19).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tidings.accounts import tokens
from tidings.accounts.models import Account, User
from tidings.core import addresses, collection, jobs, locales, ratelimit
from tidings.core.mail import send_templated
from tidings.staff import audit


class AccountError(Exception):
    """A problem the user caused and can fix; the message is shown as it is."""


# What the registration form collects, and why (P1, P2).
# The job that erases a closed account (privacy owns it; queued by name).
ERASE_ACCOUNT = "tidings.privacy.tasks.erase_account_task"

REGISTRATION_PURPOSES = {
    "organisation name": ("providing the service to the organisation", "contract"),
    "name": ("addressing the customer and identifying the account holder", "contract"),
    "email": ("logging in and messages about the account", "contract"),
    "password": ("logging in (stored only as an Argon2 hash)", "contract"),
    "postal address": ("invoices, only if given", "contract"),
    "phone": ("reaching the customer about the account, only if given", "consent"),
}

EDITABLE_FIELDS = {
    "name": gettext_lazy("Name"),
    "phone": gettext_lazy("Phone"),
    "postal_address": gettext_lazy("Postal address"),
}
SECRET_FIELDS = {"phone", "postal_address", "email"}


def mask(value: str) -> str:
    """Show enough of a secret value to recognise it, not enough to read it."""
    if not value:
        return "(empty)"
    if "@" in value:
        local, _at, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    return "•••" + value[-2:] if len(value) > 4 else "•••"


def _clean_email(email: str) -> str:
    try:
        email = addresses.normalise_email(email)
        validate_email(email)
    except (addresses.InvalidAddress, ValidationError):
        raise AccountError(
            _("“%(lower)s” is not a valid email address.") % {"lower": email.strip().lower()}
        ) from None
    return email


def register_customer(
    *,
    organisation: str,
    name: str,
    email: str,
    password: str,
    postal_address: str = "",
    phone: str = "",
    language: str = "",
) -> str:
    """Create an account and its first user, unconfirmed, and send the confirmation link;
    the address mailed. An address that already has an account gets the same answer (no
    one learns who has an account here) and its owner a mail saying someone tried."""
    email = _clean_email(email)
    candidate = User(email=email, name=name)
    try:
        validate_password(password, candidate)
    except ValidationError as error:
        raise AccountError(" ".join(error.messages)) from None
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        # As long as a real sign-up takes (the password's hash is its cost), so the time
        # of the answer tells nothing either.
        make_password(password)
        _tell_of_second_signup(existing)
        return email
    try:
        with transaction.atomic():
            language = locales.supported_language(language)
            account = Account.objects.create(name=organisation.strip(), language=language)
            user = User.objects.create_user(
                language=language,
                email=email,
                password=password,
                name=name.strip(),
                account=account,
                postal_address=postal_address.strip(),
                phone=phone.strip(),
            )
            collected = ["organisation name", "name", "email", "password"]
            if postal_address.strip():
                collected.append("postal address")
            if phone.strip():
                collected.append("phone")
            collection.record(
                collection.Collection(
                    point="registration",
                    items=[
                        collection.Item(item, *REGISTRATION_PURPOSES[item]) for item in collected
                    ],
                    account=account,
                    user=user,
                )
            )
            audit.record(audit.AuditEvent.Action.CREATE, user, by=user, fields=collected)
            send_confirmation(user)
    except IntegrityError:
        # Two sign-ups with the same address at once: the unique index decided for the
        # other one, and this one is answered as any sign-up with a known address.
        existing = User.objects.filter(email__iexact=email).first()
        if existing is not None:
            _tell_of_second_signup(existing)
        return email
    return user.email


# Mails to the owner of an address someone tried to register again, per address a day.
SECOND_SIGNUP_MAILS_PER_DAY = 3


def _tell_of_second_signup(user: User) -> None:
    """The owner of the address hears of it, not the person who tried: an account not
    confirmed yet gets its confirmation link again, a confirmed one a warning."""
    if not ratelimit.allow(
        "register.known", user.email, limit=SECOND_SIGNUP_MAILS_PER_DAY, seconds=86400
    ):
        return
    if user.email_confirmed_at is None:
        send_confirmation(user)
        return
    send_templated(
        "accounts/mail/signup_again",
        [user.email],
        {"user": user},
        account_id=user.account_id,
    )


def send_confirmation(user: User) -> None:
    token = tokens.make("confirm", u=user.pk, e=user.email)
    send_templated(
        "accounts/mail/confirm",
        [user.email],
        {"user": user, "token": token, "days": settings.EMAIL_CONFIRMATION_DAYS},
    )


def confirm_email(token: str) -> User:
    """Confirm the address a registration link was sent to. Raises InvalidLink."""
    data = tokens.read("confirm", token, max_age_days=settings.EMAIL_CONFIRMATION_DAYS)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=data["u"], email=data["e"]).first()
        if user is None:
            raise tokens.InvalidLink(_("This link is not valid any more."))
        if user.email_confirmed_at is None:
            user.email_confirmed_at = timezone.now()
            user.save(update_fields=["email_confirmed_at"])
            audit.record(
                audit.AuditEvent.Action.UPDATE, user, by=user, fields=["email_confirmed_at"]
            )
    return user


@dataclass(frozen=True)
class Change:
    label: str | Promise
    old: str
    new: str
    secret: bool


def _notify_changes(user: User, changes: list[Change], *, by: User | None, to: list[str]) -> None:
    send_templated(
        "accounts/mail/changed",
        to,
        {"user": user, "changes": changes, "by_staff": bool(by and by.is_staff)},
    )


def update_profile(user: User, *, by: User, reason: str = "", **values: str) -> list[Change]:
    """Change name, phone or postal address; tell the person what changed (P16, P19)."""
    changes: list[Change] = []
    changed_fields: list[str] = []
    for field, new in values.items():
        if field not in EDITABLE_FIELDS:
            raise AccountError(_("%(field)s cannot be changed here.") % {"field": field})
        new = (new or "").strip()
        if field == "name" and not new:
            raise AccountError(_("Your name cannot be empty."))
        old = getattr(user, field)
        if old == new:
            continue
        secret = field in SECRET_FIELDS
        changes.append(
            Change(
                EDITABLE_FIELDS[field],
                mask(old) if secret else old,
                mask(new) if secret else new,
                secret,
            )
        )
        changed_fields.append(field)
        setattr(user, field, new)
    if not changes:
        return []
    with transaction.atomic():
        user.full_clean(exclude=["password", "email"])
        user.save(update_fields=changed_fields)
        audit.record(
            audit.AuditEvent.Action.UPDATE, user, by=by, fields=changed_fields, reason=reason
        )
        _notify_changes(user, changes, by=by, to=[user.email])
    return changes


def rename_account(account: Account, *, name: str, by: User, reason: str = "") -> list[Change]:
    name = name.strip()
    if not name:
        raise AccountError(_("The organisation name cannot be empty."))
    if name == account.name:
        return []
    change = Change(gettext_lazy("Organisation name"), account.name, name, False)
    with transaction.atomic():
        account.name = name
        account.full_clean()
        account.save(update_fields=["name"])
        audit.record(audit.AuditEvent.Action.UPDATE, account, by=by, fields=["name"], reason=reason)
        for user in account.users.all():
            _notify_changes(user, [change], by=by, to=[user.email])
    return [change]


def request_email_change(user: User, *, new_email: str, by: User, reason: str = "") -> None:
    """Send a confirmation link to the new address; warn the old one (P19)."""
    new_email = _clean_email(new_email)
    if new_email == user.email:
        raise AccountError(_("That is already your email address."))
    if User.objects.filter(email__iexact=new_email).exclude(pk=user.pk).exists():
        raise AccountError(_("Another account already uses this email address."))
    with transaction.atomic():
        user.pending_email = new_email
        user.save(update_fields=["pending_email"])
        audit.record(
            audit.AuditEvent.Action.UPDATE, user, by=by, fields=["pending_email"], reason=reason
        )
        token = tokens.make("email-change", u=user.pk, e=new_email)
        send_templated(
            "accounts/mail/confirm_new_email",
            [new_email],
            {"user": user, "token": token, "days": settings.EMAIL_CONFIRMATION_DAYS},
            user_ids={new_email: user.pk},
        )
        _notify_changes(
            user,
            [
                Change(
                    "Email address (waiting for confirmation)",
                    mask(user.email),
                    mask(new_email),
                    True,
                )
            ],
            by=by,
            to=[user.email],
        )


def confirm_email_change(token: str) -> User:
    data = tokens.read("email-change", token, max_age_days=settings.EMAIL_CONFIRMATION_DAYS)
    with transaction.atomic():
        user = (
            User.objects.select_for_update().filter(pk=data["u"], pending_email=data["e"]).first()
        )
        if user is None:
            raise tokens.InvalidLink(_("This link is not valid any more."))
        if User.objects.filter(email__iexact=data["e"]).exclude(pk=user.pk).exists():
            raise tokens.InvalidLink(_("Another account already uses this email address."))
        old = user.email
        user.email = data["e"]
        user.pending_email = ""
        user.email_confirmed_at = timezone.now()
        user.save(update_fields=["email", "pending_email", "email_confirmed_at"])
        audit.record(audit.AuditEvent.Action.UPDATE, user, by=user, fields=["email"])
        _notify_changes(
            user,
            [Change("Email address", mask(old), mask(user.email), True)],
            by=user,
            to=[old, user.email],
        )
    return user


def set_password(user: User, *, password: str, by: User | None, reason: str = "") -> None:
    """Set a new password (change or reset) and tell the person (P19)."""
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise AccountError(" ".join(error.messages)) from None
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit.record(
            audit.AuditEvent.Action.UPDATE, user, by=by, fields=["password"], reason=reason
        )
        _notify_changes(user, [Change("Password", "", "", True)], by=by, to=[user.email])


PROCESSING_SWITCHES = {
    "allow_product_updates": gettext_lazy("Product-update emails"),
    "allow_support_followups": gettext_lazy("Follow-ups after a support conversation"),
    "allow_analytics": gettext_lazy("Usage analytics"),
}


# What apps above do when a switch changes (the desk cancels pending follow-ups when
# they are switched off): filled from their AppConfig.ready(), run in the transaction.
ProcessingHook = Callable[[User, dict[str, bool]], None]
_processing_hooks: list[ProcessingHook] = []


def on_processing_change(hook: ProcessingHook) -> None:
    if hook not in _processing_hooks:
        _processing_hooks.append(hook)


def set_processing(user: User, *, by: User, reason: str = "", **switches: bool) -> list[Change]:
    """Switch single optional processings on or off; effective at once (P18, P21)."""
    changes = []
    for field, value in switches.items():
        if field not in PROCESSING_SWITCHES:
            raise AccountError(_("Unknown processing: %(field)s") % {"field": field})
        if getattr(user, field) != value:
            old = "on" if getattr(user, field) else "off"
            changes.append(Change(PROCESSING_SWITCHES[field], old, "on" if value else "off", False))
            setattr(user, field, value)
    if not changes:
        return []
    with transaction.atomic():
        fields = [f for f in switches if f in PROCESSING_SWITCHES]
        user.save(update_fields=fields)
        audit.record(audit.AuditEvent.Action.UPDATE, user, by=by, fields=fields, reason=reason)
        _notify_changes(user, changes, by=by, to=[user.email])
        for hook in _processing_hooks:
            hook(user, {f: bool(getattr(user, f)) for f in fields})
    return changes


def check_password(user: User, password: str) -> None:
    if not user.check_password(password):
        raise AccountError(_("The password is not correct."))


# What apps above do when an account closes (billing cancels its plans, here and at the
# payment gateway): filled from their AppConfig.ready(), run in the close's transaction.
CloseHook = Callable[..., object]
_close_hooks: list[CloseHook] = []


def on_account_closed(hook: CloseHook) -> None:
    """`hook(account, by=user)` runs in the transaction that closes an account."""
    if hook not in _close_hooks:
        _close_hooks.append(hook)


def close_account(account: Account, *, by: User, erase_now: bool = False) -> Account:
    """Close the account: every processing stops now; erasure is scheduled (P13, P17, P21).

    With erase_now the grace period is skipped and erasure is queued at once.
    """
    if account.status != Account.Status.ACTIVE:
        raise AccountError(_("This account is already closed."))
    now = timezone.now()
    with transaction.atomic():
        account.status = Account.Status.CLOSED
        account.closed_at = now
        account.erase_after = (
            now if erase_now else now + timedelta(days=settings.RETENTION["grace_days"])
        )
        account.erase_deadline = now + timedelta(days=settings.RETENTION["erasure_deadline_days"])
        account.save(update_fields=["status", "closed_at", "erase_after", "erase_deadline"])
        audit.record(
            audit.AuditEvent.Action.CLOSE,
            account,
            by=by,
            fields=["status"],
            reason="erase now" if erase_now else "closed by the customer",
        )
        send_templated(
            "accounts/mail/closed",
            list(account.users.values_list("email", flat=True)),
            {
                "account": account,
                "erase_now": erase_now,
                "grace_days": settings.RETENTION["grace_days"],
                # Ready archives of all the account's data: a closed account's pages,
                # their download included, lead to reopening it (decorators).
                "archives": list(
                    account.account_exports.filter(status="done", expires_at__gt=now)
                    .exclude(file="")
                    .order_by("created_at")
                ),
            },
        )
        for hook in _close_hooks:
            hook(account, by=by)
        if erase_now:
            jobs.enqueue(ERASE_ACCOUNT, account.pk)
    return account


def reopen_account(account: Account, *, by: User) -> Account:
    """Reopen a closed account during its grace period; the erasure is cancelled."""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account.pk)
        if account.status != Account.Status.CLOSED:
            raise AccountError(_("Only a closed account can be reopened."))
        if account.erase_after and account.erase_after <= timezone.now():
            raise AccountError(_("The grace period is over: this account is being erased."))
        account.status = Account.Status.ACTIVE
        account.closed_at = account.erase_after = account.erase_deadline = None
        account.save(update_fields=["status", "closed_at", "erase_after", "erase_deadline"])
        audit.record(audit.AuditEvent.Action.REOPEN, account, by=by, fields=["status"])
        send_templated(
            "accounts/mail/reopened",
            list(account.users.values_list("email", flat=True)),
            {"account": account},
        )
    return account


# --- restriction of processing (GDPR art. 18, P18) -------------------------------------


def restrict_account(account: Account, *, by: User, reason: str) -> Account:
    """Freeze every processing of the account's data but storage: no campaign, import,
    signup or mail to its users but legal notices, until it is lifted. Its users can
    still log in, see and download their data. They are told."""
    reason = " ".join(reason.split())
    if not reason:
        raise AccountError(_("Say why processing is restricted."))
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account.pk)
        if account.restricted_at is not None and account.restriction_lifts_at is None:
            raise AccountError(_("Processing of this account is restricted already."))
        account.restricted_at = account.restricted_at or timezone.now()
        account.restriction_reason, account.restriction_lifts_at = reason[:500], None
        account.save(update_fields=["restricted_at", "restriction_reason", "restriction_lifts_at"])
        audit.record(
            audit.AuditEvent.Action.UPDATE, account, by=by, fields=["restricted_at"], reason=reason
        )
        send_templated(
            "accounts/mail/restricted",
            list(account.users.values_list("email", flat=True)),
            {"account": account, "by_staff": by.is_staff},
        )
    return account


def lift_account_restriction(account: Account, *, by: User, reason: str = "") -> Account:
    """End the restriction. Asked by the account's own user, it ends now; decided by
    the operator's staff, its users are told first and it ends after the notice period
    (art. 18(3))."""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account.pk)
        if account.restricted_at is None:
            raise AccountError(_("Processing of this account is not restricted."))
        users = list(account.users.values_list("email", flat=True))
        if by.is_staff:
            if account.restriction_lifts_at is None:
                account.restriction_lifts_at = timezone.now() + timedelta(
                    days=settings.RESTRICTION_NOTICE_DAYS
                )
                account.save(update_fields=["restriction_lifts_at"])
                send_templated(
                    "accounts/mail/restriction_lifts",
                    users,
                    {"account": account, "days": settings.RESTRICTION_NOTICE_DAYS},
                )
        else:
            account.restricted_at = account.restriction_lifts_at = None
            account.restriction_reason = ""
            account.save(
                update_fields=["restricted_at", "restriction_reason", "restriction_lifts_at"]
            )
            send_templated("accounts/mail/restriction_lifted", users, {"account": account})
        audit.record(
            audit.AuditEvent.Action.UPDATE,
            account,
            by=by,
            fields=["restricted_at"],
            reason=reason or "restriction lifted",
        )
    return account


def lift_due_account_restrictions(now: datetime | None = None) -> int:
    """Beat, hourly: accounts whose announced end of restriction has come."""
    return Account.objects.filter(
        restricted_at__isnull=False, restriction_lifts_at__lte=now or timezone.now()
    ).update(restricted_at=None, restriction_reason="", restriction_lifts_at=None)


def set_locale(user: User, *, by: User, language: str, time_zone: str | None = None) -> bool:
    """Record the language (and time zone) a user reads Tidings and its mails in.

    A preference, not contact data: audited, and no mail about it. Returns whether
    anything changed; an unknown language or zone changes nothing."""
    if language and language not in locales.language_codes():
        raise AccountError(_("Tidings does not speak that language."))
    if time_zone and not locales.is_time_zone(time_zone):
        raise AccountError(_("That is not a time zone."))
    fields = ["language"] if user.language != language else []
    if time_zone is not None and user.time_zone != time_zone:
        fields.append("time_zone")
    if not fields:
        return False
    with transaction.atomic():
        user.language = language
        if time_zone is not None:
            user.time_zone = time_zone
        user.save(update_fields=fields)
        audit.record(audit.AuditEvent.Action.UPDATE, user, by=by, fields=fields)
    return True


def set_account_language(account: Account, *, language: str, by: User) -> bool:
    """The language of the mails the account's contacts get (confirmations, receipts)."""
    if language not in locales.language_codes():
        raise AccountError(_("Tidings does not speak that language."))
    if account.language == language:
        return False
    with transaction.atomic():
        account.language = language
        account.save(update_fields=["language"])
        audit.record(audit.AuditEvent.Action.UPDATE, account, by=by, fields=["language"])
    return True
