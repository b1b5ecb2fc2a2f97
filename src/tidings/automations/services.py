"""The only writes of automations: create, add a step, start, pause, resume.

Each runs in one transaction with its audit event. A step's message is a draft
campaign made by the campaigns' own service (templates checked there) and edited in
the campaign editor while the automation is a draft or paused; starting the
automation checks each message by the checklist's blocking rules (`sending.checklist`,
the one place that says when a message may go) and opens it for the engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import Account, User
from tidings.audience.errors import AudienceError
from tidings.audience.models import Contact, MailingList
from tidings.audience.services import clean_tags
from tidings.automations import timing
from tidings.automations.entry import entering
from tidings.automations.models import Automation, Enrolment, PendingEntry, Step, TriggerEvent
from tidings.campaigns import services as campaigns
from tidings.campaigns.models import Campaign
from tidings.core import clock
from tidings.sending import checklist, lifecycle
from tidings.sending.models import Delivery
from tidings.staff import audit

A = Automation.Status
K = Step.Kind
T = Automation.Trigger
# The most days a step may wait: ten years is a mistake, not a plan.
MAX_WAIT_DAYS = 3660


class AutomationError(ValueError):
    """The change is refused; the text says why (nothing was changed)."""


def _tag(text: str) -> str:
    """`text` as the one tag the audience would store (the trigger's, a tag step's, a
    condition's), or AutomationError saying why it cannot be one (a comma, too long):
    the audience's refusal is the step's, never an error of the page or the API."""
    try:
        tags = clean_tags([text])
    except AudienceError as error:
        raise AutomationError(str(error)) from None
    return tags[0] if tags else ""


def create_automation(
    account: Account,
    *,
    name: str,
    mailing_list: MailingList,
    by: User | None,
    trigger: str = T.JOINED_LIST,
    **settings: Any,
) -> Automation:
    """A new draft automation: its messages go to `mailing_list`'s subscribers; the
    trigger (subscribing to that list by default) and its settings (`set_trigger`)."""
    name = " ".join((name or "").split())
    if not name:
        raise AutomationError(_("Give the automation a name."))
    if mailing_list.account_id != account.pk:
        raise AutomationError(_("Choose one of your lists."))
    automation = Automation(account=account, name=name[:200], mailing_list=mailing_list)
    _apply_trigger(automation, trigger, settings)
    with transaction.atomic():
        automation.save()
        audit.record("create", automation, by=by, account_id=account.pk)
    return automation


TRIGGER_FIELDS = (
    "trigger_tag",
    "date_attribute",
    "date_yearly",
    "date_time",
    "trigger_campaign",
    "trigger_url",
    "event_name",
    "reentry",
)


def _apply_trigger(automation: Automation, trigger: str, settings: dict[str, Any]) -> None:
    """Check the trigger and its settings and set them on `automation` (not saved)."""
    unknown = set(settings) - set(TRIGGER_FIELDS)
    if unknown:
        raise AutomationError(_("Unknown setting: %(name)s.") % {"name": sorted(unknown)[0]})
    if trigger not in T.values:
        raise AutomationError(_("Choose a trigger."))
    automation.trigger = trigger
    automation.reentry = bool(settings.get("reentry", automation.reentry))
    if trigger == T.TAG_ADDED:
        tag = _tag(str(settings.get("trigger_tag") or ""))
        if not tag:
            raise AutomationError(_("Name the tag that starts the automation."))
        automation.trigger_tag = tag
    elif trigger == T.DATE:
        key = str(settings.get("date_attribute") or "").strip()
        if not key or len(key) > 64:
            raise AutomationError(_("Name the contact attribute that holds the date."))
        at = settings.get("date_time", automation.date_time)
        if isinstance(at, str):
            try:
                at = dt.time.fromisoformat(at)
            except ValueError:
                raise AutomationError(_("Give the time of day as HH:MM.")) from None
        if not isinstance(at, dt.time):
            raise AutomationError(_("Give the time of day as HH:MM."))
        automation.date_attribute = key
        automation.date_yearly = bool(settings.get("date_yearly", automation.date_yearly))
        automation.date_time = at.replace(second=0, microsecond=0, tzinfo=None)
    elif trigger == T.CLICKED:
        campaign = settings.get("trigger_campaign")
        if not isinstance(campaign, Campaign) or campaign.account_id != automation.account_id:
            raise AutomationError(_("Choose one of your campaigns."))
        url = str(settings.get("trigger_url") or "").strip()
        if len(url) > 2000:
            raise AutomationError(_("That link is too long."))
        automation.trigger_campaign, automation.trigger_url = campaign, url
    elif trigger == T.EVENT:
        event = str(settings.get("event_name") or "").strip()
        if (
            not event
            or len(event) > 100
            or not event.replace(".", "").replace("_", "").replace("-", "").isalnum()
        ):
            raise AutomationError(
                _("Name the event: letters, digits, dots, dashes and underscores, at most 100.")
            )
        automation.event_name = event


def set_trigger(
    automation: Automation,
    *,
    trigger: str,
    by: User | None,
    name: str | None = None,
    **settings: Any,
) -> Automation:
    """Change the trigger (and whether contacts may enter again; the name, when given).
    Those already in stay where they are."""
    if name is not None:
        name = " ".join(name.split())
        if not name:
            raise AutomationError(_("Give the automation a name."))
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=automation.pk)
        _apply_trigger(locked, trigger, settings)
        if name and name[:200] != locked.name:
            for step in locked.steps.exclude(campaign=None):
                _rename_message(step, (locked.name, step.position), (name[:200], step.position))
            locked.name = name[:200]
        locked.save()
        audit.record("update", locked, by=by, fields=["trigger"], account_id=locked.account_id)
    return locked


STEP_SETTINGS = {
    K.SEND: ("wait_days",),
    K.WAIT: ("wait_amount", "wait_unit", "wait_weekday", "wait_time"),
    K.CONDITION: ("test", "key", "value", "about", "otherwise"),
    K.ADD_TAG: ("tag",),
    K.REMOVE_TAG: ("tag",),
    K.ADD_TO_LIST: ("target_list",),
    K.REMOVE_FROM_LIST: ("target_list",),
    K.LEAVE: (),
}
# The longest wait of a wait step, in each unit (ten years is a mistake, not a plan).
MAX_WAIT = {"minutes": 60 * 24 * 366, "hours": 24 * 3660, "days": MAX_WAIT_DAYS}


def _set_settings(step: Step, settings: dict[str, Any], steps: list[Step]) -> None:
    """Check `settings` for the step's kind and set them on `step` (not saved). `steps`:
    the automation's steps in order, `step` among them at its place."""
    allowed = STEP_SETTINGS[Step.Kind(step.kind)]
    unknown = {k for k, v in settings.items() if v is not None and k not in allowed}
    if unknown:
        raise AutomationError(
            _("A step of this kind has no setting %(name)s.") % {"name": sorted(unknown)[0]}
        )
    given = {k: v for k, v in settings.items() if v is not None}
    account_id = step.automation.account_id
    if step.kind == K.SEND and "wait_days" in given:
        days = given["wait_days"]
        if not isinstance(days, int) or not 0 <= days <= MAX_WAIT_DAYS:
            raise AutomationError(
                _("A wait is between 0 and %(days)s days.") % {"days": MAX_WAIT_DAYS}
            )
        step.wait_days = days
    elif step.kind == K.WAIT:
        weekday = given.get("wait_weekday", step.wait_weekday)
        if weekday is not None:
            if not isinstance(weekday, int) or not 0 <= weekday <= 6:
                raise AutomationError(_("Choose a day of the week."))
            at = given.get("wait_time", step.wait_time) or dt.time(9, 0)
            if isinstance(at, str):
                try:
                    at = dt.time.fromisoformat(at)
                except ValueError:
                    raise AutomationError(_("Give the time of day as HH:MM.")) from None
            step.wait_weekday, step.wait_time = weekday, at.replace(second=0, microsecond=0)
        else:
            unit = given.get("wait_unit", step.wait_unit)
            amount = given.get("wait_amount", step.wait_amount)
            if unit not in MAX_WAIT:
                raise AutomationError(_("Wait in minutes, hours or days."))
            if not isinstance(amount, int) or not 1 <= amount <= MAX_WAIT[unit]:
                raise AutomationError(
                    _("A wait is between 1 and %(most)s %(unit)s.")
                    % {"most": MAX_WAIT[unit], "unit": Step.Unit(unit).label}
                )
            step.wait_amount, step.wait_unit = amount, unit
            step.wait_weekday, step.wait_time = None, None
    elif step.kind == K.CONDITION:
        test = given.get("test", step.test)
        if test not in Step.Test.values:
            raise AutomationError(_("Choose what the condition checks."))
        step.test = test
        step.key = str(given.get("key", step.key) or "").strip()[:100]
        step.value = str(given.get("value", step.value) or "").strip()[:200]
        place = steps.index(step)
        if test in (Step.Test.OPENED, Step.Test.CLICKED):
            about = given.get("about", step.about)
            if not isinstance(about, Step) or about not in steps[:place] or about.kind != K.SEND:
                raise AutomationError(_("Choose an earlier step that sends a message."))
            step.about, step.key = about, ""
        else:
            if not step.key:
                raise AutomationError(_("Name the attribute or the tag the condition checks."))
            if test == Step.Test.HAS_TAG:
                step.key = _tag(step.key)
            step.about = None
        if "otherwise" in settings:
            otherwise = settings["otherwise"]
            if otherwise is not None and (
                not isinstance(otherwise, Step) or otherwise not in steps[place + 1 :]
            ):
                raise AutomationError(
                    _("When the condition is not met, go to a later step or leave.")
                )
            step.otherwise = otherwise
    elif step.kind in (K.ADD_TAG, K.REMOVE_TAG):
        tag = str(given.get("tag", step.tag) or "").strip()
        if not tag:
            raise AutomationError(_("Name the tag."))
        step.tag = _tag(tag)
    elif step.kind in (K.ADD_TO_LIST, K.REMOVE_FROM_LIST):
        target = given.get("target_list", step.target_list)
        if not isinstance(target, MailingList) or target.account_id != account_id:
            raise AutomationError(_("Choose one of your lists."))
        step.target_list = target


def _renumber(automation: Automation, steps: list[Step]) -> None:
    """Save the steps' positions as their order in `steps` (two passes: the positions
    are unique); a message named after its place follows it (`_rename_message`)."""
    Step.objects.filter(automation=automation).update(position=F("position") + 10000)
    for n, step in enumerate(steps):
        if step.position != n:
            _rename_message(step, (automation.name, step.position), (automation.name, n))
        step.position = n
        Step.objects.filter(pk=step.pk).update(position=n)


def _message_name(automation_name: str, position: int) -> str:
    """The name a send step's message (its campaign) is given: the automation's and the
    step's place, as the campaign list and the reports show it."""
    return _("%(automation)s: step %(n)s") % {"automation": automation_name, "n": position + 1}


def _rename_message(step: Step, was: tuple[str, int], now: tuple[str, int]) -> None:
    """The step's message, while it still has the name it was given for `was` (the
    automation's name, the step's place), is renamed for `now`: a step moved by an
    insert or a removal, or an automation renamed, no longer leaves "step 2" on what
    is step 3. A name the customer chose is kept."""
    if step.campaign_id is not None:
        Campaign.objects.filter(pk=step.campaign_id, name=_message_name(*was)).update(
            name=_message_name(*now)
        )


def _message_problems(error: ValidationError) -> str:
    """A step's message refused by the campaign's own checks, in words: each field as
    the step's form names it, and what is wrong with it."""
    labels = {
        "subject": _("Subject"),
        "from_name": _("From name"),
        "from_email": _("From address"),
        "body": _("Message"),
    }
    return " ".join(
        f"{labels[field]}: {text}" if field in labels else text
        for field, texts in error.message_dict.items()
        for text in texts
    )


def add_step(
    automation: Automation,
    *,
    kind: str = K.SEND,
    wait_days: int | None = None,
    subject: str = "",
    from_email: str = "",
    from_name: str = "",
    body: str = "",
    before: Step | None = None,
    by: User | None,
    **settings: Any,
) -> Step:
    """A step at the end, or before `before`: a message (a draft campaign to the
    automation's list, edited in the campaign editor; `wait_days` before it), a wait,
    a condition, a tag or list change, or leaving. Allowed while the automation runs:
    contacts wait at a step by its identity, so an inserted step is run by those who
    have not passed its place, and nobody's step is skipped or repeated."""
    if kind not in K.values:
        raise AutomationError(_("Choose the kind of step."))
    if kind == K.SEND:
        settings["wait_days"] = 0 if wait_days is None else wait_days
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=automation.pk)
        steps = list(locked.steps.order_by("position"))
        if before is not None and before not in steps:
            raise AutomationError(_("That step is not one of this automation's."))
        place = steps.index(before) if before is not None else len(steps)
        step = Step(automation=locked, kind=kind, position=place)
        steps.insert(place, step)
        _set_settings(step, settings, steps)
        if kind == K.SEND:
            try:
                step.campaign = campaigns.create_campaign(
                    locked.account,
                    by=by,
                    lists=[locked.mailing_list],
                    name=_message_name(locked.name, place),
                    subject=subject,
                    from_email=from_email,
                    from_name=from_name,
                    body=body,
                )
            except campaigns.CampaignError as error:
                raise AutomationError(str(error)) from None
            except ValidationError as error:  # a field the message needs: its sender's address
                raise AutomationError(_message_problems(error)) from None
        step.position = 9999  # free: the others are below, then moved up
        step.save()
        _renumber(locked, steps)
        if step.campaign is not None and locked.status == A.ACTIVE:
            # Running: the message must pass the checklist now, and opens at once.
            problems = _refusals(step)
            if problems:
                raise AutomationError(" ".join(problems))
            lifecycle.open_for_steps([step.campaign.pk])  # a send step's message
        audit.record("create", step, by=by, account_id=locked.account_id)
    return step


