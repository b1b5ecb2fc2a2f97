"""Automations: a trigger and a sequence of steps, each a wait then a message
(docs/automations.md).

A step's message is a campaign of the account (written in the campaign editor) that the
sending engine keeps open while the automation runs: each contact reaching the step
gets one `sending.Delivery` of it, so every message goes through the engine's claims,
the mailability rule, relays, limits, tracking and reports."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import time

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext


class Automation(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        ACTIVE = "active", _("running")
        PAUSED = "paused", _("paused")

    class Trigger(models.TextChoices):
        JOINED_LIST = "joined_list", _("subscribed to a list")
        TAG_ADDED = "tag_added", _("a tag added")
        DATE = "date", _("a date attribute")
        CLICKED = "clicked", _("clicked a link of a campaign")
        EVENT = "event", _("an event posted to the API")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="automations"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=200)
    trigger = models.CharField(
        _("trigger"), max_length=16, choices=Trigger.choices, default=Trigger.JOINED_LIST
    )
    # The list the steps' messages go to (the mailability rule checks each contact is
    # still on it); with the trigger "subscribed to a list", also the list whose new
    # subscribers enter. Whatever the trigger, only its subscribers enter.
    mailing_list = models.ForeignKey(
        "audience.MailingList",
        verbose_name=_("list"),
        on_delete=models.CASCADE,
        related_name="automations",
    )
    # The trigger's settings (each used by its own trigger only).
    trigger_tag = models.CharField(_("tag"), max_length=100, blank=True, default="")
    date_attribute = models.CharField(_("date attribute"), max_length=64, blank=True, default="")
    date_yearly = models.BooleanField(_("every year"), default=True)
    date_time = models.TimeField(_("at"), default=time(9, 0))
    trigger_campaign = models.ForeignKey(
        "campaigns.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Empty: any link of the campaign.
    trigger_url = models.CharField(_("link"), max_length=2000, blank=True, default="")
    event_name = models.CharField(_("event name"), max_length=100, blank=True, default="")
    # A contact who finished (or left) may enter again when the trigger fires again.
    reentry = models.BooleanField(_("contacts may enter again"), default=False)
    # The last sweep of the date attribute (hourly: engine.sweep_dates).
    dates_swept_at = models.DateTimeField(null=True, blank=True)
    # The last check of every active contact against the rule (hourly, and whenever the
    # account is not open: engine.leave_unmailable; in between, only the `Recheck` rows).
    leave_swept_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    # Contacts who subscribe from then on enter (those already there do not).
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("automation")
        verbose_name_plural = _("automations")
        indexes = [
            models.Index(fields=["account", "trigger", "status"], name="automation_trigger"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_deletable(self) -> bool:
        """Never started: nothing of it went out (services.delete_automation)."""
        return self.activated_at is None


WEEKDAY_NAMES = (
    _("Monday"),
    _("Tuesday"),
    _("Wednesday"),
    _("Thursday"),
    _("Friday"),
    _("Saturday"),
    _("Sunday"),
)


class Step(models.Model):
    """One step of an automation (its `kind`); its settings are the fields of its kind.

    A send step waits `wait_days` (after entering, or after the step before), then
    sends `campaign`. Enrolments point at a step (its identity, not its position), so
    inserting or removing steps skips and repeats nobody."""

    class Kind(models.TextChoices):
        SEND = "send", _("send a message")
        WAIT = "wait", _("wait")
        CONDITION = "condition", _("condition")
        ADD_TAG = "add_tag", _("add a tag")
        REMOVE_TAG = "remove_tag", _("remove a tag")
        ADD_TO_LIST = "add_to_list", _("add to a list")
        REMOVE_FROM_LIST = "remove_from_list", _("remove from a list")
        LEAVE = "leave", _("leave the automation")

    class Unit(models.TextChoices):
        MINUTES = "minutes", _("minutes")
        HOURS = "hours", _("hours")
        DAYS = "days", _("days")

    class Test(models.TextChoices):
        EQUALS = "equals", _("attribute equals")
        CONTAINS = "contains", _("attribute contains")
        IS_SET = "is_set", _("attribute is set")
        HAS_TAG = "has_tag", _("has the tag")
        OPENED = "opened", _("opened the message of step")
        CLICKED = "clicked", _("clicked in the message of step")

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.SEND)
    wait_days = models.PositiveIntegerField(_("wait (days)"), default=0)
    # Deleting the message (only a draft can be) deletes the step: an automation that
    # ran has its steps' messages sending, which cannot be deleted.
    campaign = models.OneToOneField(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="automation_step",
    )
    # Wait: `wait_amount` `wait_unit`, or (weekday set) until the next weekday (0 is
    # Monday) at `wait_time` in the account's time zone.
    wait_amount = models.PositiveIntegerField(_("wait"), default=0)
    wait_unit = models.CharField(max_length=8, choices=Unit.choices, default=Unit.DAYS)
    wait_weekday = models.PositiveSmallIntegerField(null=True, blank=True)
    wait_time = models.TimeField(null=True, blank=True)
    # Condition: `test` on `key` (an attribute or a tag) with `value`, or on the message
    # of `about` (an earlier send step). Met: the next step; not met: `otherwise` (a
    # later step), or leave when empty.
    test = models.CharField(max_length=8, choices=Test.choices, blank=True, default="")
    key = models.CharField(max_length=100, blank=True, default="")
    value = models.CharField(max_length=200, blank=True, default="")
    about = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    otherwise = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Tag and list steps.
    tag = models.CharField(_("tag"), max_length=100, blank=True, default="")
    target_list = models.ForeignKey(
        "audience.MailingList",
        verbose_name=_("list"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )

    class Meta:
        ordering = ["automation", "position"]
        verbose_name = _("automation step")
        verbose_name_plural = _("automation steps")
        constraints = [
            models.UniqueConstraint(fields=["automation", "position"], name="step_position_once")
        ]

    def __str__(self) -> str:
        return f"{self.automation_id}#{self.position}"

    @property
    def duration_text(self) -> str:
        """A wait step's duration in words, singular or plural: "1 day", "3 hours"."""
        n = self.wait_amount or 0
        if self.wait_unit == self.Unit.MINUTES:
            return ngettext("%(n)s minute", "%(n)s minutes", n) % {"n": n}
        if self.wait_unit == self.Unit.HOURS:
            return ngettext("%(n)s hour", "%(n)s hours", n) % {"n": n}
        return ngettext("%(n)s day", "%(n)s days", n) % {"n": n}

    @property
    def weekday_name(self) -> str:
        return str(WEEKDAY_NAMES[self.wait_weekday]) if self.wait_weekday is not None else ""


