"""Reads of the support desk for its pages."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

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
