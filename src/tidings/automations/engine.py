"""The automations' scheduler (beat, every minute; `run` is idempotent).

1. **Enter.** The active automations' new subscribers (confirmed on the list since the
   automation started, by any path: a form, an import, the API, a bulk action) get an
   `Enrolment`, unique per (automation, contact): nobody enters twice.
2. **Leave.** An active enrolment whose contact may no longer get the automation's
   marketing mail (`audience.mailability`: unsubscribed, bounced, complained, objected,
   restricted, erased, left the list, the account closed or restricted) leaves at once,
   every automation together (P21). The engine checks the same rule again when it
   claims each message, so nothing is sent in between.
3. **Run the due steps.** The due enrolments are found by one indexed query
   (`enrolment_due`: status, due_at), locked (`skip_locked`: two schedulers never take
   the same row) and, in the same transaction, each gets its `StepRun` (unique per
   (step, contact)) and one queued `sending.Delivery` of the step's message (unique per
   (campaign, contact)), and moves to the next step. A scheduler killed mid-way
   commits all of that or none of it; a second run finds nothing due twice. The
   deliveries go out through the campaign engine (`sending.dispatcher`), after the
   commit. Each message is paid with a credit when it is added (an account on a plan
   pays none); contacts the balance does not cover try again an hour later.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import Coalesce

from tidings.audience.mailability import contacts_q, mailable_ids
from tidings.audience.models import Contact, Subscription
from tidings.automations import services
from tidings.automations.models import Automation, Enrolment, Step, StepRun
from tidings.billing import credits
from tidings.campaigns.models import Campaign
from tidings.core import clock, jobs
from tidings.core.mail import Purpose
from tidings.sending.dispatcher import DISPATCH
from tidings.sending.models import Delivery

E = Enrolment.Status
# Due enrolments taken per transaction.
CHUNK = 500
# How long contacts whose step the credits did not cover wait before the next try.
WAIT_FOR_CREDITS = timedelta(hours=1)
# The audit's reason when a step's message was cancelled (or paused) on its campaign page.
STEP_NOT_SENDING = "paused: a step's message is not sending"


@dataclass
class Run:
    entered: int = 0
    left: int = 0
    steps: int = 0


def _steps(automation_id: int) -> list[Step]:
    return list(Step.objects.filter(automation_id=automation_id).order_by("position"))


def enter(automation: Automation, now: datetime) -> int:
    """Enrol the list's subscribers who joined since the automation started."""
    steps = _steps(automation.pk)
    first_wait = timedelta(days=steps[0].wait_days) if steps else timedelta(0)
    joined = (
        Subscription.objects.filter(
            mailing_list_id=automation.mailing_list_id,
            status=Subscription.Status.CONFIRMED,
        )
        .annotate(joined=Coalesce("confirmed_at", "created_at"))
        .filter(joined__gte=automation.activated_at, joined__lte=now)
        .exclude(contact__automation_enrolments__automation=automation)
        .values_list("contact_id", "joined")
    )
    rows = [
        Enrolment(
            automation=automation, contact_id=contact_id, entered_at=at, due_at=at + first_wait
        )
        for contact_id, at in joined.iterator(chunk_size=2000)
    ]
    Enrolment.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return len(rows)


def leave_unmailable(automation: Automation, now: datetime) -> int:
    """Take out at once the contacts the automation may no longer mail (P21)."""
    mailable = Contact.objects.filter(
        contacts_q(Purpose.MARKETING, [automation.mailing_list_id]),
        account_id=automation.account_id,
    )
    return (
        Enrolment.objects.filter(automation=automation, status=E.ACTIVE)
        .exclude(contact__in=mailable)
        .update(status=E.LEFT, left_at=now, due_at=None)
    )


