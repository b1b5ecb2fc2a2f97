"""A campaign's life: draft, scheduled, sending, paused, sent or cancelled.

Every action a customer (or the relay, or the clock) takes on a campaign is one
transition of `TRANSITIONS`: the states it leaves from, the state it leads to, and what
the customer is told when the campaign is in no state to take it. Each action locks the
campaign's row, checks the table, moves, and does its work in the same transaction; the
campaign page offers exactly the actions `allowed` returns."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.accounts.mailability import account_users
from tidings.billing import credits
from tidings.campaigns.models import Campaign
from tidings.campaigns.rendering import TemplateError, check
from tidings.core import clock, jobs
from tidings.core.mail import Purpose, send_templated
from tidings.sending import checklist
from tidings.sending.dispatcher import DISPATCH, MATERIALISE, dispatch
from tidings.sending.models import Delivery
from tidings.sending.recipients import count as count_recipients
from tidings.sending.recipients import materialise

log = logging.getLogger(__name__)

S = Campaign.Status
D = Delivery.Status


class SendingError(ValueError):
    """A sending action that cannot be done now; the message says why."""


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str
    # What the customer reads when the campaign is in another state ({status}: its state).
    refusal: str


TRANSITIONS: dict[str, Transition] = {
    "start": Transition(
        frozenset({S.DRAFT, S.SCHEDULED}), S.SENDING, "A {status} campaign cannot be started."
    ),
    "schedule": Transition(
        frozenset({S.DRAFT, S.SCHEDULED}), S.SCHEDULED, "A {status} campaign cannot be scheduled."
    ),
    "unschedule": Transition(
        frozenset({S.SCHEDULED}), S.DRAFT, "Only a scheduled campaign can be unscheduled."
    ),
    "pause": Transition(
        frozenset({S.SENDING}), S.PAUSED, "Only a campaign that is sending can be paused."
    ),
    "resume": Transition(
        frozenset({S.PAUSED}), S.SENDING, "Only a paused campaign can be resumed."
    ),
    "cancel": Transition(
        frozenset({S.SCHEDULED, S.SENDING, S.PAUSED}),
        S.CANCELLED,
        "A {status} campaign cannot be cancelled.",
    ),
    # Messages whose outcome is unknown (a worker was lost mid-send) are queued again
    # at the customer's word; a campaign that had finished sends again (a paused one
    # is resumed first: resending must not resume it behind the customer's back).
    "resend unknown": Transition(
        frozenset({S.SENDING, S.SENT}),
        S.SENDING,
        "Only a sending or sent campaign can send its messages of unknown outcome again.",
    ),
    # Not the customer's: every recipient had their outcome; the relay refused the
    # campaign itself.
    "finish": Transition(frozenset({S.SENDING}), S.SENT, "Only a sending campaign is sent."),
    "relay refused": Transition(frozenset({S.SENDING}), S.PAUSED, "Only a sending campaign."),
    # A message of the campaign exceeded the rendering limits (campaigns.renderpool).
    "template too costly": Transition(frozenset({S.SENDING}), S.PAUSED, "Only a sending campaign."),
    # Not the customer's: another part fixed the recipients (an A/B test's sample, its
    # winner's rest) or adds them one by one (an automation's step).
    "start fixed": Transition(frozenset({S.DRAFT}), S.SENDING, "Only a draft can be started."),
    # An A/B test of send time: each part's recipients are fixed at once, and the part
    # is scheduled for its time; beat starts it as any scheduled campaign.
    "schedule fixed": Transition(
        frozenset({S.DRAFT}), S.SCHEDULED, "Only a draft can be scheduled."
    ),
    "open for steps": Transition(
        frozenset({S.DRAFT, S.SENDING}), S.SENDING, "Only a draft can be an automation's step."
    ),
}
CUSTOMER_ACTIONS = (
    "start", "schedule", "unschedule", "pause", "resume", "cancel", "resend unknown",
)  # fmt: skip


def allowed(campaign: Campaign) -> list[str]:
    """The customer's actions the campaign can take now, in the table's order."""
    return [a for a in CUSTOMER_ACTIONS if campaign.status in TRANSITIONS[a].sources]


def _move(locked: Campaign, action: str) -> None:
    """Take `action` on the locked campaign, or say why it cannot be taken."""
    transition = TRANSITIONS[action]
    if locked.status not in transition.sources:
        raise SendingError(transition.refusal.format(status=locked.get_status_display()))
    locked.status = transition.target


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _check_content(campaign: Campaign) -> None:
    try:
        check(campaign.subject, html=False)
        check(campaign.body)
    except TemplateError as error:
        raise SendingError(
            _("The campaign's content has an error (%(error)s).") % {"error": error}
        ) from None


STEP_SENT_BY_AUTOMATION = _(
    "This is the message of an automation's step: the automation sends it to each contact "
    "who reaches the step, never to the whole list at once."
)


def automation_step_of(campaign: Campaign) -> dict[str, Any] | None:
    """The automation (its name and uuid) and the step number whose message the campaign
    is, or None when it is not an automation's step message."""
    row = (
        Campaign.objects.filter(pk=campaign.pk, automation_step__isnull=False)
        .values(
            "automation_step__automation__name",
            "automation_step__automation__uuid",
            "automation_step__position",
        )
        .first()
    )
    if row is None:
        return None
    return {
        "name": row["automation_step__automation__name"],
        "uuid": row["automation_step__automation__uuid"],
        "number": row["automation_step__position"] + 1,
    }


