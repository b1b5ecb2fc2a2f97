"""The automations' scheduler (beat, every minute; `run` is idempotent).

1. **Enter.** Each running automation's trigger (docs/automations.md):
   - subscribed to its list: confirmed on the list since it started (any path);
   - a tag added, a click on a campaign's link: the `PendingEntry` rows the database
     triggers wrote (automations.watch), entered and deleted;
   - an event posted to the API: the `PendingEntry` rows the API wrote;
   - a date attribute: an hourly sweep enrols ahead, due at the next date at the
     chosen time in the contact's time zone (else the account's).
   Only subscribers of the automation's list who may be mailed enter; each once, or
   again after finishing or leaving when the automation allows re-entry (a new round).
2. **Leave.** An active enrolment whose contact may no longer get the automation's
   marketing mail (`audience.mailability`: unsubscribed, bounced, complained, objected,
   restricted, erased, left the list, the account closed or restricted) leaves at once,
   in every running or paused automation (P21). The engine checks the same rule again
   when it claims each message, so nothing is sent in between.
3. **Run the due steps.** The due enrolments are found by one indexed query
   (`enrolment_due`: status, due_at), locked (`skip_locked`: two schedulers never take
   the same one) 500 at a time; each step done gets its `StepRun`, unique per (step,
   contact, round), in the same transaction as its effect (a `Delivery` for a send
   step, the tag or list change) and as the enrolment moving on (to the step after, by
   identity, or the condition's other step), so a step runs at most once for a contact
   in a round, whatever runs twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from tidings.audience import bulk
from tidings.audience.mailability import contacts_q, mailable_ids
from tidings.audience.models import Contact, Subscription
from tidings.automations import services
from tidings.automations.entry import entering
from tidings.automations.models import Automation, Enrolment, PendingEntry, Step, StepRun
from tidings.automations.timing import account_zone, contact_zone, due_on_arrival
from tidings.billing import credits
from tidings.campaigns.models import Campaign
from tidings.core import clock, jobs
from tidings.core.mail import Purpose
from tidings.sending.dispatcher import DISPATCH
from tidings.sending.models import Delivery, TrackingEvent

E = Enrolment.Status
K = Step.Kind
T = Automation.Trigger
LISTENING = (Automation.Status.ACTIVE, Automation.Status.PAUSED)
# Due enrolments taken per transaction.
CHUNK = 500
# Pending entries entered per transaction.
ENTRY_CHUNK = 2000
# How long contacts whose step the credits did not cover wait before the next try.
WAIT_FOR_CREDITS = timedelta(hours=1)
# The audit's reason when a step's message was cancelled (or paused) on its campaign page.
STEP_NOT_SENDING = "paused: a step's message is not sending"
# How often a date trigger's contacts are read again (the only read of an account's
# contacts: hourly, not every minute).
DATE_SWEEP = timedelta(hours=1)


@dataclass
class Run:
    entered: int = 0
    left: int = 0
    steps: int = 0


def _steps(automation_id: int) -> list[Step]:
    return list(Step.objects.filter(automation_id=automation_id).order_by("position"))


# Entering --------------------------------------------------------------------------------


def admit(automation: Automation, arrivals: Iterable[tuple[int, datetime]], at: datetime) -> int:
    """Enter these (contact, when) into the automation, as `entry.entering` says who:
    subscribers of its list who may be mailed, once each, or again (a new round) after
    finishing or leaving when it allows re-entry. Returns how many entered."""
    steps = _steps(automation.pk)
    if not steps:
        return 0
    first = steps[0]
    zone = account_zone(automation.account_id)
    when: dict[int, datetime] = {}
    for contact_id, moment in arrivals:
        when.setdefault(contact_id, moment)
    if not when:
        return 0
    first_time, again = entering(automation, when)
    fresh = [
        Enrolment(
            automation=automation,
            contact_id=contact_id,
            step=first,
            arrived_at=when[contact_id],
            entered_at=when[contact_id],
            due_at=due_on_arrival(first, when[contact_id], zone),
        )
        for contact_id in first_time
    ]
    for enrolment in again:
        moment = when[enrolment.contact_id]
        enrolment.status, enrolment.step, enrolment.left_at = E.ACTIVE, first, None
        enrolment.round += 1
        enrolment.entered_at = enrolment.arrived_at = moment
        enrolment.due_at = due_on_arrival(first, moment, zone)
    Enrolment.objects.bulk_create(fresh, batch_size=1000, ignore_conflicts=True)
    fields = ["status", "step", "left_at", "round", "entered_at", "arrived_at", "due_at"]
    Enrolment.objects.bulk_update(again, fields, batch_size=1000)
    return len(fresh) + len(again)


def _fired_on_the_clock(
    rows: Iterable[tuple[int, datetime]], at: datetime
) -> list[tuple[int, datetime]]:
    """When each trigger fired, on the scheduler's clock. What fires a trigger (a
    subscription, a tag, an event) is stamped with the real time, and the scheduler goes
    by the test clock in development (`core.clock`): moved by its offset (never past
    `at`), a first wait counts from the entry, not from a real time days behind the
    clock, which would let the contact skip it. In production the offset is zero."""
    shift = clock.offset()
    if not shift:
        return list(rows)
    return [(contact_id, min(moment + shift, at)) for contact_id, moment in rows]


def enter_joined(automation: Automation, at: datetime) -> int:
    """The list's subscribers who joined since the automation started."""
    joined = (
        Subscription.objects.filter(
            mailing_list_id=automation.mailing_list_id, status=Subscription.Status.CONFIRMED
        )
        .annotate(joined=Coalesce("confirmed_at", "created_at"))
        .filter(joined__gte=automation.activated_at, joined__lte=at)
    )
    if automation.reentry:
        # Again only when they joined after their last entry and are not in it now.
        joined = joined.exclude(
            Q(contact__automation_enrolments__automation=automation)
            & (
                Q(contact__automation_enrolments__status=E.ACTIVE)
                | Q(
                    contact__automation_enrolments__entered_at__gte=Coalesce(
                        "confirmed_at", "created_at"
                    )
                )
            )
        )
    else:
        joined = joined.exclude(contact__automation_enrolments__automation=automation)
    rows = _fired_on_the_clock(
        joined.values_list("contact_id", "joined").iterator(chunk_size=2000), at
    )
    entered = 0
    for start in range(0, len(rows), ENTRY_CHUNK):
        entered += admit(automation, rows[start : start + ENTRY_CHUNK], at)
    return entered


