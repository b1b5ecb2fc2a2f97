"""The privacy office: requests received by the operator, disclosures to authorities
(P25), and the records of processing activities (GDPR art. 30), for the privacy officer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account, User
from tidings.core import datamap
from tidings.core.datamap import BASIS_LABELS, LegalBasis, Owner, plain
from tidings.core.mail import send_templated
from tidings.privacy.models import DataRequest, Disclosure
from tidings.staff import audit

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
    disclosed_at: datetime | None = None,
) -> Disclosure:
    """Record what was disclosed to which authority, on which legal ground (P25)."""
    if not (authority.strip() and legal_ground.strip() and data_disclosed.strip()):
        raise OfficeError(_("Say to whom, on which legal ground, and what was disclosed."))
    with transaction.atomic():
        disclosure = Disclosure.objects.create(
            authority=authority.strip(),
            legal_ground=legal_ground.strip(),
            data_disclosed=data_disclosed.strip(),
            reference=reference.strip(),
            account=account,
            account_ref=account.pk if account else None,
            recorded_by=by,
            disclosed_at=disclosed_at or timezone.now(),
        )
        audit.record(
            audit.AuditEvent.Action.EXPORT,
            disclosure,
            by=by,
            fields=["data_disclosed"],
            reason=f"disclosure to {disclosure.authority}: {disclosure.legal_ground}",
            account_id=account.pk if account else None,
        )
    return disclosure


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
    officers = [u.email for u in privacy_officers()]
    if not due or not officers:
        return 0
    with transaction.atomic():
        DataRequest.objects.filter(pk__in=[r.pk for r in due]).update(escalated_at=now)
        send_templated(
            "privacy/mail/requests_due",
            officers,
            {"requests": due, "now": now, "office_path": "/staff/privacy-office/"},
        )
    return len(due)


# -- records of processing activities (art. 30) ------------------------------------------

OWNER_AS_SUBJECTS = {
    Owner.CUSTOMER: gettext_lazy("customers (the operator's clients and their users)"),
    Owner.CONTACT: gettext_lazy("contacts of customers"),
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
                data_subjects="; ".join(sorted({str(OWNER_AS_SUBJECTS[e.owner]) for e in entries})),
                data_categories="; ".join(sorted({str(e.category) for e in entries})),
                recipients=f"{staff}; {extra}" if extra else staff,
                transfers=gettext("none: data stored in %(place)s")
                % {"place": settings.OPERATOR["data_location"]},
                retention="; ".join(sorted({plain(e.retention) for e in entries})),
                security=security_measures(),
            )
        )
    return activities