def is_automation_step(campaign: Campaign) -> bool:
    """Whether the campaign is an automation's step message (sent only by the steps)."""
    return automation_step_of(campaign) is not None


def _check_ready(
    campaign: Campaign, action: str, confirmed_recipients: int | None, *, confirming: bool
) -> None:
    """The checklist's blocking rules and the confirmation of a large send
    (`sending.checklist`: the one place that says when a campaign may go), for a
    campaign in a state to take `action` (else the table's refusal, checked again
    under the lock)."""
    transition = TRANSITIONS[action]
    if campaign.status not in transition.sources:
        raise SendingError(transition.refusal.format(status=campaign.get_status_display()))
    if is_automation_step(campaign):
        # Its draft has the automation's list: sent now, it would mail every subscriber
        # the step's message at once and leave the automation unable to start.
        raise SendingError(STEP_SENT_BY_AUTOMATION)
    _check_content(campaign)
    try:
        checklist.refuse_unready(
            campaign, confirmed_recipients=confirmed_recipients, confirming=confirming
        )
    except checklist.NotReady as error:
        raise SendingError(str(error)) from None


def start_campaign(campaign: Campaign, *, confirmed_recipients: int | None = None) -> int:
    """Send now: the campaign starts, its recipients are fixed, batches are queued.
    A send to more than SENDING["confirm_over"] recipients needs their exact number in
    `confirmed_recipients`. Returns the number of recipients fixed now: all of them, or
    the first batch's when there are more (the rest follows in `materialise_rest`)."""
    return _start(campaign, confirmed_recipients, confirming=True)


def _start(campaign: Campaign, confirmed_recipients: int | None, *, confirming: bool) -> int:
    if not campaign.account.is_processing_allowed:
        raise SendingError(_("This account is closed: nothing is sent."))
    if campaign.account.is_restricted:
        raise SendingError(_("Processing is restricted for this account: nothing is sent."))
    _check_ready(campaign, "start", confirmed_recipients, confirming=confirming)
    with transaction.atomic():
        locked = _locked(campaign)
        _move(locked, "start")
        locked.started_at = timezone.now()
        if locked.recipients_fixed_at is not None:
            # Fixed by another part before it was scheduled (an A/B test's part for one
            # send time, `schedule_with_fixed_recipients`): those, and nobody else.
            count = Delivery.objects.filter(campaign=locked).count()
            if credits.needs_credits(locked.account):
                _reserve_credits(locked, count)
            locked.save(update_fields=["status", "started_at", "updated_at"])
            dispatch(locked.pk)
            campaign.refresh_from_db()
            return count
        if credits.needs_credits(locked.account):
            _reserve_credits(locked, count_recipients(locked))
        # The first batch's recipients now, queued at once; a large audience's rest is
        # written by a task behind that batch (a minute's work at a million), so the
        # first message need not wait for it.
        first = settings.SENDING["batch_size"]
        count = materialise(locked, limit=first)
        if count < first:
            locked.recipients_fixed_at = locked.started_at
        locked.save(update_fields=["status", "started_at", "recipients_fixed_at", "updated_at"])
        dispatch(locked.pk)
        if locked.recipients_fixed_at is None:
            jobs.enqueue(MATERIALISE, locked.pk)
    campaign.refresh_from_db()
    return count


