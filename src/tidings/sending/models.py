"""The sending engine's records: who gets which campaign, through which relay, signed by
which domain, and what came back (bounces, complaints, opens and clicks).

A `Delivery` is the unit of exactly-once: one row per (campaign, contact), claimed by a
worker with a conditional UPDATE committed before the SMTP transaction starts, and
marked sent only after the server's 250 (see `tidings.sending.engine`).
"""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.core.fields import EncryptedTextField
from tidings.core.mail import Kind, Purpose


class Relay(models.Model):
    """An SMTP relay of one account, or of the operator (account empty) for every account
    that has none of its own."""

    class Security(models.TextChoices):
        NONE = "none", _("none (plain SMTP, loopback or trusted network only)")
        STARTTLS = "starttls", _("STARTTLS")
        TLS = "tls", _("TLS from the start (SMTPS, port 465)")

    class Esp(models.TextChoices):
        NONE = "", _("plain SMTP server")
        POSTMARK = "postmark", _("Postmark (bounces by webhook)")
        MAILGUN = "mailgun", _("Mailgun (bounces by webhook)")

    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="relays"
    )
    name = models.CharField(max_length=100)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=587)
    security = models.CharField(max_length=8, choices=Security.choices, default=Security.STARTTLS)
    username = models.CharField(max_length=255, blank=True, default="")
    # The customer's credentials for their relay: encrypted at rest (P8).
    password = EncryptedTextField(blank=True, default="")
    esp = models.CharField(max_length=10, choices=Esp.choices, blank=True, default="")
    max_connections = models.PositiveIntegerField(default=4)
    # 0 means no limit.
    rate_per_second = models.PositiveIntegerField(default=0)
    rate_per_hour = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


def verification_token() -> str:
    return secrets.token_hex(16)


class SendingDomain(models.Model):
    """A domain the account sends from, with its DKIM key (RSA-2048, private key
    encrypted at rest); the public half is published by the customer in DNS. Without an
    account, a domain of the operator's own mail (`tidings manage dkim`).

    A customer's domain is used in From only while `proven_at` is set: its TXT record
    `tidings-verification=<token>` and its DKIM key were found in DNS at the last check
    (`sending.domains`); a check that finds either gone clears it."""

    account = models.ForeignKey(
        "accounts.Account",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sending_domains",
    )
    domain = models.CharField(max_length=253)
    selector = models.CharField(max_length=63, default="tidings")
    private_key = EncryptedTextField()
    public_key = models.TextField()  # base64 DER, as published in the TXT record
    created_at = models.DateTimeField(default=timezone.now)
    # The value of the TXT record that proves the domain is the customer's.
    token = models.CharField(max_length=64, default=verification_token)
    proven_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # What the last check found: ownership, dkim, spf, dmarc and their alignment.
    dns_status = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "domain"], name="sending_domain_once"),
            models.UniqueConstraint(
                fields=["domain"],
                condition=models.Q(account__isnull=True),
                name="operator_domain_once",
            ),
        ]
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def dns_value(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_key}"

    @property
    def proof_name(self) -> str:
        return f"_tidings.{self.domain}"

    @property
    def proof_value(self) -> str:
        return f"tidings-verification={self.token}"


class SendingSettings(models.Model):
    """An account's choices about sending: how much tracking it keeps, an optional
    mailto address for List-Unsubscribe, and the postal address every campaign shows
    (required before sending: CAN-SPAM asks for a valid physical postal address)."""

    class Tracking(models.TextChoices):
        PER_CONTACT = "contact", _("per contact (who opened or clicked, kept for a limited time)")
        AGGREGATE = "aggregate", _("aggregate only (counts, never who)")

    account = models.OneToOneField(
        "accounts.Account", on_delete=models.CASCADE, related_name="sending_settings"
    )
    tracking = models.CharField(max_length=10, choices=Tracking.choices, default=Tracking.AGGREGATE)
    unsubscribe_mailto = models.EmailField(blank=True, default="")
    # Printed in every campaign's footer; may be a sole trader's home address (P1 data,
    # encrypted at rest like the customer's own postal address).
    postal_address = EncryptedTextField(blank=True, default="")

    class Meta:
        verbose_name_plural = "sending settings"

    def __str__(self) -> str:
        return f"sending settings of account {self.account_id}"