def enter_pending(automation: Automation, at: datetime) -> int:
    """The contacts a tag, a click or an event fired the trigger for (PendingEntry)."""
    entered = 0
    while True:
        with transaction.atomic():
            rows = list(
                PendingEntry.objects.filter(automation=automation, at__lte=at)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", "contact_id", "at")[:ENTRY_CHUNK]
            )
            if not rows:
                return entered
            entered += admit(
                automation, _fired_on_the_clock([(c, a) for _pk, c, a in rows], at), at
            )
            PendingEntry.objects.filter(pk__in=[pk for pk, _c, _a in rows]).delete()


def next_date(
    value: object, *, yearly: bool, at_time: dt.time, zone: zoneinfo.ZoneInfo, after: datetime
) -> datetime | None:
    """The moment a date attribute `value` (ISO text) next falls at `at_time` in `zone`,
    after `after`: this year's or next year's when yearly (29 February: the 28th in
    other years), else the date itself if it is still to come."""
    try:
        day = dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
    if not yearly:
        moment = datetime.combine(day, at_time, tzinfo=zone)
        return moment if moment > after else None
    local = after.astimezone(zone).date()
    for year in (local.year, local.year + 1, local.year + 2):
        try:
            candidate = day.replace(year=year)
        except ValueError:
            candidate = dt.date(year, 2, 28)
        moment = datetime.combine(candidate, at_time, tzinfo=zone)
        if moment > after:
            return moment
    return None


def sweep_dates(automation: Automation, at: datetime) -> int:
    """Enrol ahead the list's subscribers whose date attribute falls next (hourly):
    each enrolment is due at the date, so the minute's pass reads only `enrolment_due`."""
    if automation.dates_swept_at and automation.dates_swept_at > at - DATE_SWEEP:
        return 0
    key = automation.date_attribute
    zone = account_zone(automation.account_id)
    contacts = Contact.objects.filter(
        account_id=automation.account_id,
        attributes__has_key=key,
        subscriptions__mailing_list_id=automation.mailing_list_id,
        subscriptions__status=Subscription.Status.CONFIRMED,
    ).exclude(
        automation_enrolments__in=Enrolment.objects.filter(automation=automation, status=E.ACTIVE)
    )
    if not automation.date_yearly and not automation.reentry:
        contacts = contacts.exclude(automation_enrolments__automation=automation)
    last = dict(
        Enrolment.objects.filter(automation=automation).values_list("contact_id", "entered_at")
    )
    arrivals: list[tuple[int, datetime]] = []
    for contact_id, attributes in contacts.values_list("pk", "attributes").iterator(2000):
        after = at
        if contact_id in last:
            after = max(at, last[contact_id] + timedelta(days=1))
        moment = next_date(
            attributes.get(key),
            yearly=automation.date_yearly,
            at_time=automation.date_time,
            zone=contact_zone(attributes, zone),
            after=after,
        )
        if moment is not None and (
            automation.activated_at is None or moment >= automation.activated_at
        ):
            arrivals.append((contact_id, moment))
    # A yearly date is a new round each year (re-entry is implied).
    reentry = automation.reentry
    automation.reentry = reentry or automation.date_yearly
    entered = 0
    for start in range(0, len(arrivals), ENTRY_CHUNK):
        entered += admit(automation, arrivals[start : start + ENTRY_CHUNK], at)
    automation.reentry = reentry
    Automation.objects.filter(pk=automation.pk).update(dates_swept_at=at)
    return entered


