"""The automation benchmark's side in Django (bench/automation.py runs it as a child
process, so each measurement's peak RSS is its own): Django is configured on the bench
database, with a real broker (the scheduler's dispatch jobs go to Redis, not run here),
before anything of Tidings is imported.

    python bench/automation_child.py load N DUE PORT | queue N DUE K | due N DUE K
    | floor N DUE | idle N
    | counts N
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

os.environ["TIDINGS_TASKS_EAGER"] = "false"
# The bench's account has the credits its steps need (one per message).
os.environ.setdefault("TIDINGS_FREE_CREDITS", "100000000")
os.environ.setdefault("TIDINGS_ALLOWED_RELAY_HOSTS", "127.0.0.1")

import benchdb

benchdb.setup()

# Django is configured just above: the rest may be imported now.
from django.db import OperationalError, connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from tidings.accounts.models import Account  # noqa: E402
from tidings.audience.models import MailingList  # noqa: E402
from tidings.automations import engine, services  # noqa: E402
from tidings.automations.models import Automation, Step  # noqa: E402
from tidings.sending.models import Relay, SendingSettings  # noqa: E402

# The three steps: wait a day; a condition (the contact's city is set: all of
# them here, so everyone goes on); send the message. Contacts due wait at the condition,
# which moves them on to the message, due at once: finding and queueing them runs both.
CONDITION, SEND = 1, 2
# Share of the contacts who went through every step already; the others wait, at
# every position, for a step due within the next month.
DONE_SHARE = 0.3
# The automation's name once every row is loaded.
LOADED = "Welcome series (loaded)"
# Seconds a statement of a whole pass may take in the benchmark.
PASS_LIMIT = 120


def _name(n: int) -> str:
    return f"Automation bench {n}"


def _sql(statement: str, params: list[object]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def load(n: int, due: int, port: int) -> dict:
    """An account of `n` contacts on one list, all enrolled in a running three-step
    automation (set-based SQL: INSERT ... SELECT generate_series), with the steps they
    passed done (their StepRun and sent Delivery); made once and kept between runs."""
    t = time.perf_counter()
    account = Account.objects.filter(name=_name(n)).first()
    automation = Automation.objects.filter(account=account).first() if account else None
    if automation is None:
        if account:
            account.delete()
        automation = _make(n)
    if automation.name != LOADED:  # a load stopped half-way: its rows go, the rest stays
        steps = "SELECT id FROM automations_step WHERE automation_id = %s"
        campaigns = "SELECT campaign_id FROM automations_step WHERE automation_id = %s"
        _sql(f"DELETE FROM sending_delivery WHERE campaign_id IN ({campaigns})", [automation.pk])  # noqa: S608
        _sql(f"DELETE FROM automations_steprun WHERE step_id IN ({steps})", [automation.pk])  # noqa: S608
        _sql("DELETE FROM automations_enrolment WHERE automation_id = %s", [automation.pk])
        _enrol(automation, n, due)
        Automation.objects.filter(pk=automation.pk).update(name=LOADED)
    Relay.objects.filter(account=automation.account).update(port=port)
    return {"automation": automation.pk, "seconds": time.perf_counter() - t}


def _make(n: int) -> Automation:
    account = Account.objects.create(name=_name(n))
    SendingSettings.objects.create(account=account, postal_address="1 Bench Street, 1000 City")
    Relay.objects.create(
        account=account, name="sink", host="127.0.0.1", port=25, security="none",
        max_connections=16,
    )  # fmt: skip
    newsletter = MailingList.objects.create(account=account, name="Welcome")
    _sql(
        "INSERT INTO audience_contact (account_id, uuid, email, digest, name, status,"
        " attributes, tags, legal_basis, basis_at, source, soft_bounces, allow_tracking,"
        " allow_profiling, restriction_reason, created_at, updated_at) "
        "SELECT %s, gen_random_uuid(), 'person' || i || '@example.org',"
        " md5(i::text || '-' || %s), 'Person ' || i, 'active',"
        " jsonb_build_object('city', 'City ' || (i %% 100)), '[]'::jsonb, 'consent',"
        " now() - interval '60 days', 'import', 0, true, true, '',"
        " now() - interval '60 days', now() - interval '60 days' "
        "FROM generate_series(1, %s) AS i",
        [account.pk, account.pk, n],
    )
    _sql(
        "INSERT INTO audience_subscription (contact_id, mailing_list_id, status, created_at,"
        " confirmed_at) SELECT id, %s, 'confirmed', now() - interval '60 days',"
        " now() - interval '60 days' FROM audience_contact WHERE account_id = %s",
        [newsletter.pk, account.pk],
    )
    automation = services.create_automation(
        account, name="Welcome series", mailing_list=newsletter, by=None
    )
    K = Step.Kind
    services.add_step(automation, kind=K.WAIT, wait_amount=1, wait_unit="days", by=None)
    services.add_step(automation, kind=K.CONDITION, test="is_set", key="city", by=None)
    services.add_step(
        automation,
        kind=K.SEND,
        wait_days=0,
        subject="Welcome, {{ contact.first_name }}",
        from_email="news@news.example.org",
        body="<p>A message for {{ contact.name }}, from City Bench.</p>",
        by=None,
    )
    return services.start(automation, by=None)


def _enrol(automation: Automation, n: int, due: int) -> None:
    """Everyone enrolled 30 days ago; the first `due` contacts (by id) wait at the
    condition, due within the last hour; of the rest, the last DONE_SHARE went through
    every step and the others wait at one of the three steps, due within the next
    month."""
    done_from = int(n * (1 - DONE_SHARE))
    _sql(
        "INSERT INTO automations_enrolment (automation_id, contact_id, status, step_id,"
        " arrived_at, due_at, round, entered_at) "
        "SELECT %s, c.id, CASE WHEN rank > %s THEN 'done' ELSE 'active' END, s.id,"
        " now() - interval '1 day',"
        " CASE WHEN rank <= %s THEN now() - (rank %% 3600) * interval '1 second'"
        " WHEN rank > %s THEN NULL"
        " ELSE now() + interval '1 hour' + (rank %% 43200) * interval '1 minute' END,"
        " 1, now() - interval '30 days' "
        "FROM (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM audience_contact"
        " WHERE account_id = %s) c"
        " LEFT JOIN automations_step s ON s.automation_id = %s AND s.position ="
        " CASE WHEN rank <= %s THEN %s WHEN rank > %s THEN NULL ELSE rank %% 3 END",
        [automation.pk, done_from, due, done_from, automation.account_id, automation.pk,
         due, CONDITION, done_from],
    )  # fmt: skip
    # The steps each contact passed: done once, the message sent to those past it.
    passed = (
        "FROM automations_enrolment e LEFT JOIN automations_step w ON w.id = e.step_id"
        " JOIN automations_step s ON s.automation_id = e.automation_id"
        " AND s.position < COALESCE(w.position, 3)"
        " WHERE e.automation_id = %s"
    )
    _sql(
        "INSERT INTO automations_steprun (step_id, contact_id, round, ran_at)"
        f" SELECT s.id, e.contact_id, 1, now() - interval '10 days' {passed}",
        [automation.pk],
    )
    _sql(
        "INSERT INTO sending_delivery (campaign_id, contact_id, status, attempts, message_id,"
        " claimed_by, sent_at, created_at, last_error)"
        " SELECT s.campaign_id, e.contact_id, 'sent', 1, '', '', now() - interval '10 days',"
        f" now() - interval '10 days', '' {passed} AND s.campaign_id IS NOT NULL",
        [automation.pk],
    )
    for table in (
        "audience_contact", "audience_subscription", "automations_enrolment",
        "automations_steprun", "sending_delivery",
    ):  # fmt: skip
        _sql(f"VACUUM ANALYZE {table}", [])


def _automation(n: int) -> Automation:
    return Automation.objects.get(account__name=_name(n))


def reset(automation: Automation, due: int, due_now: int) -> None:
    """The first `due` contacts wait for the second step again, as loaded: the first
    `due_now` of them due within the last hour, the others tomorrow (their second step,
    its message and anything the last run queued undone)."""
    condition = Step.objects.get(automation=automation, position=CONDITION)
    send = Step.objects.get(automation=automation, position=SEND)
    group = "SELECT id FROM audience_contact WHERE account_id = %s ORDER BY id LIMIT %s"
    _sql(
        "UPDATE automations_enrolment e SET status = 'active', step_id = %s, left_at = NULL,"
        " due_at = CASE WHEN c.rank <= %s THEN now() - (c.rank %% 3600) * interval '1 second'"
        " ELSE now() + interval '1 day' END"
        " FROM (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM audience_contact"
        " WHERE account_id = %s ORDER BY id LIMIT %s) c"
        " WHERE e.automation_id = %s AND e.contact_id = c.id",
        [condition.pk, due_now, automation.account_id, due, automation.pk],
    )
    _sql(
        f"DELETE FROM automations_steprun WHERE step_id IN (%s, %s) AND contact_id IN ({group})",  # noqa: S608
        [condition.pk, send.pk, automation.account_id, due],
    )
    _sql(
        f"DELETE FROM sending_delivery WHERE campaign_id = %s AND contact_id IN ({group})",  # noqa: S608
        [send.campaign_id, automation.account_id, due],
    )
    for table in ("automations_enrolment", "automations_steprun", "sending_delivery"):
        _sql(f"VACUUM ANALYZE {table}", [])


def queue_due(n: int, due: int, due_now: int) -> dict:
    """The scheduler's work on `due_now` due steps: found and queued, one `run_steps`
    job per chunk on the broker (`engine.queue_due`, what its pass does)."""
    automation = _automation(n)
    reset(automation, due, due_now)
    now = timezone.now()
    t = time.perf_counter()
    queued = engine.queue_due(now)
    seconds = time.perf_counter() - t
    condition = Step.objects.get(automation=automation, position=CONDITION)
    return {
        "seconds": seconds,
        "queued": queued,
        "automation": automation.pk,
        "condition": condition.pk,
        "campaign": Step.objects.get(automation=automation, position=SEND).campaign_id,
        "peak_rss_mb": benchdb.peak_rss_mb(),
    }


def run_due(n: int, due: int, due_now: int) -> dict:
    """The due steps run in this one process, up to their deliveries queued and the
    dispatch jobs on the broker: `engine.run_all_due` (`run_due` until nothing is due,
    then one dispatch job per step's message): what the workers' jobs do, together."""
    automation = _automation(n)
    reset(automation, due, due_now)
    now = timezone.now()
    t = time.perf_counter()
    taken, steps = engine.run_all_due(now)
    seconds = time.perf_counter() - t
    campaign = Step.objects.get(automation=automation, position=SEND).campaign_id
    return {
        "seconds": seconds,
        "taken": taken,
        "steps": steps,
        "campaign": campaign,
        "peak_rss_mb": benchdb.peak_rss_mb(),
    }


def floor(n: int, due: int) -> dict:
    """The bare writes of the same due steps, on the same rows: the `due` contacts due
    (reset as for `run_due`), in one transaction, their two `StepRun` rows (the
    condition's, the message's), their `Delivery` and their enrolment done, each one
    plain `INSERT ... SELECT` or `UPDATE` of the due rows, then the commit (where
    PostgreSQL checks the deferred foreign keys). Undone by the next reset."""
    automation = _automation(n)
    reset(automation, due, due)
    condition = Step.objects.get(automation=automation, position=CONDITION)
    send = Step.objects.get(automation=automation, position=SEND)
    due_rows = "e.status = 'active' AND e.due_at <= now() AND e.automation_id = %s"
    parts: dict[str, float] = {}
    t = time.perf_counter()
    with transaction.atomic():
        for label, statement, params in (
            (
                "StepRun",
                "INSERT INTO automations_steprun (step_id, contact_id, round, ran_at)"  # noqa: S608
                " SELECT s.id, e.contact_id, e.round, now()"
                " FROM (VALUES (%s), (%s)) AS s(id), automations_enrolment e"
                f" WHERE {due_rows}",
                [condition.pk, send.pk, automation.pk],
            ),
            (
                "Delivery",
                "INSERT INTO sending_delivery (campaign_id, contact_id, status, attempts,"  # noqa: S608
                " message_id, claimed_by, created_at, last_error)"
                " SELECT %s, e.contact_id, 'queued', 0, '', '', now(), ''"
                f" FROM automations_enrolment e WHERE {due_rows}",
                [send.campaign_id, automation.pk],
            ),
            (
                "Enrolment",
                "UPDATE automations_enrolment e SET status = 'done', step_id = NULL,"  # noqa: S608
                f" due_at = NULL, arrived_at = now() WHERE {due_rows}",
                [automation.pk],
            ),
        ):
            started = time.perf_counter()
            _sql(statement, params)
            parts[label] = time.perf_counter() - started
        started = time.perf_counter()
    parts["commit"] = time.perf_counter() - started
    return {"seconds": time.perf_counter() - t, "parts": parts}


def idle(n: int) -> dict:
    """Nothing due: the scheduler's due query (one `queue_due`, finding nothing), median
    of 9, with its plan; then a whole pass of the scheduler (enter, leave, due)."""
    automation = _automation(n)
    now = timezone.now()
    times = []
    for _ in range(9):
        t = time.perf_counter()
        got = engine.queue_due(now)
        times.append((time.perf_counter() - t) * 1000)
        assert got == 0, f"{got} steps were due"
    # The plan of the due query the engine runs (captured, so it follows engine.py).
    with CaptureQueriesContext(connection) as queries:
        engine.queue_due(now)
    (sql,) = [q["sql"] for q in queries.captured_queries if '"due_at" <=' in q["sql"]]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = [row[0] for row in cursor.fetchall()]
    # Each statement of the passes below is stopped after PASS_LIMIT: at a million
    # enrolments, `leave_unmailable` planned a NOT IN over a materialised subquery (no
    # hash: the ids outgrow work_mem) and ran for hours.
    parts: dict[str, float | None] = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {PASS_LIMIT * 1000}")
    Automation.objects.filter(pk=automation.pk).update(leave_swept_at=None)
    for label, work in (
        ("enter", lambda: engine.enter(automation, timezone.now())),
        # The first, every contact against the rule (hourly); then the minute's.
        ("leave, every contact", lambda: engine.leave_unmailable(_automation(n), timezone.now())),
        ("leave, the rechecks", lambda: engine.leave_unmailable(_automation(n), timezone.now())),
        ("whole pass", lambda: engine.run(timezone.now())),
    ):
        t = time.perf_counter()
        try:
            work()
            parts[label] = (time.perf_counter() - t) * 1000
        except OperationalError:  # the statement timeout
            parts[label] = None
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "plan": plan,
        "parts_ms": parts,
        "peak_rss_mb": benchdb.peak_rss_mb(),
    }


def counts(campaign_id: int) -> dict:
    """The step's deliveries by status, and when the first and last were sent."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, count(*), extract(epoch FROM min(sent_at)),"
            " extract(epoch FROM max(sent_at)) FROM sending_delivery"
            " WHERE campaign_id = %s AND created_at > now() - interval '1 day' GROUP BY status",
            [campaign_id],
        )
        rows = cursor.fetchall()
    return {
        "statuses": {status: count for status, count, _lo, _hi in rows},
        "first": min((lo for *_, lo, _hi in rows if lo is not None), default=None),
        "last": max((hi for *_, hi in rows if hi is not None), default=None),
    }


if __name__ == "__main__":
    step, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    if step == "load":
        print(json.dumps(load(*args)))
    elif step == "queue":
        print(json.dumps(queue_due(*args)))
    elif step == "due":
        print(json.dumps(run_due(*args)))
    elif step == "floor":
        print(json.dumps(floor(*args)))
    elif step == "idle":
        print(json.dumps(idle(*args)))
    elif step == "counts":
        print(json.dumps(counts(*args)))
    else:
        sys.exit(f"unknown step {step!r}")