class PendingEntry(models.Model):
    """A contact the trigger of an automation fired for, not entered yet: written in
    the same transaction as what fired it, by database triggers (automations.watch) for
    a tag added to a contact (whatever added it: a form, the API, an import, a bulk
    action) and a click recorded by tracking, and by the API for a posted event. The
    scheduler enters them and deletes the rows (no cursor, no scan)."""

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("audience.Contact", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("automation entry waiting")
        verbose_name_plural = _("automation entries waiting")

    def __str__(self) -> str:
        return f"contact {self.contact_id} for automation {self.automation_id}"


class Recheck(models.Model):
    """A contact in an automation whose mailability may have changed: written in the
    same transaction as the change, by database triggers (automations.watch) on what the
    rule reads (`audience.mailability`: the contact's status, restriction and address,
    its subscriptions, objections, the suppression list), for each automation the
    contact is active in. The scheduler checks those contacts against the rule, takes
    out those it no longer allows, and deletes the rows (engine.leave_unmailable): a
    minute's pass reads what changed, not every contact of every automation."""

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("audience.Contact", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("automation contact to check again")
        verbose_name_plural = _("automation contacts to check again")

    def __str__(self) -> str:
        return f"contact {self.contact_id} of automation {self.automation_id} to check"


class TriggerEvent(models.Model):
    """An event posted to the API for a contact, once per client-given id."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.CASCADE, related_name="automation_events"
    )
    name = models.CharField(max_length=100)
    client_id = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("automation event")
        verbose_name_plural = _("automation events")
        constraints = [
            models.UniqueConstraint(fields=["account", "client_id"], name="trigger_event_once")
        ]

    def __str__(self) -> str:
        return f"{self.name} for contact {self.contact_id}"


class Enrolment(models.Model):
    """One contact in one automation: enters once (again, in a new round, when the
    automation allows re-entry), moves from step to step."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("in the automation")
        DONE = "done", _("went through every step")
        LEFT = "left", _("left (may no longer be mailed)")
        EXITED = "exited", _("left by a step of the automation")

    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="enrolments", db_index=False
    )
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.CASCADE, related_name="automation_enrolments"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    # The step it waits for (empty once done or left), since when, and when it is due.
    step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="waiting"
    )
    arrived_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    # 1 the first time; each re-entry adds one (StepRun is once per step and round).
    round = models.PositiveIntegerField(default=1)
    entered_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("automation enrolment")
        verbose_name_plural = _("automation enrolments")
        constraints = [
            models.UniqueConstraint(fields=["automation", "contact"], name="enrolment_once")
        ]
        indexes = [
            # The scheduler's one query: the due steps, by time (not a scan).
            models.Index(fields=["status", "due_at"], name="enrolment_due"),
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} in automation {self.automation_id}"