class Delivery(models.Model):
    """One campaign to one contact: created queued when the campaign starts, claimed by
    one worker, sent at most once."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("being sent")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        BOUNCED = "bounced", _("bounced")
        SKIPPED = "skipped", _("skipped (no longer mailable)")
        # The worker died between the claim and the server's answer: the message may or
        # may not have gone out. Never retried: a duplicate is worse than a miss.
        UNKNOWN = "unknown", _("unknown (worker lost mid-send, not retried)")

    # Indexed by delivery_once (campaign, contact) and delivery_campaign_queue.
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    relay = models.ForeignKey(
        Relay, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message_id = models.CharField(max_length=200, blank=True, default="")
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Set when a batch task carrying this delivery was queued; the recovery sweep
    # re-queues deliveries whose task was lost (a broker restart).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # A temporary failure waits until then before the next attempt.
    not_before = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact"], name="delivery_once")
        ]
        indexes = [
            # The claims' range scan: a campaign's queued deliveries between two ids, in
            # id order (with (campaign, status) alone each claim read every queued row of
            # the campaign: quadratic in its size). Also the counts by status.
            models.Index(fields=["campaign", "status", "id"], name="delivery_campaign_queue"),
            models.Index(fields=["status", "claimed_at"], name="delivery_claims"),
            models.Index(fields=["message_id"], name="delivery_message_id"),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} to contact {self.contact_id}: {self.status}"


class BounceRecord(models.Model):
    """A bounce or complaint that came back for a delivery (DSN or provider webhook)."""

    class Kind(models.TextChoices):
        HARD = "hard", _("hard bounce")
        SOFT = "soft", _("soft bounce")
        COMPLAINT = "complaint", _("complaint (marked as spam)")

    class Source(models.TextChoices):
        SMTP = "smtp", _("refused by the relay")
        DSN = "dsn", _("bounce mailbox")
        WEBHOOK = "webhook", _("provider webhook")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="bounce_records"
    )
    contact = models.ForeignKey(
        "audience.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    source = models.CharField(max_length=8, choices=Source.choices)
    # The remote server's words, e.g. "550 5.1.1 user unknown" (may name the address).
    detail = models.CharField(max_length=500, blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} for contact {self.contact_id}"


class TrackingEvent(models.Model):
    """One open or click of one contact: kept only for accounts that chose per-contact
    tracking, for contacts who allow it, and only for TIDINGS_TRACKING_DAYS; then
    folded into `CampaignStat` counts and deleted."""

    class Kind(models.TextChoices):
        OPEN = "open", _("opened")
        CLICK = "click", _("clicked")

    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="tracking_events"
    )
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    url = models.URLField(max_length=2000, blank=True, default="")
    # The first event of its kind for this delivery: counts unique opens and clicks.
    first = models.BooleanField(default=False)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["delivery", "kind"], name="tracking_delivery_kind"),
            # Outgoing webhooks read an account's new opens and clicks by time
            # (automations.webhook_events), campaign by campaign.
            models.Index(fields=["campaign", "at"], name="tracking_campaign_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of delivery {self.delivery_id}"


class CampaignStat(models.Model):
    """Counts per campaign, kind and hour, without anyone's identity: what aggregate-only
    tracking keeps, and what per-contact events become when their retention ends."""

    class Kind(models.TextChoices):
        OPEN = "open", _("opens")
        UNIQUE_OPEN = "unique_open", _("unique opens")
        CLICK = "click", _("clicks")
        UNIQUE_CLICK = "unique_click", _("unique clicks")
        BOUNCE = "bounce", _("bounces")
        COMPLAINT = "complaint", _("complaints")
        UNSUBSCRIBE = "unsubscribe", _("unsubscribes")
        DELIVERED = "delivered", _("delivered (confirmed by the provider)")
        # Messages sent to contacts since erased: their deliveries are gone, their count stays.
        SENT = "sent", _("sent (to contacts since erased)")

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    hour = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "kind", "hour"], name="campaign_stat_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.hour:%Y-%m-%d %H}h: {self.count}"


class LinkClick(models.Model):
    """Clicks on one link of a campaign, without anyone's identity, counted under every
    tracking mode (`tracking.record`) and kept with the campaign: its report's clicks per
    link. A link whose address the campaign's content does not hold as such (a contact's
    value was filled into it) is counted under its site only (`tracking.link_label`)."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    url = models.CharField(max_length=2000)
    clicks = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "url"], name="link_click_once")]

    def __str__(self) -> str:
        return f"{self.url}: {self.clicks}"


class OutboundMail(models.Model):
    """The ledger of every message that is not a campaign delivery: one row per message
    and recipient, written when a producer posts it (core.mail.post), in the producer's
    transaction, then claimed, sent at most once and given its outcome by the postman
    (tidings.sending.postman). Kept TIDINGS_OUTBOUND_DAYS, then deleted; erased with the
    contact, user or account it was for."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("being sent")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        SKIPPED = "skipped", _("not sent (no longer allowed to be mailed)")
        UNKNOWN = "unknown", _("unknown (worker lost mid-send, not retried)")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    # Whose mail it is: that account's relay and DKIM key (none: the operator's).
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The person it goes to, when known: checked again before sending, erased with them.
    contact = models.ForeignKey(
        "audience.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # A producer's own name for the message: posting it twice records it once.
    key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    to_email = models.CharField(max_length=320)
    from_email = models.CharField(max_length=320)
    from_name = models.CharField(max_length=200, blank=True, default="")
    reply_to = models.CharField(max_length=320, blank=True, default="")
    subject = models.CharField(max_length=998)
    text = models.TextField()
    html = models.TextField(blank=True, default="")
    headers = models.JSONField(default=list, blank=True)
    # Deleted as soon as it has an outcome (the notice to someone that they are erased).
    forget = models.BooleanField(default=False)
    # Names of the files attached ("<source>:<ref>", core.mail.register_attachments):
    # made when the message is built, so the ledger holds no copy of them.
    attachments = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When a delivery job for it was last queued: the sweep queues again one that was lost.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    relay = models.CharField(max_length=200, blank=True, default="")
    message_id = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["status", "not_before"], name="outbound_due"),
            models.Index(fields=["status", "claimed_at"], name="outbound_claims"),
            models.Index(fields=["account", "to_email"], name="outbound_account_to"),
            models.Index(fields=["created_at"], name="outbound_created"),
        ]
        verbose_name = "outbound mail"
        verbose_name_plural = "outbound mail"

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid} to {self.to_email}: {self.status}"


class ProductUpdate(models.Model):
    """The operator's own product-update email to its customers (P5)."""

    subject = models.CharField(max_length=300)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.subject
