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
   in every running or paused automation (P21): the contacts whose mailability may
   have changed (the `Recheck` rows database triggers wrote, automations.watch), and
   every contact hourly and while the account is not open. The engine checks the same
   rule again when it runs a step and when it claims each message, so nothing is sent
   in between.
3. **Queue the due steps.** The due enrolments are found by one indexed query
   (`enrolment_due`: status, due_at; no lock, nothing written) and handed to the
   workers, one job (`tasks.run_steps`) per chunk of an automation's due enrolments
   (`settings.AUTOMATIONS_CHUNK`, 25,000), oldest due first: the pass stays short
   whatever is due, one account's backlog does not hold up the others' entries and
   leaves, and the steps run on every worker at once.
4. **Run the due steps** (each job, `run_due` with its ids): its enrolments still due
   are locked (`skip_locked`: two jobs never take the same one; a job queued twice, or
   for rows another job moved on, does nothing), in one transaction, under the
   automation's share lock (`_hold`). A chunk is done set-based, a few statements per
   (automation, step) whatever the number of enrolments, the ids passed as one
   parameter (`_rows`: an array on PostgreSQL, a JSON text on SQLite, the one
   difference between the two): those the rule (`mailability.contacts_q`, compiled
   into the statement) no longer allows leave; each step's effect (`INSERT ... SELECT
   ... ON CONFLICT DO NOTHING` of its `Delivery` rows, the tag or list change through
   `audience.bulk`), its `StepRun` rows (unique per (step, contact, round), the same
   way; a condition's with its outcome, `met`), a condition evaluated in the database
   (in Python, on the contacts' attributes only, for equals and contains); a contact
   whose next step is due at once (after a condition, a message without a wait) runs it
   in the same chunk; then one `UPDATE` per outcome moves the enrolments on (to the step
   after, by identity, or the condition's other step; everyone arrives at `at`, so the
   next step's due time is one value). Effect, `StepRun` and move share the transaction,
   so a step runs at most once for a contact in a round, whatever runs twice. Messages
   are paid per step (`billing.credits.spend_for_step`; those not covered wait
   `WAIT_FOR_CREDITS`), and a step whose message is not sending pauses the automation.
   At the commit, each step's message that got deliveries is dispatched from the first
   of them (`after`: the dispatch reads this chunk's deliveries, not the campaign's).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from tidings.audience import bulk
from tidings.audience.mailability import contacts_q
from tidings.audience.models import Contact, Subscription
from tidings.automations import services
from tidings.automations.entry import entering
from tidings.automations.models import (
    Automation,
    Enrolment,
    PendingEntry,
    Recheck,
    Step,
    StepRun,
)
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
# Pending entries entered per transaction.
ENTRY_CHUNK = 2000
# How long contacts whose step the credits did not cover wait before the next try.
WAIT_FOR_CREDITS = timedelta(hours=1)
# The audit's reason when a step's message was cancelled (or paused) on its campaign page.
STEP_NOT_SENDING = "paused: a step's message is not sending"
# How often a date trigger's contacts are read again (the only read of an account's
# contacts: hourly, not every minute).
DATE_SWEEP = timedelta(hours=1)
# How often every active contact of an automation is checked against the rule (in
# between, only those the database triggers wrote a `Recheck` row for).
LEAVE_SWEEP = timedelta(hours=1)


@dataclass
class Run:
    entered: int = 0
    left: int = 0
    queued: int = 0  # due enrolments handed to the workers (`queue_due`)


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


_ENROLMENTS = _table(Enrolment)
_CONTACTS = _table(Contact)
_STEP_RUNS = _table(StepRun)
_DELIVERIES = _table(Delivery)


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
    """Take out at once the contacts the automation may no longer mail (P21): those
    whose mailability may have changed since the last pass (the `Recheck` rows the
    database triggers wrote, automations.watch), checked against the rule; every active
    contact hourly (`LEAVE_SWEEP`), and whenever the account is not open (its own state
    is not watched). Returns how many left."""
    swept = automation.leave_swept_at
    if not automation.account.may_process or swept is None or swept <= at - LEAVE_SWEEP:
        with transaction.atomic():
            # The rows deleted first: the sweep's statement, after, sees their changes
            # (each was committed with its change); one committed meanwhile stays.
            Recheck.objects.filter(automation=automation).delete()
            left = _leave(automation, at, None)
            Automation.objects.filter(pk=automation.pk).update(leave_swept_at=at)
        return left
    left = 0
    size = settings.AUTOMATIONS_CHUNK
    while True:
        # A chunk of rows read (and locked: two schedulers take each once), then their
        # contacts checked by a later statement, which sees every change a row was
        # written for (a list of a million unsubscribed at once: forty chunks).
        with transaction.atomic():
            rows = list(
                Recheck.objects.filter(automation=automation)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", "contact_id")[:size]
            )
            if rows:
                left += _leave(automation, at, sorted({contact for _, contact in rows}))
                Recheck.objects.filter(pk__in=_where_in([pk for pk, _ in rows])).delete()
        if len(rows) < size:
            return left


def _leave(automation: Automation, at: datetime, contact_ids: list[int] | None) -> int:
    """The active enrolments (of these contacts; of everyone when None) whose contact
    the rule no longer allows the automation's mail leave, in one statement."""
    # NOT EXISTS, not NOT IN: past `work_mem` (about 900,000 mailable contacts)
    # PostgreSQL cannot hash a NOT IN list and read it again for every enrolment (hours
    # at a million, bench/README.md); the anti-join takes seconds.
    mailable = Contact.objects.filter(
        contacts_q(Purpose.MARKETING, [automation.mailing_list_id]),
        account_id=automation.account_id,
        pk=OuterRef("contact_id"),
    )
    active = Enrolment.objects.filter(automation=automation, status=E.ACTIVE)
    if contact_ids is not None:
        active = active.filter(contact_id__in=_where_in(contact_ids))
    return active.exclude(Exists(mailable)).update(
        status=E.LEFT, left_at=at, due_at=None, step=None
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


def _rows(*columns: list[int]) -> tuple[str, list[Any]]:
    """A subquery of rows of integers, its columns `c0`, `c1`, ... (the lists, of one
    length), with one parameter per column on PostgreSQL (arrays) and one in all on
    SQLite (a JSON text): a chunk of 25,000 is no 25,000 parameters to convert and
    send. The one difference between the two databases in the statements below."""
    names = ", ".join(f"c{n}" for n in range(len(columns)))
    if connection.vendor == "postgresql":
        # Each array as the text of its literal, joined here: psycopg's adaptation of a
        # list of 25,000 ints, one by one, took 14 ms per list.
        arrays = ", ".join(["%s::bigint[]"] * len(columns))
        literals = ["{" + ",".join(map(str, column)) + "}" for column in columns]
        return f"SELECT {names} FROM unnest({arrays}) AS t({names})", literals  # noqa: S608
    if len(columns) == 1:
        return "SELECT value AS c0 FROM json_each(%s)", [json.dumps(columns[0])]
    picks = ", ".join(f"json_extract(value, '$[{n}]') AS c{n}" for n in range(len(columns)))
    rows = json.dumps(list(zip(*columns, strict=True)))
    return f"SELECT {picks} FROM json_each(%s)", [rows]  # noqa: S608


def _where_in(ids: list[int]) -> RawSQL:
    """For `pk__in=`: these ids, as one parameter (`_rows`)."""
    return RawSQL(*_rows(ids))  # noqa: S611 (the SQL is fixed, the ids a parameter)


def _sql(statement: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _is_set_sql(key: str) -> tuple[str, list[Any]]:
    """The attribute `key` of the contact row `c` is set: present, and neither null,
    "" nor [] (what `attrs.get(key) not in (None, "", [])` says in Python), spelled
    for each database."""
    if connection.vendor == "postgresql":
        return "(c.attributes -> %s) NOT IN ('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb)", [key]
    return (
        "EXISTS (SELECT 1 FROM json_each(c.attributes) AS a WHERE a.key = %s"
        " AND a.type <> 'null' AND NOT (a.type = 'text' AND a.atom = '')"
        " AND NOT (a.type = 'array' AND json_array_length(a.value) = 0))",
        [key],
    )


def _met(step: Step, contact_ids: list[int], rounds: list[int] | None = None) -> set[int]:
    """The contacts for whom the condition holds: one statement, evaluated in the
    database, but for an attribute's equality or content, whose text Python compares
    (`str()` of any JSON value, Unicode `strip()` and `casefold()`: the database's
    trimming and case folding differ), reading only the contacts that have it. Opened
    or clicked counts the message of the contact's round (`rounds`, in the order of
    `contact_ids`; the first when not given): an open of the first round's message does
    not meet the condition in the second."""
    contacts = Contact.objects.filter(pk__in=_where_in(contact_ids)).order_by()
    key, value = step.key, step.value
    if step.test == Step.Test.EQUALS:
        rows = contacts.filter(attributes__has_key=key).values_list("pk", "attributes")
        return {pk for pk, attrs in rows if str(attrs.get(key, "")).strip() == value.strip()}
    if step.test == Step.Test.CONTAINS:
        rows = contacts.filter(attributes__has_key=key).values_list("pk", "attributes")
        return {pk for pk, attrs in rows if value.casefold() in str(attrs.get(key, "")).casefold()}
    if step.test == Step.Test.IS_SET:
        among, params = _rows(contact_ids)
        is_set, set_params = _is_set_sql(key)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT c.id FROM {_CONTACTS} AS c WHERE c.id IN ({among}) AND {is_set}",  # noqa: S608
                [*params, *set_params],
            )
            return {row[0] for row in cursor.fetchall()}
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
        by_round: dict[int, list[int]] = defaultdict(list)
        for contact_id, round_ in zip(contact_ids, rounds or [1] * len(contact_ids), strict=True):
            by_round[round_].append(contact_id)
        met: set[int] = set()
        for round_, ids in by_round.items():
            # Since that round's message was queued (its StepRun; both times are real).
            this_round = StepRun.objects.filter(
                step_id=step.about_id,
                contact_id=OuterRef("delivery__contact_id"),
                round=round_,
                ran_at__lte=OuterRef("at"),
            )
            met |= set(
                TrackingEvent.objects.filter(
                    Exists(this_round),
                    campaign_id=about,
                    kind=kind,
                    delivery__contact_id__in=_where_in(ids),
                ).values_list("delivery__contact_id", flat=True)
            )
        return met
    return set()


def _requeue_for_new_round(campaign_id: int, contact_ids: list[int]) -> int:
    """A contact in a second round gets the step's message again: its one delivery
    (unique per campaign and contact) is queued again once the first is over. Returns
    the deliveries queued again."""
    if not contact_ids:
        return 0
    return Delivery.objects.filter(
        campaign_id=campaign_id,
        contact_id__in=_where_in(contact_ids),
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


@dataclass(slots=True)
class _Due:
    """A due enrolment taken: the few values the statements need (no model built), and
    what its chunk changes (`moves`: the fields to write, None while it has not moved)."""

    id: int
    automation_id: int
    step_id: int | None
    contact_id: int
    round: int
    moves: tuple[tuple[str, Any], ...] | None = None


STEPS = "tidings.automations.tasks.run_steps"


def _running() -> list[int]:
    """The running automations' ids, read first: joined to them, the due query read,
    sorted and lock-filtered every due row (bench/README.md)."""
    return list(
        Automation.objects.filter(status=Automation.Status.ACTIVE).values_list("pk", flat=True)
    )


def queue_due(at: datetime) -> int:
    """Hand the due steps to the workers: the running automations' due enrolments (one
    indexed query, oldest due first; nothing locked, nothing written), one `run_steps`
    job per chunk of an automation's (`settings.AUTOMATIONS_CHUNK`). Returns the due
    enrolments queued. A job queued twice (this pass again before the first job ran)
    finds its rows moved on or locked and does nothing: `run_due` takes only what is
    still due."""
    running = _running()
    if not running:
        return 0
    chunks = _due_chunks(at, running, settings.AUTOMATIONS_CHUNK)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # An eager job runs here and now, moving the rows the scan is reading.
        chunks = iter(list(chunks))
    queued = 0
    moment = at.isoformat()
    for ids in chunks:
        jobs.send_now(STEPS, ids, moment)
        queued += len(ids)
    return queued


def _due_chunks(at: datetime, running: list[int], size: int) -> Iterator[list[int]]:
    """The due enrolments' ids, `size` at most per list, each list one automation's."""
    pending: dict[int, list[int]] = defaultdict(list)
    due = (
        Enrolment.objects.filter(status=E.ACTIVE, due_at__lte=at, automation_id__in=running)
        .order_by("due_at")
        .values_list("automation_id", "pk")
        .iterator(chunk_size=size)
    )
    for automation_id, pk in due:
        ids = pending[automation_id]
        ids.append(pk)
        if len(ids) == size:
            yield ids
            pending[automation_id] = []
    yield from (ids for ids in pending.values() if ids)


def run_due(
    at: datetime,
    *,
    limit: int | None = None,
    ids: list[int] | None = None,
    campaigns: dict[int, int] | None = None,
) -> tuple[int, int]:
    """Run one chunk of due steps (one transaction): (enrolments taken, steps run). A
    chunk is the enrolments `ids` that are still due (a `run_steps` job's), else the
    first `limit` due, by default `settings.AUTOMATIONS_CHUNK` (25,000).

    The dispatch job of each step's message that got deliveries is queued at the
    commit, from the first of them; or, when `campaigns` is given, the message and its
    first delivery's id are put there for the caller to dispatch once for a whole pass
    (`run_all_due`)."""
    queued: dict[int, int] = {}
    with transaction.atomic():
        # The running automations' ids first, then the due rows in the index's order
        # (status, due_at), LIMIT stopping the scan: joined to the automations, the
        # planner read every due row, sorted them and kept `limit`, in each chunk
        # (100,000 due: 0.5 s per chunk, quadratic overall; bench/README.md).
        rows = Enrolment.objects.filter(
            status=E.ACTIVE, due_at__lte=at, automation_id__in=_running()
        )
        if ids is not None:
            rows = rows.filter(pk__in=_where_in(ids))
        else:
            rows = rows.order_by("due_at")[: limit or settings.AUTOMATIONS_CHUNK]
        due = [
            _Due(*row)
            for row in rows.select_for_update(skip_locked=True).values_list(
                "pk", "automation_id", "step_id", "contact_id", "round"
            )
        ]
        if not due:
            return 0, 0
        by_automation: dict[int, list[_Due]] = defaultdict(list)
        for enrolment in due:
            by_automation[enrolment.automation_id].append(enrolment)
        automations = Automation.objects.select_related("account").in_bulk(list(by_automation))
        taken = done = 0
        for automation_id, enrolments in by_automation.items():
            if _hold(automation_id):
                taken += len(enrolments)
                done += _run_automation(automations[automation_id], enrolments, at, queued)
                _save_moves(enrolments)
        if campaigns is None:
            for campaign_id, first in sorted(queued.items()):
                jobs.enqueue(DISPATCH, campaign_id, after=first - 1)
    if campaigns is not None:
        for campaign_id, first in queued.items():
            campaigns[campaign_id] = min(first, campaigns.get(campaign_id, first))
    return taken, done


def run_all_due(at: datetime, *, limit: int | None = None) -> tuple[int, int]:
    """Run every due step in this process, chunk after chunk, then queue one dispatch
    job per step's message that got deliveries: (enrolments taken, steps run). The
    scheduler hands them to the workers instead (`queue_due`); this is the whole work
    in one process (tests, the benchmark's comparison). A pass stopped half-way leaves
    its chunks' deliveries queued without a job: the engine's recovery dispatches them
    within a minute (sending.engine.recover_stalled)."""
    campaigns: dict[int, int] = {}
    taken = done = 0
    while True:
        got, ran = run_due(at, limit=limit, campaigns=campaigns)
        taken, done = taken + got, done + ran
        if not got:
            break
    for campaign_id, first in sorted(campaigns.items()):
        jobs.enqueue(DISPATCH, campaign_id, after=first - 1)
    return taken, done


def _run_automation(
    automation: Automation, enrolments: list[_Due], at: datetime, campaigns: dict[int, int]
) -> int:
    """Run the due steps of one automation's enrolments (in the caller's transaction),
    a few statements per step whatever the number of enrolments; a contact whose next
    step is due at once (a condition's, a message without a wait) runs it in the same
    chunk, as the next chunk would have. Returns the steps run; each enrolment's
    `moves` says what to write (`_save_moves`)."""
    steps = _steps(automation.pk)
    by_id = {step.pk: step for step in steps}
    after = {step.pk: steps[n + 1] if n + 1 < len(steps) else None for n, step in enumerate(steps)}
    zone = account_zone(automation.account_id)
    # Those who may no longer get the automation's mail leave (the rule itself,
    # audience.mailability.contacts_q, compiled into the statement).
    mailable = set(
        Contact.objects.filter(
            contacts_q(Purpose.MARKETING, [automation.mailing_list_id]),
            account_id=automation.account_id,
            pk__in=_where_in([e.contact_id for e in enrolments]),
        )
        .order_by()
        .values_list("pk", flat=True)
    )
    # A step's message the customer cancelled (or paused) on its campaign page takes
    # nobody: the automation pauses, its contacts wait where they are.
    open_ = set(
        Campaign.objects.filter(
            pk__in=[s.campaign_id for s in steps if s.campaign_id],
            status=Campaign.Status.SENDING,
        ).values_list("pk", flat=True)
    )
    reaching: dict[int, list[_Due]] = defaultdict(list)
    for enrolment in enrolments:
        if enrolment.contact_id not in mailable:
            enrolment.moves = _out(E.LEFT, at)
        elif enrolment.step_id not in by_id:  # its step was removed, and none after it
            enrolment.moves = _out(E.DONE, None)
        else:
            reaching[enrolment.step_id].append(enrolment)
    done = 0
    while reaching:  # step after step, in order: a move goes to a later step
        step = min((by_id[pk] for pk in reaching), key=lambda s: s.position)
        waiting = reaching.pop(step.pk)
        for target, group in _run_step(
            automation, step, waiting, at, after[step.pk], open_, campaigns
        ).items():
            # Where the group goes, worked out once for all of it.
            if not group:
                continue
            done += len(group)
            if target is None:
                moves = _out(E.DONE, None)
            elif target == -1:
                moves = _out(E.EXITED, at)
            else:
                arriving = by_id[target]
                due_at = due_on_arrival(arriving, at, zone)
                moves = (("step_id", target), ("arrived_at", at), ("due_at", due_at))
                if due_at <= at and arriving.position > step.position:
                    reaching[target].extend(group)
            for enrolment in group:
                enrolment.moves = moves
    return done


def _out(status: str, left_at: datetime | None) -> tuple[tuple[str, Any], ...]:
    return (("status", status), ("step_id", None), ("due_at", None), ("left_at", left_at))


def _run_step(
    automation: Automation,
    step: Step,
    waiting: list[_Due],
    at: datetime,
    next_step: Step | None,
    open_: set[int],
    campaigns: dict[int, int],
) -> dict[int | None, list[_Due]]:
    """One step for these enrolments of it, set-based: its effect (the deliveries with
    `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, the tag or list change) and its
    `StepRun` rows, the same way (a condition is evaluated first: its rows say whether
    it was met). Returns the enrolments whose step was done by where they go: a step's
    id, None (done) or -1 (exit)."""
    done = waiting
    if step.kind == K.SEND:
        if step.campaign_id not in open_:
            # Audited, as the customer's own pause; paused already: nothing to do.
            with contextlib.suppress(services.AutomationError):
                services.pause(automation, by=None, reason=STEP_NOT_SENDING)
            _wait(waiting, at)
            return {}
        # Each message is paid when it is added; those the credits do not cover
        # wait, due, for the next pass (billing.credits).
        assert step.campaign_id is not None
        paid = credits.spend_for_step(automation.account, step.campaign_id, len(waiting))
        _wait(waiting[paid:], at)
        done = waiting[:paid]
        if not done:
            return {}
        again = _requeue_for_new_round(
            step.campaign_id, [e.contact_id for e in done if e.round > 1]
        )
        rows, params = _rows([e.contact_id for e in done])
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_DELIVERIES} (campaign_id, contact_id, status, attempts,"  # noqa: S608
                " message_id, claimed_by, created_at, last_error)"
                f" SELECT %s, t.c0, %s, 0, '', '', %s, '' FROM ({rows}) AS t WHERE true"
                " ON CONFLICT DO NOTHING RETURNING id",
                [step.campaign_id, Delivery.Status.QUEUED, _when(timezone.now()), *params],
            )
            added = [pk for (pk,) in cursor.fetchall()]
        if added or again:  # dispatched from the first (from the start: queued again)
            first = 1 if again else min(added)
            campaigns[step.campaign_id] = min(first, campaigns.get(step.campaign_id, first))
    contact_ids = [e.contact_id for e in done]
    contacts = Contact.objects.filter(pk__in=_where_in(contact_ids))
    if step.kind == K.ADD_TAG:
        bulk.add_tag(contacts, step.tag)
    elif step.kind == K.REMOVE_TAG:
        bulk.remove_tag(contacts, step.tag)
    elif step.kind == K.ADD_TO_LIST and step.target_list is not None:
        bulk.add_to_list(
            contacts,
            step.target_list,
            note=f"added by the automation “{automation.name}” (step {step.position + 1})",
        )
    elif step.kind == K.REMOVE_FROM_LIST and step.target_list is not None:
        bulk.remove_from_list(contacts, step.target_list)
    met = _met(step, contact_ids, [e.round for e in done]) if step.kind == K.CONDITION else None
    _record(step, done, met)
    # Where each goes: the step after, or (a condition not met) its other step, or out.
    onward = next_step.pk if next_step else None
    if step.kind == K.LEAVE:
        return {-1: done}
    if met is not None:
        split: dict[int | None, list[_Due]] = {onward: [], step.otherwise_id or -1: []}
        for e in done:
            split[onward if e.contact_id in met else step.otherwise_id or -1].append(e)
        return split
    return {onward: done}


def _record(step: Step, done: list[_Due], met: set[int] | None) -> None:
    """The step's `StepRun` rows, one statement: for a condition (`met` given) with its
    outcome for each contact, a third column of the rows (1 met, 0 not), else NULL.
    When it ran, really: the record of what happened (the webhooks' scan reads it by
    the real time); `at`, the test clock's in development, decides what is due."""
    columns = [[e.contact_id for e in done], [e.round for e in done]]
    outcome = "NULL"
    if met is not None:
        columns.append([int(e.contact_id in met) for e in done])
        outcome = "t.c2 <> 0"  # a boolean on PostgreSQL (bigint has no cast to it)
    rows, params = _rows(*columns)
    _sql(
        f"INSERT INTO {_STEP_RUNS} (step_id, contact_id, round, ran_at, met)"  # noqa: S608
        f" SELECT %s, t.c0, t.c1, %s, {outcome} FROM ({rows}) AS t WHERE true"
        " ON CONFLICT DO NOTHING",
        [step.pk, _when(timezone.now()), *params],
    )