def _reserve_credits(locked: Campaign, wanted: int) -> None:
    """Hold `wanted` credits (one per recipient, counted once by the caller) in the
    start's transaction, or SendingError saying why: two campaigns starting at once
    cannot both spend the same credits (billing.credits). For an account that needs
    credits (`credits.needs_credits`)."""
    try:
        credits.reserve_for_campaign(locked.account, locked.pk, wanted)
    except credits.NotEnoughCredits:
        refused = credits.refusal(locked.account, wanted)
        raise SendingError(refused or _("Not enough credits.")) from None


def start_with_fixed_recipients(campaign_ids: list[int], now: datetime) -> None:
    """Start campaigns whose deliveries the caller wrote in its transaction (an A/B
    test's variants, its winner's rest): each reserves one credit per delivery, as a
    campaign started by its customer does, or SendingError and nothing starts."""
    for campaign_id in campaign_ids:
        locked = Campaign.objects.select_for_update().select_related("account").get(pk=campaign_id)
        _move(locked, "start fixed")
        locked.started_at = locked.recipients_fixed_at = now
        if credits.needs_credits(locked.account):
            _reserve_credits(locked, Delivery.objects.filter(campaign_id=campaign_id).count())
        locked.save(update_fields=["status", "started_at", "recipients_fixed_at", "updated_at"])
        dispatch(locked.pk)


def schedule_with_fixed_recipients(campaign_id: int, when: datetime) -> None:
    """Schedule a draft whose deliveries the caller wrote in its transaction (an A/B
    test's part for one send time) for `when`: beat starts it as any scheduled campaign
    (`start_due_campaigns`, the blocking rules and credits then), with those recipients
    only. Each is checked by the mailability rule again as it is sent."""
    if timezone.is_naive(when):
        raise SendingError(_("Give the time with its time zone."))
    locked = Campaign.objects.select_for_update().get(pk=campaign_id)
    _move(locked, "schedule fixed")
    locked.scheduled_at = when
    locked.schedule_timezone = getattr(when.tzinfo, "key", None) or "UTC"
    locked.recipients_fixed_at = timezone.now()
    locked.save(
        update_fields=[
            "status", "scheduled_at", "schedule_timezone", "recipients_fixed_at", "updated_at"
        ]
    )  # fmt: skip


def open_for_steps(campaign_ids: list[int]) -> None:
    """An automation's step messages open for the engine: each contact reaching a step
    gets one delivery of it, paid when it is added (`credits.spend_for_step`). They
    never finish by themselves (their recipients are never all fixed)."""
    for campaign_id in campaign_ids:
        locked = Campaign.objects.select_for_update().get(pk=campaign_id)
        _move(locked, "open for steps")
        locked.save(update_fields=["status", "updated_at"])


# A message that reached the relay costs its credit, whatever became of it there.
SPENT = (D.SENT, D.BOUNCED, D.UNKNOWN)


