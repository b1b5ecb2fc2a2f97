"""The privacy office: requests received by the operator, disclosures to authorities
(P25), and the records of processing activities (GDPR art. 30), for the privacy officer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account, User
from tidings.core import addresses, baseurl, datamap
from tidings.core.datamap import BASIS_LABELS, LegalBasis, Owner, plain
from tidings.core.mail import send_templated
from tidings.privacy.models import DataRequest, Disclosure
from tidings.staff import audit

logger = logging.getLogger("tidings")

# Open requests due within this many days are escalated to the privacy officers.
ESCALATE_DAYS_BEFORE = 7


class OfficeError(ValueError):
    """A record the privacy office cannot make; the message says why."""


def one_month_after(moment: datetime) -> datetime:
    """The same day next month (art. 12(3)); the month's last day when it has no such day."""
    return moment + relativedelta(months=1)


def _keep_until() -> datetime:
    return timezone.now() + relativedelta(years=settings.RETENTION["audit_years"])


def record_disclosure(
    *,
    by: User,
    authority: str,
    legal_ground: str,
    data_disclosed: str,
    reference: str = "",
    account: Account | None = None,
    contact: Any = None,
    disclosed_at: datetime | None = None,
    withheld_until: datetime | None = None,
    withheld_ground: str = "",
) -> Disclosure:
    """Record what was disclosed to which authority, when, on which legal ground (P25),
    about a customer or one of their contacts (`contact`, an audience.Contact of
    `account`). The customer is told at once, unless a legal prohibition on telling
    applies: then its ground and end are recorded, and the customer is told when it ends
    (`tell_customers_of_ended_withholdings`). Every step is audited."""
    now = timezone.now()
    disclosed_at = disclosed_at or now
    withheld_ground = withheld_ground.strip()
    if not (authority.strip() and legal_ground.strip() and data_disclosed.strip()):
        raise OfficeError(_("Say to whom, on which legal ground, and what was disclosed."))
    if disclosed_at > now:
        raise OfficeError(_("A disclosure is recorded once it was made: not a future date."))
    if contact is not None and (account is None or contact.account_id != account.pk):
        raise OfficeError(_("That contact is not one of that account's."))
    if (withheld_until is None) != (not withheld_ground):
        raise OfficeError(
            _("A prohibition on telling the customer needs both its legal ground and its end.")
        )
    if withheld_until is not None:
        if account is None:
            raise OfficeError(_("Only a disclosure about a customer's account is withheld."))
        if withheld_until <= now:
            raise OfficeError(_("The prohibition on telling must end in the future."))
    with transaction.atomic():
        disclosure = Disclosure.objects.create(
            authority=authority.strip(),
            legal_ground=legal_ground.strip(),
            data_disclosed=data_disclosed.strip(),
            reference=reference.strip(),
            account=account,
            account_ref=account.pk if account else None,
            contact=contact,
            concerns=contact.email if contact is not None else "",
            recorded_by=by,
            disclosed_at=disclosed_at,
            withheld_until=withheld_until,
            withheld_ground=withheld_ground,
        )
        reason = f"disclosure to {disclosure.authority}: {disclosure.legal_ground}"
        if disclosure.is_withheld:
            # Not in the customer's audit trail while they may not be told.
            audit.record(
                audit.AuditEvent.Action.EXPORT,
                by=by,
                target_type=Disclosure._meta.label,
                target_id=str(disclosure.pk),
                fields=["data_disclosed", "withheld_until", "withheld_ground"],
                reason=f"{reason}; withheld from the customer until "
                f"{withheld_until:%Y-%m-%d}: {withheld_ground}",
            )
        else:
            audit.record(
                audit.AuditEvent.Action.EXPORT,
                disclosure,
                by=by,
                fields=["data_disclosed"],
                reason=reason,
                account_id=account.pk if account else None,
            )
            if account is not None:
                _tell_customer(disclosure, now)
    return disclosure


def _tell_customer(disclosure: Disclosure, now: datetime) -> None:
    """Mail the account's users about the disclosure; from now on it shows in My Account."""
    disclosure.customer_told_at = now
    disclosure.save(update_fields=["customer_told_at"])
    if disclosure.account_id is None:
        return
    users = list(
        User.objects.filter(account_id=disclosure.account_id, is_active=True)
        .order_by("pk")
        .values_list("email", flat=True)
    )
    send_templated("privacy/mail/disclosure", users, {"disclosure": disclosure})