def enter(automation: Automation, at: datetime) -> int:
    """Enter whom the automation's trigger fired for."""
    if automation.trigger == T.JOINED_LIST:
        return enter_joined(automation, at)
    if automation.trigger == T.DATE:
        return sweep_dates(automation, at)
    return enter_pending(automation, at)


def leave_unmailable(automation: Automation, at: datetime) -> int:
    """Take out at once the contacts the automation may no longer mail (P21)."""
    # NOT EXISTS, not NOT IN: past `work_mem` (about 900,000 mailable contacts)
    # PostgreSQL cannot hash a NOT IN list and read it again for every enrolment (hours
    # at a million, bench/README.md); the anti-join takes seconds.
    mailable = Contact.objects.filter(
        contacts_q(Purpose.MARKETING, [automation.mailing_list_id]),
        account_id=automation.account_id,
        pk=OuterRef("contact_id"),
    )
    return (
        Enrolment.objects.filter(automation=automation, status=E.ACTIVE)
        .exclude(Exists(mailable))
        .update(status=E.LEFT, left_at=at, due_at=None, step=None)
    )


# Running the due steps -------------------------------------------------------------------


def _hold(automation_id: int) -> bool:
    """A share lock on the automation for this transaction (two schedulers share it): a
    change of its steps (services, FOR UPDATE) waits until the due steps taken are done.
    While a change holds it, its due steps are left for the next pass (False): never
    run on steps that are being changed, and never a wait that could deadlock."""
    if connection.vendor != "postgresql":
        return True  # SQLite: one writer at a time
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Automation._meta.db_table} WHERE id = %s FOR SHARE SKIP LOCKED",  # noqa: S608
            [automation_id],
        )
        return cursor.fetchone() is not None


def _met(step: Step, contact_ids: list[int]) -> set[int]:
    """The contacts for whom the condition holds (one statement)."""
    contacts = Contact.objects.filter(pk__in=contact_ids)
    key, value = step.key, step.value
    if step.test == Step.Test.EQUALS:
        rows = contacts.filter(attributes__has_key=key).values_list("pk", "attributes")
        return {pk for pk, attrs in rows if str(attrs.get(key, "")).strip() == value.strip()}
    if step.test == Step.Test.CONTAINS:
        rows = contacts.filter(attributes__has_key=key).values_list("pk", "attributes")
        return {pk for pk, attrs in rows if value.casefold() in str(attrs.get(key, "")).casefold()}
    if step.test == Step.Test.IS_SET:
        rows = contacts.filter(attributes__has_key=key).values_list("pk", "attributes")
        return {pk for pk, attrs in rows if attrs.get(key) not in (None, "", [])}
    if step.test == Step.Test.HAS_TAG:
        return set(contacts.filter(tags__has_element=key).values_list("pk", flat=True))
    if step.test in (Step.Test.OPENED, Step.Test.CLICKED) and step.about_id:
        about = Step.objects.filter(pk=step.about_id).values_list("campaign_id", flat=True).first()
        if about is None:
            return set()
        # Only what tracking recorded: per-contact tracking, for contacts who did not
        # object (P26); anyone else has not "opened" or "clicked" here.
        kind = (
            TrackingEvent.Kind.OPEN if step.test == Step.Test.OPENED else TrackingEvent.Kind.CLICK
        )
        return set(
            TrackingEvent.objects.filter(
                campaign_id=about, kind=kind, delivery__contact_id__in=contact_ids
            ).values_list("delivery__contact_id", flat=True)
        )
    return set()


