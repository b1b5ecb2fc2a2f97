"""A contact's rights towards the customer (the controller; Tidings is the processor).

From the preference page a contact sees everything the customer holds on them
(`contact_data`, generated from the data map's contact parts), downloads it
(`export_contact_data`, the transfer app's sinks), and sends a request
(`request_from_contact`): one open request per kind, rate-limited; the contact gets a
receipt by mail (what, when, the due date) and the account's users are told at once. The
customer answers it in their request inbox: an erasure in one click (`fulfil_erasure`:
the contact is erased across all lists and its keyed hash suppressed), anything else with
a message mailed to the contact (`answer_request`). Requests still open after their due
date (one month, GDPR art. 12(3)) are mailed to the account's users once a day
(`escalate_overdue_requests`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from tidings.accounts.models import Account, User
from tidings.audience import notices, restriction, services
from tidings.audience.models import Contact, ContactRequest
from tidings.core import ratelimit
from tidings.core.datamap import Section
from tidings.core.mail import Purpose, send_templated
from tidings.core.spreadsheets import CsvSink, XlsxSink
from tidings.core.text import NUL_REFUSED, nul_at
from tidings.privacy import contacts as privacy_contacts
from tidings.privacy import office
from tidings.privacy.office import one_month_after
from tidings.staff import audit

MAX_DETAILS = 2000
MAX_ANSWER = 10_000
# The public form: per contact per day, per address of the sender per hour.
REQUESTS_PER_CONTACT_DAY = 5
REQUESTS_PER_IP_HOUR = 20
# Escalate an overdue request at most this often.
ESCALATE_EVERY = timedelta(days=1)


class RequestError(services.AudienceError):
    """A request that cannot be made or answered; the message says why."""


class TooManyRequests(RequestError):
    pass


# --- what the customer holds on a contact -------------------------------------------


def contact_data(contact: Contact) -> list[Section]:
    """Everything the account holds on this contact, table by table (GDPR art. 15): read
    from the data map, so a table added to it is shown here with no code of its own."""
    return privacy_contacts.sections(services.contacts_ref(contact.account_id, [contact]))


# In the reader's language, as the tables' titles and columns are.
EXPORT_HEADER = [
    pgettext_lazy("contact's data download", "table"),
    pgettext_lazy("contact's data download", "row"),
    pgettext_lazy("contact's data download", "column"),
    pgettext_lazy("contact's data download", "value"),
]
EXPORT_FORMATS = {
    "csv": ("text/csv", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}


def _export_rows(sections: list[Section]) -> Iterator[list[Any]]:
    """One row per value: every table of the contact's data fits one sheet or file."""
    for section in sections:
        for number, row in enumerate(section.rows, start=1):
            for column, value in zip(section.columns, row, strict=True):
                yield [section.title, number, column, value]


def export_contact_data(contact: Contact, fmt: str) -> bytes:
    """The contact's data as a CSV or XLSX file, written by the export sinks (each with
    its format's formula safety: core.spreadsheets)."""
    if fmt not in EXPORT_FORMATS:
        raise RequestError(_("Choose CSV or XLSX."))
    with tempfile.TemporaryDirectory(prefix="tidings-contact-") as tmp:
        path = Path(tmp) / f"data.{fmt}"
        header = [str(name) for name in EXPORT_HEADER]
        sink = CsvSink(path, header) if fmt == "csv" else XlsxSink(path, header)
        try:
            sink.write(list(_export_rows(contact_data(contact))))
        finally:
            sink.close()
        return path.read_bytes()


# --- requests ----------------------------------------------------------------------


def request_from_contact(
    contact: Contact, *, kind: str, details: str = "", ip: str | None = None
) -> tuple[ContactRequest, bool]:
    """The contact asks the customer for access, correction, erasure or to stop a
    processing. Returns the request and whether it is new: while one of that kind is
    open, asking again returns it unchanged."""
    if kind not in ContactRequest.Kind.values:
        raise RequestError(_("Choose what you are asking for."))
    details = details.strip()
    if nul_at(details) is not None:
        raise RequestError(str(NUL_REFUSED))
    if len(details) > MAX_DETAILS:
        raise RequestError(
            _("Please say it in at most %(MAX_DETAILS)s characters.") % {"MAX_DETAILS": MAX_DETAILS}
        )
    existing = ContactRequest.objects.filter(
        contact=contact, kind=kind, status=ContactRequest.Status.OPEN
    ).first()
    if existing is not None:
        return existing, False
    if ip and not ratelimit.allow("request.ip", ip, limit=REQUESTS_PER_IP_HOUR, seconds=3600):
        raise TooManyRequests(_("Too many requests from your network: please try again later."))
    if not ratelimit.allow(
        "request.contact", contact.uuid.hex, limit=REQUESTS_PER_CONTACT_DAY, seconds=86400
    ):
        raise TooManyRequests(_("You have sent many requests today: please try again tomorrow."))
    received = timezone.now()
    try:
        with transaction.atomic():
            request = ContactRequest.objects.create(
                account_id=contact.account_id,
                contact=contact,
                email=contact.email,
                kind=kind,
                details=details,
                received_at=received,
                due_at=one_month_after(received),
            )
            _acknowledge(request, contact.account)
    except IntegrityError:
        # The same request sent twice at once: the other submission made it.
        return ContactRequest.objects.get(
            contact=contact, kind=kind, status=ContactRequest.Status.OPEN
        ), False
    return request, True