def update_step(step: Step, *, by: User | None, **settings: Any) -> Step:
    """Change a step's settings (a wait, a condition, a tag, a list), also while the
    automation runs. Contacts waiting at a changed wait are due at their arrival plus
    the new wait (now at the earliest)."""
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=step.automation_id)
        steps = list(locked.steps.order_by("position"))
        found = next((s for s in steps if s.pk == step.pk), None)
        if found is None:
            raise AutomationError(_("That step is not one of this automation's."))
        _set_settings(found, settings, steps)
        found.save()
        if found.kind in (K.SEND, K.WAIT):
            _reschedule(locked, found)
        audit.record("update", found, by=by, fields=sorted(settings), account_id=locked.account_id)
    return found


def _reschedule(automation: Automation, step: Step) -> None:
    zone = timing.account_zone(automation.account_id)
    at = clock.now()
    waiting = list(
        Enrolment.objects.select_for_update().filter(step=step, status=Enrolment.Status.ACTIVE)
    )
    for enrolment in waiting:
        arrived = enrolment.arrived_at or at
        enrolment.due_at = max(timing.due_on_arrival(step, arrived, zone), arrived)
    Enrolment.objects.bulk_update(waiting, ["due_at"], batch_size=1000)


def delete_automation(automation: Automation, *, by: User | None) -> None:
    """Delete an automation that never ran, with its steps and their messages still
    drafts (a message sent on its own stays, as a campaign). One that ran stays: its
    messages went out and their reports count; pausing it stops it."""
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=automation.pk)
        if not locked.is_deletable:
            raise AutomationError(
                _(
                    "This automation has run: its messages went out and their reports stay. "
                    "Pause it to stop it."
                )
            )
        drafts = list(
            Campaign.objects.filter(
                automation_step__automation=locked, status=Campaign.Status.DRAFT
            ).values_list("pk", flat=True)
        )
        audit.record("delete", locked, by=by, account_id=locked.account_id)
        locked.delete()
        Campaign.objects.filter(pk__in=drafts).delete()