def _requeue_for_new_round(campaign_id: int, contact_ids: list[int]) -> None:
    """A contact in a second round gets the step's message again: its one delivery
    (unique per campaign and contact) is queued again once the first is over."""
    if contact_ids:
        Delivery.objects.filter(
            campaign_id=campaign_id,
            contact_id__in=contact_ids,
            status__in=[Delivery.Status.SENT, Delivery.Status.SKIPPED, Delivery.Status.FAILED],
        ).update(
            status=Delivery.Status.QUEUED,
            attempts=0,
            claimed_by="",
            claimed_at=None,
            dispatched_at=None,
            not_before=None,
            sent_at=None,
            last_error="",
        )


def run_due(at: datetime, *, limit: int = CHUNK) -> tuple[int, int]:
    """Run one chunk of due steps (one transaction): (enrolments taken, steps run)."""
    with transaction.atomic():
        # The running automations' ids first, then the due rows in the index's order
        # (status, due_at), LIMIT stopping the scan: joined to the automations, the
        # planner read every due row, sorted them and kept `limit`, in each chunk
        # (100,000 due: 0.5 s per chunk, quadratic overall; bench/README.md).
        running = Automation.objects.filter(status=Automation.Status.ACTIVE)
        due = list(
            Enrolment.objects.filter(
                status=E.ACTIVE,
                due_at__lte=at,
                automation_id__in=list(running.values_list("pk", flat=True)),
            )
            .order_by("due_at")
            .select_for_update(skip_locked=True)[:limit]
        )
        if not due:
            return 0, 0
        automations = Automation.objects.in_bulk({e.automation_id for e in due})
        by_automation: dict[int, list[Enrolment]] = defaultdict(list)
        for enrolment in due:
            by_automation[enrolment.automation_id].append(enrolment)
        runs: list[StepRun] = []
        campaigns: set[int] = set()
        taken: list[Enrolment] = []
        for automation_id, enrolments in by_automation.items():
            if _hold(automation_id):
                taken += enrolments
                runs += _run_automation(automations[automation_id], enrolments, at, campaigns)
        StepRun.objects.bulk_create(runs, ignore_conflicts=True)
        _save_moves(taken)
        for campaign_id in sorted(campaigns):
            jobs.enqueue(DISPATCH, campaign_id)
    return len(taken), len(runs)


def _run_automation(
    automation: Automation, enrolments: list[Enrolment], at: datetime, campaigns: set[int]
) -> list[StepRun]:
    """Run the due steps of one automation's enrolments (in the caller's transaction)."""
    steps = _steps(automation.pk)
    by_id = {step.pk: step for step in steps}
    after = {step.pk: steps[n + 1] if n + 1 < len(steps) else None for n, step in enumerate(steps)}
    zone = account_zone(automation.account_id)
    may = mailable_ids(
        Purpose.MARKETING, [e.contact_id for e in enrolments], [automation.mailing_list_id]
    )
    # A step's message the customer cancelled (or paused) on its campaign page takes
    # nobody: the automation pauses, its contacts wait where they are.
    open_ = set(
        Campaign.objects.filter(
            pk__in=[s.campaign_id for s in steps if s.campaign_id],
            status=Campaign.Status.SENDING,
        ).values_list("pk", flat=True)
    )
    reaching: dict[int, list[Enrolment]] = defaultdict(list)
    for enrolment in enrolments:
        if enrolment.contact_id not in may:
            enrolment.status, enrolment.left_at, enrolment.due_at = E.LEFT, at, None
            enrolment.step = None
        elif enrolment.step_id not in by_id:
            enrolment.status, enrolment.due_at, enrolment.step = E.DONE, None, None
        else:
            reaching[enrolment.step_id].append(enrolment)

    def move(enrolment: Enrolment, target: Step | None) -> None:
        if target is None:
            enrolment.status, enrolment.due_at, enrolment.step = E.DONE, None, None
        else:
            enrolment.step, enrolment.arrived_at = target, at
            enrolment.due_at = due_on_arrival(target, at, zone)

    runs: list[StepRun] = []
    for step_id, waiting in reaching.items():
        step = by_id[step_id]
        ids = [e.contact_id for e in waiting]
        done = waiting
        if step.kind == K.SEND:
            if step.campaign_id not in open_:
                # Audited, as the customer's own pause; paused already: nothing to do.
                with contextlib.suppress(services.AutomationError):
                    services.pause(automation, by=None, reason=STEP_NOT_SENDING)
                for enrolment in waiting:
                    enrolment.due_at = at + WAIT_FOR_CREDITS
                continue
            # Each message is paid when it is added; those the credits do not cover
            # wait, due, for the next pass (billing.credits).
            assert step.campaign_id is not None
            paid = credits.spend_for_step(automation.account, step.campaign_id, len(waiting))
            for enrolment in waiting[paid:]:
                enrolment.due_at = at + WAIT_FOR_CREDITS
            done = waiting[:paid]
            _requeue_for_new_round(step.campaign_id, [e.contact_id for e in done if e.round > 1])
            Delivery.objects.bulk_create(
                [Delivery(campaign_id=step.campaign_id, contact_id=e.contact_id) for e in done],
                ignore_conflicts=True,
            )
            if done:
                campaigns.add(step.campaign_id)
        elif step.kind == K.ADD_TAG:
            bulk.add_tag(Contact.objects.filter(pk__in=ids), step.tag)
        elif step.kind == K.REMOVE_TAG:
            bulk.remove_tag(Contact.objects.filter(pk__in=ids), step.tag)
        elif step.kind == K.ADD_TO_LIST and step.target_list is not None:
            bulk.add_to_list(
                Contact.objects.filter(pk__in=ids),
                step.target_list,
                note=f"added by the automation “{automation.name}” (step {step.position + 1})",
            )
        elif step.kind == K.REMOVE_FROM_LIST and step.target_list is not None:
            bulk.remove_from_list(Contact.objects.filter(pk__in=ids), step.target_list)
        met: set[int] = set()
        if step.kind == K.CONDITION:
            met = _met(step, ids)
        # When it ran, really: the record of what happened (the webhooks' scan reads it
        # by the real time); `at`, the test clock's in development, decides what is due.
        ran = timezone.now()
        for enrolment in done:
            runs.append(
                StepRun(
                    step=step, contact_id=enrolment.contact_id, round=enrolment.round, ran_at=ran
                )
            )
            if step.kind == K.LEAVE or (
                step.kind == K.CONDITION
                and enrolment.contact_id not in met
                and not step.otherwise_id
            ):
                enrolment.status, enrolment.due_at, enrolment.step = E.EXITED, None, None
                enrolment.left_at = at
            elif step.kind == K.CONDITION and enrolment.contact_id not in met:
                move(enrolment, by_id.get(step.otherwise_id or 0))
            else:
                move(enrolment, after[step.pk])
    return runs