def _settle_credits(campaign_id: int) -> None:
    """Spend the credits of the messages that went, return the rest (once)."""
    if not credits.reserved_for(campaign_id):
        return
    account = Campaign.objects.select_related("account").get(pk=campaign_id).account
    deliveries = Delivery.objects.filter(campaign_id=campaign_id)
    sent = deliveries.filter(status__in=SPENT).count()
    # Cancelled mid-send, a message may be with the relay, its outcome not recorded yet:
    # it costs its credit too. A worker sends its claimed chunk one message at a time,
    # so each claim has at most one in flight (engine, step 4); the rest of the chunk
    # was never attempted and is given back, unsent.
    in_flight = (
        deliveries.filter(status=D.SENDING).order_by().values("claimed_by").distinct().count()
    )
    credits.settle_campaign(account, campaign_id, sent=sent + in_flight)


def materialise_rest(campaign_id: int) -> int:
    """The recipients `start_campaign` left for later (contacts after the first
    batch's), then their dispatch. Idempotent; returns the number added."""
    with transaction.atomic():
        # Locked: a pause or a cancel waits, so a cancelled campaign gets no new queue.
        campaign = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign_id, recipients_fixed_at__isnull=True)
            .first()
        )
        if campaign is None:
            return 0
        if campaign.status not in (S.SENDING, S.PAUSED):  # cancelled meanwhile
            campaign.recipients_fixed_at = timezone.now()
            campaign.save(update_fields=["recipients_fixed_at", "updated_at"])
            return 0
        last = Delivery.objects.filter(campaign=campaign).aggregate(m=Max("contact_id"))["m"]
        added = materialise(campaign, after=last or 0)
        if campaign.status == S.SENDING:
            jobs.enqueue(DISPATCH, campaign_id)
    return added


def schedule_campaign(
    campaign: Campaign, when: datetime, *, confirmed_recipients: int | None = None
) -> Campaign:
    """Send at `when` (aware); beat starts it within the minute. The checklist's rules
    and the confirmation of a large send apply now, as to a send now; the blocking
    rules again when it starts."""
    if timezone.is_naive(when):
        raise SendingError(_("Give the time with its time zone."))
    if when <= timezone.now():
        raise SendingError(_("That time has passed: choose a time in the future, or send now."))
    _check_ready(campaign, "schedule", confirmed_recipients, confirming=True)
    with transaction.atomic():
        locked = _locked(campaign)
        _move(locked, "schedule")
        locked.scheduled_at = when
        # Kept to show the time again as the customer chose it.
        locked.schedule_timezone = getattr(when.tzinfo, "key", None) or "UTC"
        locked.save(update_fields=["status", "scheduled_at", "schedule_timezone", "updated_at"])
    campaign.refresh_from_db()
    return campaign


def unschedule_campaign(campaign: Campaign) -> Campaign:
    with transaction.atomic():
        locked = _locked(campaign)
        _move(locked, "unschedule")
        locked.scheduled_at = None
        locked.save(update_fields=["status", "scheduled_at", "updated_at"])
    campaign.refresh_from_db()
    return campaign


def pause_campaign(campaign: Campaign) -> Campaign:
    """Workers stop after the message they are sending; the rest waits, queued."""
    with transaction.atomic():
        locked = _locked(campaign)
        _move(locked, "pause")
        locked.save(update_fields=["status", "updated_at"])
    campaign.refresh_from_db()
    return campaign


def resume_campaign(campaign: Campaign) -> Campaign:
    with transaction.atomic():
        locked = _locked(campaign)
        _move(locked, "resume")
        locked.pause_reason = ""
        locked.save(update_fields=["status", "pause_reason", "updated_at"])
        Delivery.objects.filter(campaign=locked, status=D.QUEUED).update(dispatched_at=None)
        jobs.enqueue(DISPATCH, locked.pk)
    campaign.refresh_from_db()
    return campaign


def cancel_campaign(campaign: Campaign) -> Campaign:
    """Stop for good: whoever has not been sent to yet gets nothing."""
    with transaction.atomic():
        locked = _locked(campaign)
        _move(locked, "cancel")
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "finished_at", "updated_at"])
        Delivery.objects.filter(campaign=locked, status=D.QUEUED).update(
            status=D.SKIPPED, last_error="campaign cancelled"
        )
        _settle_credits(locked.pk)
    campaign.refresh_from_db()
    return campaign