def remove_step(step: Step, *, by: User | None) -> Campaign | None:
    """Remove a step, also while the automation runs: contacts waiting at it move on to
    the step after (due by its own wait from now), or are done. Refused while a
    condition refers to it. A send step's message goes with it while it went to nobody;
    one that went out is stopped as Cancel stops it (what is not sent yet is not sent)
    and stays as a campaign that ended, its report kept and its links counting from
    today: that message is returned."""
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=step.automation_id)
        steps = list(locked.steps.order_by("position"))
        found = next((s for s in steps if s.pk == step.pk), None)
        if found is None:
            raise AutomationError(_("That step is not one of this automation's."))
        for other in steps:
            if other.pk != found.pk and found.pk in (other.about_id, other.otherwise_id):
                raise AutomationError(
                    _("The condition of step %(n)s refers to this step: change it first.")
                    % {"n": other.position + 1}
                )
        place = steps.index(found)
        following = steps[place + 1] if place + 1 < len(steps) else None
        zone = timing.account_zone(locked.account_id)
        at = clock.now()
        waiting = Enrolment.objects.select_for_update().filter(
            step=found, status=Enrolment.Status.ACTIVE
        )
        if following is None:
            waiting.update(status=Enrolment.Status.DONE, step=None, due_at=None)
        else:
            waiting.update(
                step=following, arrived_at=at, due_at=timing.due_on_arrival(following, at, zone)
            )
        message = found.campaign
        audit.record("delete", found, by=by, account_id=locked.account_id)
        found.delete()
        _renumber(locked, steps[:place] + steps[place + 1 :])
        if message is None:
            return None
        # No step runs meanwhile: the scheduler waits for the automation's row.
        if not Delivery.objects.filter(campaign=message).exists():
            message.delete()
            return None
        if message.status in lifecycle.TRANSITIONS["cancel"].sources:
            # Untied from its step, an open message would read as a campaign sending
            # for ever, and its links would never expire.
            lifecycle.cancel_campaign(message)
        return message


