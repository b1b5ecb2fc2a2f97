"""Reads of the support desk for its pages."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Case, DateTimeField, F, Prefetch, Q, QuerySet, Value, When
from django.db.models.functions import Least

from tidings.desk.models import Attachment, Conversation, Message


def thread(conversation: Conversation, *, with_notes: bool) -> QuerySet[Message]:
    """A conversation's messages, oldest first, with their attachments listed but not
    read: the bytes are encrypted, and decrypted only when one is downloaded."""
    messages = conversation.messages.select_related("author").prefetch_related(
        Prefetch("attachments", queryset=Attachment.objects.defer("data"))
    )
    if with_notes:
        return messages
    return messages.exclude(direction=Message.Direction.NOTE)


def with_clock(rows: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Each conversation with `next_due`: when its nearest running SLA clock runs out
    (the first answer's until staff answered, then the solution's); None while the
    clocks are paused (waiting on the customer, solved) or for conversations that
    have none."""
    return rows.annotate(
        next_due=Case(
            When(paused_at__isnull=False, then=Value(None)),
            When(
                first_response_at__isnull=True,
                then=Least("first_response_due_at", "resolution_due_at"),
            ),
            default=F("resolution_due_at"),
            output_field=DateTimeField(),
        )
    )


def overdue(now: datetime) -> QuerySet[Conversation]:
    """Conversations with a running SLA clock that ran out."""
    late = Q(first_response_at__isnull=True, first_response_due_at__lt=now) | Q(
        resolution_due_at__lt=now
    )
    return (
        Conversation.objects.exclude(status=Conversation.Status.SOLVED)
        .filter(paused_at__isnull=True)
        .filter(late)
    )