def _account_users(account: Account) -> list[str]:
    return list(
        User.objects.filter(account=account, is_active=True)
        .order_by("pk")
        .values_list("email", flat=True)
    )


def _acknowledge(request: ContactRequest, account: Account) -> None:
    """A new request: the contact gets a receipt (what they asked, when, the due date)
    and the account's users are told at once, both through the one pipeline."""
    _mail_contact(request, account, "audience/mail/request_received")
    send_templated(
        "audience/mail/request_new",
        _account_users(account),
        {
            "account": account,
            "request": request,
            "request_path": reverse("audience:request", args=[request.uuid]),
        },
    )


def _mail_contact(
    request: ContactRequest, account: Account, template: str, *, erased: bool = False
) -> None:
    """An answer to a contact's request: a legal notice, sent even to the unsubscribed.
    The notice that they are `erased` is tied to nobody and forgotten once sent."""
    if not request.email:
        return
    notices.mail_contact(
        account,
        to=request.email,
        template=template,
        context={"request": request},
        purpose=Purpose.NOTICE,
        contact_id=None if erased else request.contact_id,
        forget=erased,
    )


def _open(account: Account, request: ContactRequest) -> ContactRequest:
    locked = ContactRequest.objects.select_for_update().filter(pk=request.pk, account=account)
    current = locked.first()
    if current is None:
        raise RequestError(_("That request belongs to another account."))
    if current.status != ContactRequest.Status.OPEN:
        raise RequestError(_("This request is already closed."))
    return current


def fulfil_erasure(account: Account, request: ContactRequest) -> ContactRequest:
    """Erase the contact across all the account's lists and keep only the keyed hash of
    the address, so that no import or signup brings them back without a new consent.
    The contact is told; then their address leaves every request of theirs (the
    request's part in the data map)."""
    with transaction.atomic():
        request = _open(account, request)
        if request.kind != ContactRequest.Kind.ERASURE:
            raise RequestError(_("Only an erasure request is fulfilled by erasing the contact."))
        request.answer = services.ERASED_ANSWER
        _mail_contact(request, account, "audience/mail/request_erased", erased=True)
        contact = (
            Contact.objects.filter(pk=request.contact_id, account=account).first()
            if request.contact_id is not None
            else None
        )
        if contact is not None:
            services.erase_contact(contact)
        else:  # erased already, some other way
            ContactRequest.objects.filter(pk=request.pk).update(
                status=ContactRequest.Status.FULFILLED,
                answer=services.ERASED_ANSWER,
                closed_at=timezone.now(),
                email="",
                contact=None,
            )
        request.refresh_from_db()
    return request


def fulfil_restriction(account: Account, request: ContactRequest) -> ContactRequest:
    """Restrict the processing of the contact's data, as they asked (art. 18): from now
    on it is only kept. The contact is told (audience.restriction)."""
    with transaction.atomic():
        request = _open(account, request)
        if request.kind != ContactRequest.Kind.RESTRICTION or request.contact is None:
            raise RequestError(_("Only a restriction request of a contact is fulfilled this way."))
        received = request.received_at.astimezone(UTC).strftime("%Y-%m-%d")
        restriction.restrict(request.contact, reason=f"the contact asked on {received}")
        request.status = ContactRequest.Status.FULFILLED
        request.answer = RESTRICTED_ANSWER
        request.closed_at = timezone.now()
        request.save(update_fields=["status", "answer", "closed_at"])
    return request


RESTRICTED_ANSWER = "Processing of your data is restricted: it is kept, and used for nothing else."


