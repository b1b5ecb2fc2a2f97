"""Automations: a trigger and a sequence of steps, each a wait then a message
(docs/automations.md).

A step's message is a campaign of the account (written in the campaign editor) that the
sending engine keeps open while the automation runs: each contact reaching the step
gets one `sending.Delivery` of it, so every message goes through the engine's claims,
the mailability rule, relays, limits, tracking and reports."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Automation(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        ACTIVE = "active", _("running")
        PAUSED = "paused", _("paused")

    class Trigger(models.TextChoices):
        JOINED_LIST = "joined_list", _("subscribed to a list")

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="automations"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=200)
    trigger = models.CharField(
        _("trigger"), max_length=16, choices=Trigger.choices, default=Trigger.JOINED_LIST
    )
    # The list whose new subscribers enter; the steps' messages go to them as
    # subscribers of this list (the mailability rule checks they still are).
    mailing_list = models.ForeignKey(
        "audience.MailingList",
        verbose_name=_("list"),
        on_delete=models.CASCADE,
        related_name="automations",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    # Contacts who subscribe from then on enter (those already there do not).
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("automation")
        verbose_name_plural = _("automations")

    def __str__(self) -> str:
        return self.name


class Step(models.Model):
    """Wait `wait_days` (after entering, or after the step before), then send `campaign`."""

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    wait_days = models.PositiveIntegerField(_("wait (days)"), default=0)
    # Deleting the message (only a draft can be) deletes the step: an automation that
    # ran has its steps' campaigns sending, which cannot be deleted.
    campaign = models.OneToOneField(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="automation_step"
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


class Enrolment(models.Model):
    """One contact in one automation: enters once, moves from step to step."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("in the automation")
        DONE = "done", _("went through every step")
        LEFT = "left", _("left (may no longer be mailed)")

    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="enrolments", db_index=False
    )
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.CASCADE, related_name="automation_enrolments"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    # The step it waits for (its position), and when that step is due.
    position = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True)
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
    """A step done for a contact: at most one per (step, contact), whatever runs twice."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="runs", db_index=False)
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.CASCADE, related_name="automation_steps"
    )
    ran_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("automation step done")
        verbose_name_plural = _("automation steps done")
        constraints = [models.UniqueConstraint(fields=["step", "contact"], name="step_run_once")]

    def __str__(self) -> str:
        return f"step {self.step_id} for contact {self.contact_id}"