def resend_unknown(campaign: Campaign) -> int:
    """Queue again the messages a lost worker may or may not have sent: the customer
    decides, since a resend may deliver twice. Each is checked again as every message
    is (an address that left since gets nothing); a finished campaign sends again.
    Returns how many were queued."""
    with transaction.atomic():
        locked = _locked(campaign)
        was_sent = locked.status == S.SENT
        _move(locked, "resend unknown")  # or refused, with the table's words
        unknown = Delivery.objects.filter(campaign=locked, status=D.UNKNOWN)
        count = unknown.update(
            status=D.QUEUED, claimed_by="", claimed_at=None, dispatched_at=None,
            not_before=None, last_error="",
        )  # fmt: skip
        if not count:
            raise SendingError(_("No message of this campaign has an unknown outcome."))
        if was_sent:
            locked.finished_at = None
            locked.save(update_fields=["status", "finished_at", "updated_at"])
        jobs.enqueue(DISPATCH, locked.pk)
    log.info("campaign %s: %s messages of unknown outcome queued again", campaign.pk, count)
    campaign.refresh_from_db()
    return count


def start_due_campaigns(now: datetime | None = None) -> list[int]:
    """Start every scheduled campaign whose time has come (beat, every minute), by the
    schedulers' clock (`core.clock`: the real time, or a development test clock)."""
    now = now or clock.now()
    started = []
    for campaign in Campaign.objects.filter(status=S.SCHEDULED, scheduled_at__lte=now):
        try:
            # Confirmed when it was scheduled; the blocking rules hold again now.
            _start(campaign, None, confirming=False)
        except SendingError as error:
            log.warning("scheduled campaign %s not started: %s", campaign.pk, error)
            continue
        started.append(campaign.pk)
    return started


def finish_if_done(campaign_id: int) -> bool:
    """A sending campaign whose recipients are all fixed, with nothing queued or in
    flight, is sent."""
    open_ = Delivery.objects.filter(campaign_id=campaign_id, status__in=[D.QUEUED, D.SENDING])
    if open_.exists():
        return False
    with transaction.atomic():
        finished = Campaign.objects.filter(
            pk=campaign_id,
            status__in=TRANSITIONS["finish"].sources,
            recipients_fixed_at__isnull=False,
        ).update(status=TRANSITIONS["finish"].target, finished_at=timezone.now())
        if finished:
            _settle_credits(campaign_id)
    return bool(finished)


def pause_for_relay(campaign: Campaign, reason: str) -> None:
    """The relay refuses the campaign itself (the login, the sender, message after
    message): pause it with the reason and tell the account's users, instead of failing
    every recipient for good. Resuming retries where it stopped."""
    _pause_with_reason(campaign, reason, "relay refused", "sending/mail/campaign_paused")


def pause_for_template(campaign: Campaign, reason: str) -> None:
    """A message of the campaign exceeded the rendering limits (its template, for that
    contact, takes too long or too much memory): pause it with the reason and tell the
    account's users; the worker goes on with other work. Resuming after the template is
    mended retries where it stopped."""
    _pause_with_reason(
        campaign, reason, "template too costly", "sending/mail/campaign_paused_template"
    )


def _pause_with_reason(campaign: Campaign, reason: str, action: str, mail: str) -> None:
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status not in TRANSITIONS[action].sources:
            return
        _move(locked, action)
        locked.pause_reason = reason[:500]
        locked.save(update_fields=["status", "pause_reason", "updated_at"])
        users = list(account_users(locked.account_id, Purpose.SERVICE))
        send_templated(
            mail,
            [u.email for u in users],
            {"campaign": locked, "reason": reason},
            purpose=Purpose.SERVICE,
            account_id=locked.account_id,
            user_ids={u.email: u.pk for u in users},
        )
    log.warning("campaign %s paused: %s", campaign.pk, reason)
