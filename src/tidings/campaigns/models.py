"""Campaigns: what a customer writes and sends to their lists and segments.

The sending engine (deliveries, relays, bounces) builds on these models; the content is
rendered per contact by `tidings.campaigns.rendering` in a sandbox.
"""

from __future__ import annotations

import uuid

from django.db import models
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

    def __str__(self) -> str:
        return self.name

    # Content may change only before the first message goes out.
    EDITABLE = frozenset({Status.DRAFT, Status.SCHEDULED})

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE

    @property
    def is_deletable(self) -> bool:
        return self.status == self.Status.DRAFT
