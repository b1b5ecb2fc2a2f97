"""Campaigns: what a customer writes and sends to their lists and segments.

The sending engine (deliveries, relays, bounces) builds on these models; the content is
rendered per contact by `tidings.campaigns.rendering` in a sandbox.
"""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Layout(models.Model):
    """A reusable HTML frame around campaign content; `{{ content }}` marks the spot."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="layouts"
    )
    name = models.CharField(max_length=200)
    html = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# A campaign ended once sent or cancelled, and has an end (`finished_at`) exactly then
# (its constraint below): its click links count their days from it (`sending.tracking`);
# one that sends again (`lifecycle.resend_unknown`) loses it.
ENDED_STATUSES = ("sent", "cancelled")


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        SCHEDULED = "scheduled", _("scheduled")
        SENDING = "sending", _("sending")
        PAUSED = "paused", _("paused")
        CANCELLED = "cancelled", _("cancelled")
        SENT = "sent", _("sent")

    class Format(models.TextChoices):
        RICHTEXT = "richtext", _("rich text")
        MARKDOWN = "markdown", _("Markdown")
        HTML = "html", _("raw HTML")
        # Designed in the visual editor: `design` holds its document (the editor's
        # project and the MJML), `body` the HTML compiled from it on the server.
        VISUAL = "visual", _("visual editor (MJML)")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="campaigns"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=300)
    from_name = models.CharField(max_length=200, blank=True, default="")
    from_email = models.EmailField()
    reply_to = models.EmailField(blank=True, default="")
    preheader = models.CharField(max_length=300, blank=True, default="")
    content_format = models.CharField(max_length=8, choices=Format.choices, default=Format.MARKDOWN)
    body = models.TextField(blank=True, default="")
    design = models.JSONField(default=dict, blank=True)
    layout = models.ForeignKey(
        Layout, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    lists = models.ManyToManyField("audience.MailingList", blank=True, related_name="campaigns")
    segments = models.ManyToManyField("audience.Segment", blank=True, related_name="campaigns")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # When the customer wants it sent (UTC); the sending engine acts on it once the
    # campaign is scheduled. The time zone it was chosen in is kept to show it again.
    scheduled_at = models.DateTimeField(null=True, blank=True)
    schedule_timezone = models.CharField(max_length=64, default="UTC")
    started_at = models.DateTimeField(null=True, blank=True)
    # When every recipient had its delivery: the first ones are fixed when the campaign
    # starts, the rest by a task right after (sending.engine); never finished before.
    recipients_fixed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why the sending engine paused it (the relay refused the login or the sender, or
    # refused message after message): shown to the customer, cleared on resume.
    pause_reason = models.CharField(max_length=500, blank=True, default="")
    track_opens = models.BooleanField(default=False)
    track_clicks = models.BooleanField(default=False)
    archived = models.BooleanField("show on the public archive page", default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaign_due")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ENDED_STATUSES, finished_at__isnull=False)
                | (~Q(status__in=ENDED_STATUSES) & Q(finished_at__isnull=True)),
                name="campaign_finished_when_ended",
            )
        ]

    def __str__(self) -> str:
        return self.name

    # Content may change only before the first message goes out.
    EDITABLE = frozenset({Status.DRAFT, Status.SCHEDULED})
    ENDED = frozenset(ENDED_STATUSES)

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE

    @property
    def is_deletable(self) -> bool:
        return self.status == self.Status.DRAFT


class SavedTemplate(models.Model):
    """A campaign's content the customer saved to start other campaigns from."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="saved_templates"
    )
    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=300, blank=True, default="")
    preheader = models.CharField(max_length=300, blank=True, default="")
    content_format = models.CharField(
        max_length=8, choices=Campaign.Format.choices, default=Campaign.Format.MARKDOWN
    )
    body = models.TextField(blank=True, default="")
    design = models.JSONField(default=dict, blank=True)
    layout = models.ForeignKey(
        Layout, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


def new_media_key() -> str:
    # 256 random bits: the address of an image is its only protection (mail clients
    # fetch it without a login), so it cannot be guessed or counted through.
    return secrets.token_urlsafe(32)


class MediaImage(models.Model):
    """An image of the customer's media library, cleaned (resized, metadata stripped)
    and served by Tidings at an unguessable address. The bytes live in the database
    so that the account's archive and erasure reach them like every other row."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="media_images"
    )
    key = models.CharField(max_length=64, unique=True, default=new_media_key, editable=False)
    name = models.CharField("file name", max_length=200)
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField("size in bytes")
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name