def _wait(enrolments: list[_Due], at: datetime) -> None:
    """These wait where they are (credits, a paused message) until the next try."""
    for enrolment in enrolments:
        moves = dict(enrolment.moves or ()) | {"due_at": at + WAIT_FOR_CREDITS}
        enrolment.moves = tuple(moves.items())


def _save_moves(enrolments: list[_Due]) -> None:
    """Write where the chunk's enrolments went: one UPDATE per outcome (the fields and
    values written, the same for the whole set: everyone arrives at `at`, so the next
    step's due time is one value), each over the ids as one parameter."""
    outcomes: dict[tuple[tuple[str, Any], ...], list[int]] = defaultdict(list)
    for enrolment in enrolments:
        if enrolment.moves:
            outcomes[enrolment.moves].append(enrolment.id)
    for fields, ids in outcomes.items():
        Enrolment.objects.filter(pk__in=_where_in(ids)).update(**dict(fields))


def _when(moment: datetime) -> Any:
    """A moment as the database takes it in a statement written by hand."""
    return connection.ops.adapt_datetimefield_value(moment)


def run(at: datetime | None = None) -> Run:
    """One pass of the scheduler: enter, leave, then the due steps to the workers."""
    at = at or clock.now()
    outcome = Run()
    for automation in Automation.objects.filter(status=Automation.Status.ACTIVE):
        outcome.entered += enter(automation, at)
    for automation in Automation.objects.filter(status__in=LISTENING).select_related("account"):
        outcome.left += leave_unmailable(automation, at)
    outcome.queued = queue_due(at)
    return outcome


def step_counts(automation: Automation) -> list[tuple[Step, int, int]]:
    """Each step, in order, with the contacts waiting for it now and the times it was
    done (every round); a condition also with the times it was met and not met
    (`step.met`, `step.not_met`: its runs from before the outcome was recorded are in
    neither)."""
    waiting = dict(
        Enrolment.objects.filter(automation=automation, status=E.ACTIVE)
        .values("step")
        .annotate(n=Count("pk"))
        .values_list("step", "n")
    )
    steps = (
        Step.objects.filter(automation=automation)
        .select_related("campaign", "target_list", "about__campaign", "otherwise")
        .annotate(
            n=Count("runs"),
            met=Count("runs", filter=Q(runs__met=True)),
            not_met=Count("runs", filter=Q(runs__met=False)),
        )
        .order_by("position")
    )
    return [(step, waiting.get(step.pk, 0), step.n) for step in steps]