def record_event(
    account: Account,
    *,
    contact: Contact,
    client_id: str,
    name: str = "",
    automation: Automation | None = None,
) -> tuple[bool, int]:
    """An event posted to the API for `contact`: the automations listening to it (the
    one given, or every one of the account whose event name is `name`) enter the contact
    at their next pass. Idempotent by `client_id`: the same id again changes nothing.
    Returns (new, how many of those automations the contact enters, as things stand:
    `entry.entering`, the scheduler's rule; none for a contact who may not be mailed,
    is not on the list, or is in it already)."""
    client_id = (client_id or "").strip()
    if not client_id or len(client_id) > 100:
        raise AutomationError(_("Give the event an id of at most 100 characters."))
    if contact.account_id != account.pk:
        raise AutomationError(_("That contact does not exist."))
    if automation is not None:
        if automation.account_id != account.pk:
            raise AutomationError(_("That automation does not exist."))
        if automation.trigger != T.EVENT:
            raise AutomationError(_("This automation does not start with an event."))
        name = automation.event_name
    name = (name or "").strip()
    if not name:
        raise AutomationError(_("Name the event."))
    listening = Automation.objects.filter(
        account=account, trigger=T.EVENT, status__in=(A.ACTIVE, A.PAUSED)
    )
    listening = (
        listening.filter(pk=automation.pk) if automation else listening.filter(event_name=name)
    )
    try:
        with transaction.atomic():
            TriggerEvent.objects.create(
                account=account, contact=contact, name=name[:100], client_id=client_id
            )
            ids = list(listening.values_list("pk", flat=True))
            PendingEntry.objects.bulk_create(
                [PendingEntry(automation_id=pk, contact=contact) for pk in ids]
            )
    except IntegrityError:
        return False, 0
    now = clock.now()
    entering_now = [
        a for a in Automation.objects.filter(pk__in=ids) if any(entering(a, {contact.pk: now}))
    ]
    return True, len(entering_now)


