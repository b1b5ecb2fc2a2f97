"""The support desk: conversations between a customer (or a visitor) and the operator's
staff, by form, by mail and later by chat (one model for every channel), their messages
and attachments (encrypted at rest, P8), and follow-ups (P6)."""

from __future__ import annotations

import secrets
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.core.fields import EncryptedBinaryField, EncryptedTextField


class Channel(models.TextChoices):
    FORM = "form", _("web form")
    MAIL = "mail", _("email")
    CHAT = "chat", _("chat")


def new_reference() -> str:
    return secrets.token_hex(12)


class Queue(models.Model):
    """Where conversations wait for staff (support, billing, ...)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    # Mail to this address lands in this queue (empty: the default queue only).
    address = models.EmailField(_("address"), blank=True, default="")
    is_default = models.BooleanField(_("default queue"), default=False)

    class Meta:
        verbose_name = _("support queue")
        verbose_name_plural = _("support queues")
        ordering: ClassVar = ["name"]

    def __str__(self) -> str:
        return self.name


class Conversation(models.Model):
    """One request and its answers. A customer's (their user and account) or a
    visitor's (only an address and a name, from the public form or by mail)."""

    class Status(models.TextChoices):
        NEW = "new", _("new")
        OPEN = "open", _("open")
        WAITING = "waiting", _("waiting on customer")
        SOLVED = "solved", _("solved")

    reference = models.CharField(max_length=24, unique=True, default=new_reference)
    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conversations",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conversations",
    )
    # The address answers go to, lower case (a visitor's, or the user's when it began).
    email = models.EmailField(_("email"), max_length=254)
    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    subject = EncryptedTextField(_("subject"), blank=True, default="")
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="conversations")
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    created_at = models.DateTimeField(_("opened"), default=timezone.now)
    updated_at = models.DateTimeField(_("last activity"), default=timezone.now)
    solved_at = models.DateTimeField(_("solved"), null=True, blank=True, db_index=True)
    # False when nothing proves the sender is who the address says (mail without an
    # aligned DKIM signature or trusted result, the public form): then it is tied to no
    # account, and staff are warned (desk/authentication.py).
    sender_verified = models.BooleanField(_("sender verified"), default=False)
    # SLA clocks (settings.DESK): due times move on by the time spent paused, i.e.
    # waiting on the customer or solved (`paused_at` is when that began).
    first_response_due_at = models.DateTimeField(_("first answer due"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first answered"), null=True, blank=True)
    resolution_due_at = models.DateTimeField(_("solution due"), null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("support conversation")
        verbose_name_plural = _("support conversations")
        ordering: ClassVar = ["-updated_at"]
        indexes: ClassVar = [models.Index(fields=["email"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"#{self.pk}"


class Message(models.Model):
    """One message of a conversation: the customer's, an agent's answer, or an internal
    note the customer never sees."""

    class Direction(models.TextChoices):
        IN = "in", _("from the customer")
        OUT = "out", _("answer")
        NOTE = "note", _("internal note")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(_("direction"), max_length=4, choices=Direction.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    body = EncryptedTextField(_("message"), blank=True, default="")
    # Mail only: its Message-ID (inbound), or the pipeline's public id (outbound), by
    # which replies find their conversation even when the subject changes.
    message_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    # Auto-Submitted, a DSN, Precedence: bulk (RFC 3834): kept, never answered.
    automatic = models.BooleanField(_("automatic"), default=False)
    # The customer's messages: False when nothing proves who wrote it (see
    # Conversation.sender_verified): an automatic mail kept on a verified conversation,
    # a message of an unverified one.
    sender_verified = models.BooleanField(_("sender verified"), default=True)
    created_at = models.DateTimeField(_("sent"), default=timezone.now)

    class Meta:
        verbose_name = _("support message")
        verbose_name_plural = _("support messages")
        ordering: ClassVar = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.conversation} {self.direction}"


class Attachment(models.Model):
    """A file sent with a message. Its type is the one sniffed from its content (never
    the sender's word), from an allowlist; it is only ever served as a download."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveIntegerField(_("size"))
    data = EncryptedBinaryField()

    class Meta:
        verbose_name = _("support attachment")
        verbose_name_plural = _("support attachments")

    def __str__(self) -> str:
        return self.filename


class FollowUp(models.Model):
    """A message an agent schedules to send later (P6); sent only if the customer still
    allows follow-ups (P18) and is not restricted."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        CANCELLED = "cancelled", _("cancelled")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="followups"
    )
    due_at = models.DateTimeField(_("due"), db_index=True)
    body = EncryptedTextField(_("message"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    # Why it was cancelled (switched off, restricted, solved by hand).
    note = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("support follow-up")
        verbose_name_plural = _("support follow-ups")
        ordering: ClassVar = ["due_at"]

    def __str__(self) -> str:
        return f"{self.conversation} {self.due_at:%Y-%m-%d}"


class CannedAnswer(models.Model):
    """A saved answer staff insert and adapt. `{{ customer_name }}`, `{{ agent_name }}`
    and `{{ conversation_number }}` are filled in (desk.services.fill_canned)."""

    title = models.CharField(_("title"), max_length=100, unique=True)
    body = models.TextField(_("text"))

    class Meta:
        verbose_name = _("canned answer")
        verbose_name_plural = _("canned answers")
        ordering: ClassVar = ["title"]

    def __str__(self) -> str:
        return self.title


class Rating(models.Model):
    """The customer's rating of a solved conversation, from the single-use link in the
    mail sent when it was solved. The agent and queue are copied at rating time."""

    class Score(models.IntegerChoices):
        BAD = 1, _("bad")
        OKAY = 2, _("okay")
        GOOD = 3, _("good")

    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, related_name="rating"
    )
    score = models.PositiveSmallIntegerField(_("rating"), choices=Score.choices)
    comment = EncryptedTextField(_("comment"), blank=True, default="")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("rated"), default=timezone.now)

    class Meta:
        verbose_name = _("support rating")
        verbose_name_plural = _("support ratings")

    def __str__(self) -> str:
        return f"{self.conversation} {self.score}"


class MailboxCursor(models.Model):
    """How far the desk has read an IMAP mailbox (desk/imap.py): the folder's UIDVALIDITY
    and the highest UID stored. Advanced in the transaction that stores the message, so a
    crash between storing and flagging it on the server never stores it twice."""

    # "user@host:port/folder": one row per mailbox polled.
    mailbox = models.CharField(max_length=400, unique=True)
    uidvalidity = models.BigIntegerField(default=0)
    last_uid = models.BigIntegerField(default=0)
    # A message whose storing failed in `stuck_runs` runs in a row (not for a reason of
    # its own, as a malformed one): after imap.STUCK_RUNS it is flagged and passed over.
    stuck_uid = models.BigIntegerField(default=0)
    stuck_runs = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("support mailbox cursor")
        verbose_name_plural = _("support mailbox cursors")

    def __str__(self) -> str:
        return f"{self.mailbox} {self.uidvalidity}:{self.last_uid}"