def withheld_disclosures() -> models.QuerySet[Disclosure]:
    return Disclosure.objects.filter(withheld_until__isnull=False, customer_told_at__isnull=True)


def tell_customers_of_ended_withholdings(now: datetime | None = None) -> int:
    """The prohibitions on telling that have ended: each customer is told of the
    disclosure (mail; shown in My Account from now on), audited. Returns how many."""
    now = now or timezone.now()
    told = 0
    for pk in withheld_disclosures().filter(withheld_until__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            disclosure = withheld_disclosures().select_for_update().filter(pk=pk).first()
            if disclosure is None:
                continue  # told meanwhile by another run
            if disclosure.account_id is not None:
                _tell_customer(disclosure, now)
            else:  # the account was erased meanwhile: nobody left to tell
                disclosure.customer_told_at = now
                disclosure.save(update_fields=["customer_told_at"])
            audit.record(
                audit.AuditEvent.Action.UPDATE,
                disclosure,
                by=None,
                fields=["customer_told_at"],
                reason=(
                    f"the prohibition on telling ({disclosure.withheld_ground}) ended on "
                    f"{disclosure.withheld_until:%Y-%m-%d}: the customer is told"
                ),
            )
            told += 1
    return told


def log_request(
    *,
    by: User,
    kind: str,
    requester: str,
    details: str = "",
    account: Account | None = None,
    received_at: datetime | None = None,
) -> DataRequest:
    if kind not in DataRequest.Kind.values:
        raise OfficeError(_("Unknown kind of request: %(kind)s") % {"kind": repr(kind)})
    if not requester.strip():
        raise OfficeError(_("Say who made the request."))
    received = received_at or timezone.now()
    with transaction.atomic():
        request = DataRequest.objects.create(
            kind=kind,
            requester=requester.strip(),
            details=details.strip(),
            account=account,
            received_at=received,
            due_at=one_month_after(received),
            recorded_by=by,
        )
        audit.record(audit.AuditEvent.Action.CREATE, request, by=by, fields=["requester"])
    return request


def take_over_request(
    *, kind: str, requester: str, details: str, received_at: datetime, due_at: datetime
) -> DataRequest:
    """A contact's request to a customer whose account is being erased, still open: it
    becomes one of the office's requests, with its own receipt date and due date, so it
    stays visible and is answered there (see audience.rights.hand_over_to_office)."""
    with transaction.atomic():
        request = DataRequest.objects.create(
            kind=kind if kind in DataRequest.Kind.values else DataRequest.Kind.OTHER,
            requester=requester,
            details=details,
            received_at=received_at,
            due_at=due_at,
        )
        audit.record(
            audit.AuditEvent.Action.CREATE,
            request,
            by=None,
            fields=["requester", "details"],
            reason="a contact's open request, handed over when its customer's account was erased",
        )
    return request


def close_request(request: DataRequest, *, by: User, status: str, answer: str) -> DataRequest:
    if status not in (DataRequest.Status.DONE, DataRequest.Status.REFUSED):
        raise OfficeError(_("A request is closed as answered or refused."))
    if status == DataRequest.Status.REFUSED and not answer.strip():
        raise OfficeError(_("A refusal needs its reasons (GDPR art. 12(4))."))
    with transaction.atomic():
        request.status = status
        request.answer = answer.strip()
        request.closed_at = timezone.now()
        request.keep_until = _keep_until()
        request.save(update_fields=["status", "answer", "closed_at", "keep_until"])
        audit.record(audit.AuditEvent.Action.UPDATE, request, by=by, fields=["status", "answer"])
    return request


def privacy_officers() -> list[User]:
    return list(
        User.objects.filter(
            is_active=True,
            is_staff=True,
            staff_role__in=[User.StaffRole.PRIVACY_OFFICER, User.StaffRole.ADMIN],
        )
    )


def privacy_office_addresses() -> list[str]:
    """Whom the privacy office's reminders go to: the privacy officers and admins whose
    address can be mailed, else the operator's privacy address (TIDINGS_PRIVACY_EMAIL),
    so that no reminder is lost for want of staff. Empty only when there is neither.
    An address the pipeline would refuse (`tidings createadmin`'s default
    admin@localhost) is left out and logged: it would stop the reminders to everyone."""
    officers = []
    for user in privacy_officers():
        try:
            officers.append(addresses.mailbox(user.email))
        except addresses.InvalidAddress as error:
            logger.warning("Privacy office reminders skip staff %s: %s", user.pk, error)
    if officers:
        return officers
    fallback = settings.OPERATOR["privacy_email"]
    return [fallback] if fallback else []


def escalate_due_requests(now: datetime | None = None) -> int:
    """Mail the privacy officers about open requests due within a week or overdue, at
    most once a day per request. Returns how many requests were escalated."""
    now = now or timezone.now()
    due = list(
        DataRequest.objects.filter(
            status=DataRequest.Status.OPEN,
            due_at__lte=now + timedelta(days=ESCALATE_DAYS_BEFORE),
        ).exclude(escalated_at__gt=now - timedelta(days=1))
    )
    # Nobody to tell: the requests stay unescalated, for the next run.
    officers = privacy_office_addresses()
    if not due or not officers:
        return 0
    with transaction.atomic():
        DataRequest.objects.filter(pk__in=[r.pk for r in due]).update(escalated_at=now)
        send_templated(
            "privacy/mail/requests_due",
            officers,
            {
                "requests": due,
                "now": now,
                "office_url": baseurl.absolute(reverse("privacy_office")),
            },
        )
    return len(due)


# -- records of processing activities (art. 30) ------------------------------------------

OWNER_AS_SUBJECTS = {
    Owner.CUSTOMER: gettext_lazy("customers (the operator's clients and their users)"),
    Owner.CONTACT: gettext_lazy(
        "contacts of customers (processed for the customer, their controller)"
    ),
    Owner.STAFF: gettext_lazy("the operator's staff"),
    Owner.VISITOR: gettext_lazy("visitors of the website"),
}


@dataclass(frozen=True)
class Activity:
    purpose: str
    legal_basis: str
    data_subjects: str
    data_categories: str
    recipients: str
    transfers: str
    retention: str
    security: str


def security_measures() -> str:
    measures = [
        gettext("TLS for every connection with HSTS")
        if settings.SECURE
        else gettext("TLS expected at the proxy"),
        gettext("sensitive fields encrypted at rest (Fernet, rotating keys)"),
        gettext("passwords hashed with Argon2"),
        gettext("login throttling and lockout"),
        gettext("two-factor authentication for staff") if settings.STAFF_REQUIRE_2FA else "",
        gettext("role-based staff access with a stated reason"),
        gettext("hash-chained append-only audit log of staff access"),
        gettext("erasure verified across the whole database"),
    ]
    return "; ".join(m for m in measures if m)


def records_of_processing(recipients: Iterable[str] = ()) -> list[Activity]:
    """One activity per purpose of the data map, with the fields art. 30(1) asks for."""
    extra = ", ".join(recipients)
    staff = gettext("the operator's staff, by role")
    by_purpose: dict[tuple[str, str], list[datamap.Entry]] = {}
    for entry in datamap.entries():
        key = (plain(entry.purpose), str(entry.legal_basis))
        by_purpose.setdefault(key, []).append(entry)
    activities = []
    for (purpose, basis), entries in sorted(by_purpose.items()):
        activities.append(
            Activity(
                purpose=purpose,
                legal_basis=str(BASIS_LABELS[LegalBasis(basis)]),
                data_subjects="; ".join(
                    sorted({str(OWNER_AS_SUBJECTS[owner]) for e in entries for owner in e.subjects})
                ),
                data_categories="; ".join(sorted({str(e.category) for e in entries})),
                recipients=f"{staff}; {extra}" if extra else staff,
                transfers=gettext("none: data stored in %(place)s")
                % {"place": settings.OPERATOR["data_location"]},
                retention="; ".join(sorted({plain(e.retention) for e in entries})),
                security=security_measures(),
            )
        )
    return activities