# Checklist lines that do not hold for a step's message: its contacts come later (an
# empty list is no reason), and each message is paid when it is added
# (`credits.spend_for_step`), not reserved for the whole list at the start.
NOT_FOR_STEPS = frozenset({"recipients", "credits"})


def _refusals(step: Step) -> list[str]:
    """Why the step's message may not go (the checklist's blocking lines)."""
    assert step.campaign is not None, "only a send step has a message"
    found = checklist.checklist(step.campaign)
    return [
        f"{_('Step %(n)s') % {'n': step.position + 1}}: {c.detail} {c.hint}".strip()
        for c in found.blocking
        if c.key not in NOT_FOR_STEPS
    ]


def untracked(step: Step) -> str:
    """Why nobody can meet `step`, a condition on an open or a click of a message that
    does not count them (P26: only what tracking recorded counts), else empty."""
    if step.test not in (Step.Test.OPENED, Step.Test.CLICKED) or step.about is None:
        return ""
    message = step.about.campaign
    if message is None:  # `about` is a send step, which always has its message
        return ""
    n = step.about.position + 1
    if step.test == Step.Test.OPENED and not message.track_opens:
        return _(
            "Nobody can meet this condition: the message of step %(n)s does not track opens."
        ) % {"n": n}
    if step.test == Step.Test.CLICKED and not message.track_clicks:
        return _(
            "Nobody can meet this condition: the message of step %(n)s does not track clicks."
        ) % {"n": n}
    return ""