def answer_request(account: Account, request: ContactRequest, *, answer: str) -> ContactRequest:
    """Close a request with the customer's message, which is mailed to the contact."""
    answer = answer.strip()
    if not answer:
        raise RequestError(_("Write the answer the contact will receive."))
    if len(answer) > MAX_ANSWER:
        raise RequestError(
            _("An answer can have at most %(MAX_ANSWER)s characters.") % {"MAX_ANSWER": MAX_ANSWER}
        )
    with transaction.atomic():
        request = _open(account, request)
        request.status = ContactRequest.Status.ANSWERED
        request.answer = answer
        request.closed_at = timezone.now()
        request.save(update_fields=["status", "answer", "closed_at"])
        _mail_contact(request, account, "audience/mail/request_answer")
    return request


# --- the privacy office, for accounts that were closed --------------------------------
#
# A closed account's users no longer see its pages, but its contacts' open requests must
# still be answered in time (art. 12(3); the operator assists the controller, art.
# 28(3)(e)): the privacy office sees them and answers them, audited, until the erasure.
# At the erasure, those still open are handed to the office's own register
# (`hand_over_to_office`), so none is ever hidden before it is answered.


def open_requests_of_closed_accounts() -> QuerySet[ContactRequest]:
    return (
        ContactRequest.objects.filter(status=ContactRequest.Status.OPEN)
        .exclude(account__status=Account.Status.ACTIVE)
        .select_related("account")
        .order_by("due_at", "pk")
    )


def request_of_closed_account(request_uuid: Any) -> ContactRequest | None:
    return open_requests_of_closed_accounts().filter(uuid=request_uuid).first()


def answer_for_closed_account(request: ContactRequest, *, by: User, answer: str) -> ContactRequest:
    """The privacy office answers a contact's request to a closed account: mailed to the
    contact in the account's name, as the customer's own answer is, and audited."""
    if request.account.status == Account.Status.ACTIVE:
        raise RequestError("The account is open: its users answer this request.")
    with transaction.atomic():
        request = answer_request(request.account, request, answer=answer)
        audit.record(
            audit.AuditEvent.Action.UPDATE,
            request,
            by=by,
            fields=["status", "answer"],
            reason="privacy office: answered a contact's request to a closed account",
            account_id=request.account_id,
        )
    return request


def erase_for_closed_account(request: ContactRequest, *, by: User) -> ContactRequest:
    """The privacy office fulfils a contact's erasure request to a closed account now,
    without waiting for the account's erasure; audited."""
    if request.account.status == Account.Status.ACTIVE:
        raise RequestError("The account is open: its users answer this request.")
    with transaction.atomic():
        account, pk = request.account, request.pk
        request = fulfil_erasure(account, request)
        audit.record(
            audit.AuditEvent.Action.ERASE,
            by=by,
            target_type="audience.ContactRequest",
            target_id=str(pk),
            reason="privacy office: a contact's erasure request to a closed account",
            account_id=account.pk,
        )
    return request


def hand_over_to_office(account: Account) -> int:
    """The account is being erased: each of its contacts' requests still open becomes a
    request in the privacy office's register (the contact's address, what they asked,
    when, the same due date), to be answered there. Returns how many."""
    handed = 0
    for request in ContactRequest.objects.filter(
        account=account, status=ContactRequest.Status.OPEN
    ).order_by("pk"):
        office.take_over_request(
            kind=request.kind,
            requester=request.email or "(contact erased: no address kept)",
            details=(
                f"Sent to the customer account #{account.pk}, which was closed and is being "
                f"erased. {request.details}"
            ).strip(),
            received_at=request.received_at,
            due_at=request.due_at,
        )
        handed += 1
    return handed


def on_erasure_starting(sender: Any, *, account: Account, **kwargs: Any) -> None:
    hand_over_to_office(account)


def open_requests(account: Account) -> int:
    return ContactRequest.objects.filter(account=account, status=ContactRequest.Status.OPEN).count()


def escalate_overdue_requests(now: datetime | None = None) -> int:
    """Mail the users of each account with overdue open requests, at most once a day
    per request. Returns how many requests were escalated."""
    now = now or timezone.now()
    overdue = ContactRequest.objects.filter(
        status=ContactRequest.Status.OPEN, due_at__lt=now
    ).exclude(escalated_at__gt=now - ESCALATE_EVERY)
    escalated = 0
    for account_id in overdue.values_list("account_id", flat=True).distinct().order_by():
        account = Account.objects.filter(pk=account_id).first()
        if account is None:
            continue
        users = _account_users(account)
        if not users:
            continue
        with transaction.atomic():
            due = list(overdue.filter(account=account).select_for_update().order_by("due_at"))
            if not due:
                continue
            ContactRequest.objects.filter(pk__in=[r.pk for r in due]).update(escalated_at=now)
            send_templated(
                "audience/mail/requests_overdue",
                users,
                {
                    "account": account,
                    "requests": due,
                    "now": now,
                    "inbox_path": reverse("audience:requests"),
                },
            )
        escalated += len(due)
    return escalated
