"""The support desk in the data map: conversations, messages, attachments and follow-ups
are the customer's (or a visitor's) own data. They are in My Account and the archive
(P15, P20), erased with the account (P13), and a solved conversation is deleted
`TIDINGS_DESK_RETENTION_MONTHS` (default 24) after it was solved (P12)."""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from tidings.core import retention
from tidings.core.datamap import (
    Erasure,
    LegalBasis,
    Owner,
    declare_archive_files,
    declare_free_of_personal_data,
    register,
)
from tidings.desk.models import (
    Attachment,
    CannedAnswer,
    Conversation,
    FollowUp,
    MailboxCursor,
    Message,
    Queue,
    Rating,
)

RETENTION_TEXT = _(
    "while the conversation is open, then "
    "TIDINGS_DESK_RETENTION_MONTHS (default 24 months) after it was solved"
)
NO_CONTACTS = "the customer's own requests to the operator: no contact's data"

declare_free_of_personal_data(Queue, "the operator's support queues: names and addresses")
declare_free_of_personal_data(CannedAnswer, "the operator's saved answers, with placeholders")
declare_free_of_personal_data(
    MailboxCursor, "how far the operator's support mailbox has been read: its name and two numbers"
)

common: dict[str, Any] = {
    "owner": Owner.CUSTOMER,
    "data_subjects": (Owner.CUSTOMER, Owner.VISITOR),
    "category": _("support requests"),
    "purpose": _("answering the customer's requests and following them up"),
    "legal_basis": LegalBasis.CONTRACT,
    "retention": RETENTION_TEXT,
    "erase": Erasure.DELETE,
    "contact": NO_CONTACTS,
}
register(
    Conversation,
    personal_fields=["email", "name", "subject"],
    shown_fields=("created_at", "subject", "status", "channel"),
    account_path="account",
    **common,
)
# Internal notes are staff's working notes about the request; the customer sees them
# in My Account and the archive all the same: they are data about them.
register(
    Message,
    personal_fields=["body"],
    shown_fields=("created_at", "direction", "channel", "body"),
    account_path="conversation__account",
    **common,
)
register(
    Attachment,
    personal_fields=["filename", "data"],
    shown_fields=("filename", "content_type", "size"),
    # The bytes go into the archive as files of their own (support-attachments/).
    secret_fields=("data",),
    account_path="message__conversation__account",
    **common,
)
register(
    FollowUp,
    personal_fields=["body"],
    shown_fields=("due_at", "status", "body"),
    account_path="conversation__account",
    **common,
)

register(
    Rating,
    personal_fields=["comment"],
    shown_fields=("created_at", "score", "comment"),
    account_path="conversation__account",
    **common,
)


def attachment_files(account: Any) -> Iterator[tuple[str, bytes]]:
    rows = Attachment.objects.filter(message__conversation__account=account).order_by("pk")
    for pk, name, data in rows.values_list("pk", "filename", "data").iterator(chunk_size=20):
        yield f"{pk}-{name}", bytes(data)


declare_archive_files(
    "support-attachments",
    "the files sent with your support conversations (file name: the attachment's number, "
    "then its name; the support attachments table describes each one)",
    attachment_files,
)


def _solved_long_ago(now: datetime) -> QuerySet[Conversation]:
    cutoff = now - relativedelta(months=settings.DESK["retention_months"])
    return Conversation.objects.filter(status=Conversation.Status.SOLVED, solved_at__lte=cutoff)


retention.register(
    "solved support conversations",
    why=lambda: f"solved support conversations are kept {settings.DESK['retention_months']} months",
    expired=_solved_long_ago,
)
