"""The only writes of automations: create, add a step, start, pause, resume.

Each runs in one transaction with its audit event. A step's message is a draft
campaign made by the campaigns' own service (templates checked there) and edited in
the campaign editor while the automation is a draft or paused; starting the
automation checks each message by the checklist's blocking rules (`sending.checklist`,
the one place that says when a message may go) and opens it for the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import Account
from tidings.audience.models import MailingList
from tidings.automations.models import Automation, Step
from tidings.campaigns import services as campaigns
from tidings.campaigns.models import Campaign
from tidings.sending import checklist, lifecycle
from tidings.staff import audit

if TYPE_CHECKING:
    from tidings.accounts.models import User

A = Automation.Status
# The most days a step may wait: ten years is a mistake, not a plan.
MAX_WAIT_DAYS = 3660


class AutomationError(ValueError):
    """The change is refused; the text says why (nothing was changed)."""


def create_automation(
    account: Account, *, name: str, mailing_list: MailingList, by: User | None
) -> Automation:
    """A new draft automation whose trigger is subscribing to `mailing_list`."""
    name = " ".join((name or "").split())
    if not name:
        raise AutomationError(_("Give the automation a name."))
    if mailing_list.account_id != account.pk:
        raise AutomationError(_("Choose one of your lists."))
    with transaction.atomic():
        automation = Automation.objects.create(
            account=account, name=name[:200], mailing_list=mailing_list
        )
        audit.record("create", automation, by=by, account_id=account.pk)
    return automation


def add_step(
    automation: Automation,
    *,
    wait_days: int,
    subject: str,
    from_email: str,
    from_name: str = "",
    body: str = "",
    by: User | None,
) -> Step:
    """A step at the end: wait `wait_days`, then send a new message (a draft campaign to
    the automation's list, edited in the campaign editor). Only while not running."""
    if not 0 <= wait_days <= MAX_WAIT_DAYS:
        raise AutomationError(_("A wait is between 0 and %(days)s days.") % {"days": MAX_WAIT_DAYS})
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=automation.pk)
        if locked.status == A.ACTIVE:
            raise AutomationError(_("Pause the automation before changing its steps."))
        last = locked.steps.aggregate(m=Max("position"))["m"]
        position = 0 if last is None else last + 1
        try:
            message = campaigns.create_campaign(
                locked.account,
                by=by,
                lists=[locked.mailing_list],
                name=_("%(automation)s: step %(n)s")
                % {"automation": locked.name, "n": position + 1},
                subject=subject,
                from_email=from_email,
                from_name=from_name,
                body=body,
            )
        except campaigns.CampaignError as error:
            raise AutomationError(str(error)) from None
        step = Step.objects.create(
            automation=locked, position=position, wait_days=wait_days, campaign=message
        )
        audit.record("create", step, by=by, account_id=locked.account_id)
    return step


# Checklist lines that do not hold for a step's message: its contacts come later (an
# empty list is no reason), and each message is paid when it is added
# (`credits.spend_for_step`), not reserved for the whole list at the start.
NOT_FOR_STEPS = frozenset({"recipients", "credits"})


def _refusals(step: Step) -> list[str]:
    """Why the step's message may not go (the checklist's blocking lines)."""
    found = checklist.checklist(step.campaign)
    return [
        f"{_('Step %(n)s') % {'n': step.position + 1}}: {c.detail} {c.hint}".strip()
        for c in found.blocking
        if c.key not in NOT_FOR_STEPS
    ]


def start(automation: Automation, *, by: User | None) -> Automation:
    """Run it: from now on, contacts who subscribe to its list enter. Refused with the
    reasons when a step's message may not go; resumes a paused automation."""
    account = automation.account
    if not account.is_processing_allowed or account.is_restricted:
        raise AutomationError(_("This account may not send now: nothing was started."))
    steps = list(automation.steps.select_related("campaign", "campaign__account"))
    if not steps:
        raise AutomationError(_("Add a step first."))
    # A step's message sent, scheduled or cancelled on its own is no longer the step's.
    taken = [
        step
        for step in steps
        if step.campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SENDING)
    ]
    if taken:
        raise AutomationError(
            _("The message of step %(n)s was sent or scheduled on its own: remove that step.")
            % {"n": taken[0].position + 1}
        )
    problems = [problem for step in steps for problem in _refusals(step)]
    if problems:
        raise AutomationError(" ".join(problems))
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=automation.pk)
        if locked.status == A.ACTIVE:
            return locked
        # The steps' messages are open for the engine (sending.lifecycle); no other
        # path adds recipients to them.
        lifecycle.open_for_steps([s.campaign_id for s in steps])
        locked.status = A.ACTIVE
        locked.activated_at = locked.activated_at or timezone.now()
        locked.save(update_fields=["status", "activated_at", "updated_at"])
        audit.record(
            "update",
            locked,
            by=by,
            fields=["status"],
            reason="started",
            account_id=locked.account_id,
        )
    return locked


def pause(automation: Automation, *, by: User | None, reason: str = "paused") -> Automation:
    """Hold every contact where they are (messages already queued still go); resuming
    goes on from there, nobody's step skipped or repeated. `reason` is the audit's
    (the engine says why it paused one)."""
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=automation.pk)
        if locked.status != A.ACTIVE:
            raise AutomationError(_("Only a running automation can be paused."))
        locked.status = A.PAUSED
        locked.save(update_fields=["status", "updated_at"])
        audit.record(
            "update",
            locked,
            by=by,
            fields=["status"],
            reason=reason,
            account_id=locked.account_id,
        )
    return locked