class StepRun(models.Model):
    """A step done for a contact: at most one per (step, contact, round), whatever runs
    twice."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="runs", db_index=False)
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.CASCADE, related_name="automation_steps"
    )
    round = models.PositiveIntegerField(default=1)
    ran_at = models.DateTimeField(default=timezone.now)
    # A condition's outcome (met: on to the next step; not: its other step, or out),
    # what the page's counts and the webhook tell; empty for the other kinds of step,
    # and for the conditions run before it was recorded.
    met = models.BooleanField(
        _("condition met"),
        null=True,
        blank=True,
        help_text=_("a condition's outcome; empty for the other kinds of step"),
    )

    class Meta:
        verbose_name = _("automation step done")
        verbose_name_plural = _("automation steps done")
        constraints = [
            models.UniqueConstraint(fields=["step", "contact", "round"], name="step_run_once")
        ]

    def __str__(self) -> str:
        return f"step {self.step_id} for contact {self.contact_id}"


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookEndpoint(models.Model):
    """A URL of the customer's own systems that is told of events, signed with its
    secret (Standard Webhooks)."""

    class Event(models.TextChoices):
        SUBSCRIBED = "contact.subscribed", _("a contact subscribed to a list")
        UNSUBSCRIBED = "contact.unsubscribed", _("a contact unsubscribed from a list")
        BOUNCED = "contact.bounced", _("a message to a contact bounced")
        COMPLAINED = "contact.complained", _("a contact marked a message as spam")
        CAMPAIGN_SENT = "campaign.sent", _("a campaign was sent")
        STEP_DONE = "automation.step_done", _("an automation's step was done for a contact")
        UPDATED = "contact.updated", _("a contact's name, email or attributes changed")
        OPENED = "contact.opened", _("a contact opened a campaign (per-contact tracking only)")
        CLICKED = (
            "contact.clicked",
            _("a contact clicked a link of a campaign (per-contact tracking only)"),
        )

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    url = models.URLField(_("URL"), max_length=500)
    events = models.JSONField(_("events"), default=list)
    secret = models.CharField(max_length=100, default=new_webhook_secret, editable=False)
    enabled = models.BooleanField(default=True)
    # Messages in a row that failed for good; reset by one delivered.
    failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    # Events that happened after this are sent (the scan moves it on).
    cursor = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.url


class WebhookMessage(models.Model):
    """One event for one endpoint: the delivery log, and the queue of retries."""

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting to be sent")
        SENDING = "sending", _("being sent")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed (no more retries)")

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    msg_id = models.CharField(max_length=40, unique=True, default=new_message_id, editable=False)
    event = models.CharField(max_length=32)
    # What happened, once per endpoint (the scan may see an event twice).
    key = models.CharField(max_length=200)
    contact = models.ForeignKey(
        "audience.Contact",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_messages",
    )
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook message")
        verbose_name_plural = _("webhook messages")
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "key"], name="webhook_event_once")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_due"),
            models.Index(fields=["created_at"], name="webhook_created"),
            # Ordering per contact: an earlier message of the same contact to the same
            # endpoint still to be sent holds the later ones (webhooks._claim).
            models.Index(
                fields=["endpoint", "contact", "id"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="webhook_contact_unsent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} to endpoint {self.endpoint_id}: {self.status}"


class SplitTest(models.Model):
    """An A/B test of a campaign: variants of its subject, sender name or content go to
    a random sample, split evenly, and after the wait the winner goes to everyone else;
    variants of send time split everyone evenly, each part at its time, with no winner
    (docs/automations.md)."""

    class Kind(models.TextChoices):
        SUBJECT = "subject", _("subject")
        FROM_NAME = "from_name", _("sender name")
        CONTENT = "content", _("content")
        SEND_TIME = "send_time", _("send time")

    class Metric(models.TextChoices):
        OPENS = "opens", _("opens")
        CLICKS = "clicks", _("clicks")
        MANUAL = "manual", _("I choose")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        TESTING = "testing", _("testing on a sample")
        DECIDED = "decided", _("winner sent to the rest")
        # Send time: everyone is split between the variants, each sent at its time.
        TIMED = "timed", _("each part sent at its time")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="split_tests"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The campaign tested: variant A, and what the winner's send copies.
    campaign = models.OneToOneField(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="split_test"
    )
    kind = models.CharField(
        _("what is tested"), max_length=9, choices=Kind.choices, default=Kind.SUBJECT
    )
    test_percent = models.PositiveSmallIntegerField(_("test share (%)"), default=20)
    metric = models.CharField(
        _("winner by"), max_length=6, choices=Metric.choices, default=Metric.OPENS
    )
    wait_hours = models.PositiveIntegerField(_("wait (hours)"), default=4)
    # A test of send time: the zone its times were given in, and are shown in.
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    started_at = models.DateTimeField(null=True, blank=True)
    decide_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The send of the winner to everyone the sample left out.
    rest = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Why that winner (what could be judged under the account's tracking).
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("split test")
        verbose_name_plural = _("split tests")
        indexes = [models.Index(fields=["status", "decide_at"], name="split_test_due")]

    def __str__(self) -> str:
        return f"A/B test of campaign {self.campaign_id}"


class Variant(models.Model):
    test = models.ForeignKey(SplitTest, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=1)
    campaign = models.OneToOneField(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="split_variant"
    )
    # A test of send time: when this variant's part goes out.
    send_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["test", "label"]
        verbose_name = _("split test variant")
        verbose_name_plural = _("split test variants")
        constraints = [models.UniqueConstraint(fields=["test", "label"], name="variant_label_once")]

    def __str__(self) -> str:
        return f"{self.test_id} {self.label}"