def run_due(now: datetime, *, limit: int = CHUNK) -> tuple[int, int]:
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
                due_at__lte=now,
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
        runs, deliveries, campaigns = [], [], set()
        for automation_id, enrolments in by_automation.items():
            steps = _steps(automation_id)
            automation = automations[automation_id]
            may = mailable_ids(
                Purpose.MARKETING, [e.contact_id for e in enrolments], [automation.mailing_list_id]
            )
            # A step's message the customer cancelled (or paused) on its campaign page
            # takes nobody: the automation pauses, its contacts wait where they are.
            open_ = set(
                Campaign.objects.filter(
                    pk__in=[s.campaign_id for s in steps], status=Campaign.Status.SENDING
                ).values_list("pk", flat=True)
            )
            reaching: dict[int, list[Enrolment]] = defaultdict(list)
            for enrolment in enrolments:
                if enrolment.contact_id not in may:
                    enrolment.status, enrolment.left_at, enrolment.due_at = E.LEFT, now, None
                elif enrolment.position >= len(steps):
                    enrolment.status, enrolment.due_at = E.DONE, None
                else:
                    reaching[enrolment.position].append(enrolment)
            for position, waiting in reaching.items():
                step = steps[position]
                if step.campaign_id not in open_:
                    # Audited, as the customer's own pause; paused already (another
                    # step of it, or by the customer meanwhile): nothing to do.
                    with contextlib.suppress(services.AutomationError):
                        services.pause(automation, by=None, reason=STEP_NOT_SENDING)
                    for enrolment in waiting:
                        enrolment.due_at = now + WAIT_FOR_CREDITS
                    continue
                # Each message is paid when it is added; those the credits do not
                # cover wait, due, for the next pass (billing.credits).
                paid = credits.spend_for_step(automation.account, step.campaign_id, len(waiting))
                for enrolment in waiting[paid:]:
                    # Not taken again in this pass, nor ahead of other accounts' due steps.
                    enrolment.due_at = now + WAIT_FOR_CREDITS
                for enrolment in waiting[:paid]:
                    runs.append(StepRun(step=step, contact_id=enrolment.contact_id, ran_at=now))
                    deliveries.append(
                        Delivery(campaign_id=step.campaign_id, contact_id=enrolment.contact_id)
                    )
                    campaigns.add(step.campaign_id)
                    enrolment.position += 1
                    if enrolment.position < len(steps):
                        wait = timedelta(days=steps[enrolment.position].wait_days)
                        enrolment.due_at = now + wait
                    else:
                        enrolment.status, enrolment.due_at = E.DONE, None
        StepRun.objects.bulk_create(runs, ignore_conflicts=True)
        Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        _save_moves(due)
        for campaign_id in sorted(campaigns):
            jobs.enqueue(DISPATCH, campaign_id)
    return len(due), len(runs)


def _save_moves(enrolments: list[Enrolment]) -> None:
    """Write the chunk's new status, position, due_at and left_at in one UPDATE ... FROM
    (VALUES ...). Django's bulk_update builds a CASE of one branch per row for each
    field: 1.5 to 3 s of Python for 500 rows, and PostgreSQL tests the branches row by
    row (bench/README.md, automations)."""
    if not enrolments:
        return
    if connection.vendor != "postgresql":  # the one-command local run: small accounts
        Enrolment.objects.bulk_update(enrolments, ["status", "position", "due_at", "left_at"])
        return
    table = Enrolment._meta.db_table
    rows = ", ".join(["(%s, %s, %s, %s::timestamptz, %s::timestamptz)"] * len(enrolments))
    params: list[Any] = []
    for e in enrolments:
        params += [e.pk, e.status, e.position, e.due_at, e.left_at]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS e SET status = v.status, position = v.position,"  # noqa: S608
            " due_at = v.due_at, left_at = v.left_at"
            f" FROM (VALUES {rows}) AS v(id, status, position, due_at, left_at)"
            " WHERE e.id = v.id",
            params,
        )


def run(now: datetime | None = None) -> Run:
    """One pass of the scheduler: enter, leave, then every due step."""
    now = now or clock.now()
    outcome = Run()
    for automation in Automation.objects.filter(status=Automation.Status.ACTIVE):
        outcome.entered += enter(automation, now)
        outcome.left += leave_unmailable(automation, now)
    while True:
        taken, done = run_due(now)
        outcome.steps += done
        if not taken:
            break
    return outcome


def step_counts(automation: Automation) -> list[tuple[Step, int, int]]:
    """Each step, in order, with the contacts waiting for it now and those it was done
    for (an enrolment's `position` is the index of the step it waits for)."""
    waiting = dict(
        Enrolment.objects.filter(automation=automation, status=E.ACTIVE)
        .values("position")
        .annotate(n=Count("pk"))
        .values_list("position", "n")
    )
    steps = (
        Step.objects.filter(automation=automation)
        .select_related("campaign")
        .annotate(n=Count("runs"))
        .order_by("position")
    )
    return [(step, waiting.get(index, 0), step.n) for index, step in enumerate(steps)]