def _save_moves(enrolments: list[Enrolment]) -> None:
    """Write the chunk's new status, step, arrival, due_at and left_at in one UPDATE ...
    FROM (VALUES ...). Django's bulk_update builds a CASE of one branch per row for each
    field: 1.5 to 3 s of Python for 500 rows, and PostgreSQL tests the branches row by
    row (bench/README.md, automations)."""
    if not enrolments:
        return
    fields = ["status", "step", "arrived_at", "due_at", "left_at"]
    if connection.vendor != "postgresql":  # the one-command local run: small accounts
        Enrolment.objects.bulk_update(enrolments, fields)
        return
    table = Enrolment._meta.db_table
    rows = ", ".join(
        ["(%s, %s, %s::bigint, %s::timestamptz, %s::timestamptz, %s::timestamptz)"]
        * len(enrolments)
    )
    params: list[Any] = []
    for e in enrolments:
        params += [e.pk, e.status, e.step_id, e.arrived_at, e.due_at, e.left_at]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS e SET status = v.status, step_id = v.step_id,"  # noqa: S608
            " arrived_at = v.arrived_at, due_at = v.due_at, left_at = v.left_at"
            f" FROM (VALUES {rows}) AS v(id, status, step_id, arrived_at, due_at, left_at)"
            " WHERE e.id = v.id",
            params,
        )


def run(at: datetime | None = None) -> Run:
    """One pass of the scheduler: enter, leave, then every due step."""
    at = at or clock.now()
    outcome = Run()
    for automation in Automation.objects.filter(status=Automation.Status.ACTIVE):
        outcome.entered += enter(automation, at)
    for automation in Automation.objects.filter(status__in=LISTENING):
        outcome.left += leave_unmailable(automation, at)
    while True:
        taken, done = run_due(at)
        outcome.steps += done
        if not taken:
            break
    return outcome


def step_counts(automation: Automation) -> list[tuple[Step, int, int]]:
    """Each step, in order, with the contacts waiting for it now and the times it was
    done (every round)."""
    waiting = dict(
        Enrolment.objects.filter(automation=automation, status=E.ACTIVE)
        .values("step")
        .annotate(n=Count("pk"))
        .values_list("step", "n")
    )
    steps = (
        Step.objects.filter(automation=automation)
        .select_related("campaign", "target_list", "about", "otherwise")
        .annotate(n=Count("runs"))
        .order_by("position")
    )
    return [(step, waiting.get(step.pk, 0), step.n) for step in steps]