def _untracked_drafts(steps: list[Step]) -> list[str]:
    """The conditions nobody could meet because a message still a draft counts no opens
    or clicks: once started, its message can no longer be changed (it is sending), so
    the condition would send everyone to "did not" for good."""
    step_n, switch_on = _("Step %(n)s"), _("Switch it on in the message before starting.")
    return [
        f"{step_n % {'n': step.position + 1}}: {reason} {switch_on}"
        for step in steps
        if (reason := untracked(step))
        and step.about is not None
        and step.about.campaign is not None
        and step.about.campaign.status == Campaign.Status.DRAFT
    ]


def start(automation: Automation, *, by: User | None) -> Automation:
    """Run it: from now on, contacts who subscribe to its list enter. Refused with the
    reasons when a step's message may not go; resumes a paused automation."""
    account = automation.account
    if not account.is_processing_allowed or account.is_restricted:
        raise AutomationError(_("This account may not send now: nothing was started."))
    steps = list(
        automation.steps.select_related("campaign", "campaign__account", "about__campaign")
    )
    if not steps:
        raise AutomationError(_("Add a step first."))
    sends = [(step, step.campaign) for step in steps if step.campaign is not None]
    # A step's message sent, scheduled or cancelled on its own is no longer the step's.
    taken = [
        step
        for step, message in sends
        if message.status not in (Campaign.Status.DRAFT, Campaign.Status.SENDING)
    ]
    if taken:
        raise AutomationError(
            _("The message of step %(n)s was sent or scheduled on its own: remove that step.")
            % {"n": taken[0].position + 1}
        )
    problems = [problem for step, _message in sends for problem in _refusals(step)]
    problems += _untracked_drafts(steps)
    if problems:
        raise AutomationError(" ".join(problems))
    with transaction.atomic():
        locked = Automation.objects.select_for_update().get(pk=automation.pk)
        if locked.status == A.ACTIVE:
            return locked
        # The steps' messages are open for the engine (sending.lifecycle); no other
        # path adds recipients to them.
        lifecycle.open_for_steps(
            [message.pk for _step, message in sends if message.status == Campaign.Status.DRAFT]
        )
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


def resume(automation: Automation, *, by: User | None) -> Automation:
    """Go on with a paused automation, each contact from where they were (the same
    checks as starting it)."""
    if automation.status != A.PAUSED:
        raise AutomationError(_("Only a paused automation can be resumed."))
    return start(automation, by=by)


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
