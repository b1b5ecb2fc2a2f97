"""Benchmark: the automations' scheduler and engine on an account of 1,000,000 contacts
all enrolled in a three-step automation, 100,000 of them due at once.

    python bench/run.py automation [--size N] [--workers W]   (contacts, default 1,000,000)

Data (bench/automation_child.py, set-based SQL, made once and kept): N contacts on one
list; a running automation of three steps (wait 1 day; a condition, the contact's city
is set, true for all; the message); every contact enrolled: the first DUE (100,000, or a
tenth of N below a million) wait at the condition, due within the last hour (taking them
runs the condition, then the message, due at once); 30 % went through every step; the
others wait at one of the three steps, due within the next month; the steps passed are done
(`StepRun`) and their messages sent (`Delivery`).

Printed, each in a process of its own (its peak RSS its own):
- the scheduler's pass on the due steps: found and queued, one `run_steps` job per
  chunk on the broker (`engine.queue_due`), at a tenth of DUE and at DUE: time and peak
  RSS (memory flat);
- the floor: the bare writes of the same steps on the same rows (their `StepRun` and
  `Delivery` rows inserted and the enrolments updated by plain `INSERT ... SELECT` and
  `UPDATE` statements, one transaction, its commit);
- the same steps run in one process (`engine.run_all_due`: every chunk's work, one
  after the other, up to the deliveries queued), against the floor: what the
  scheduler did itself before it handed the chunks to the workers;
- the workers: Celery workers (`--pool solo`, like the send benchmark) take the queued
  jobs, run the steps (time from the first step run to no step due, against the floor)
  and send the DUE messages to an SMTP sink (messages per second);
- nothing due: the due query's time (one `queue_due`, median of 9) and its plan, and a
  whole pass of the scheduler (enter, leave, due) on the million, with the leaving
  alone: the minute's (the contacts the triggers wrote a `Recheck` for) and the hourly
  check of every contact.
Last line `automation due_ms=M`: finding and queueing the DUE due steps (the
scheduler's pass). Goals: under 2,000 ms; under 50 ms when nothing is due; memory flat.

BENCH_DATABASE_URL (default tidings_bench_automation on 127.0.0.1, created and migrated
when missing); the broker is BENCH_BROKER_URL, else REDIS_URL, and it is EMPTIED first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis
from send_campaign import free_port, peak_rss_mb, start_sink, start_workers

HERE = Path(__file__).resolve().parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/tidings_bench_automation"
DUE = 100_000
DUE_GOAL_MS = 2000
IDLE_GOAL_MS = 50


def _child(env: dict[str, str], *args: object) -> dict:
    proc = subprocess.run(
        [sys.executable, str(HERE / "automation_child.py"), *map(str, args)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _progress(url: str, campaign_id: int) -> tuple[int, int, float, float]:
    """The step's messages of today: (queued or being sent, sent, first and last sent
    time in Unix seconds)."""
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT status, count(*), extract(epoch FROM min(sent_at)),"
            " extract(epoch FROM max(sent_at)) FROM sending_delivery WHERE campaign_id = %s"
            " AND created_at > now() - interval '1 day' GROUP BY status",
            [campaign_id],
        ).fetchall()
    counts = {status: n for status, n, _first, _last in rows}
    first = min((float(f) for *_, f, _l in rows if f is not None), default=0.0)
    last = max((float(la) for *_, la in rows if la is not None), default=0.0)
    return counts.get("queued", 0) + counts.get("sending", 0), counts.get("sent", 0), first, last


def _steps_progress(url: str, queued: dict, since: float) -> tuple[int, float | None]:
    """(enrolments still due, when the first step of this run ran, Unix seconds)."""
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        (due,) = conn.execute(
            "SELECT count(*) FROM automations_enrolment WHERE automation_id = %s"
            " AND status = 'active' AND due_at <= now()",
            [queued["automation"]],
        ).fetchone()
        (first,) = conn.execute(
            "SELECT extract(epoch FROM min(ran_at)) FROM automations_steprun"
            " WHERE step_id = %s AND ran_at >= to_timestamp(%s)",
            [queued["condition"], since],
        ).fetchone()
    return due, None if first is None else float(first)


def _work(env: dict[str, str], workers: int, queued: dict, due: int) -> dict:
    """Workers take the jobs the scheduler queued: they run the steps (each chunk's
    dispatch job queued at its commit), then send the step's messages."""
    url = env["BENCH_DATABASE_URL"]
    campaign_id = queued["campaign"]
    started = time.time()
    procs = start_workers(workers, env)
    steps_done = first_step = None
    try:
        while True:
            now = time.time()
            if steps_done is None:
                still, first_step = _steps_progress(url, queued, started)
                if not still:
                    steps_done = now
            left, sent, first, last = _progress(url, campaign_id)
            if steps_done is not None and not left:
                break
            if now - started > 3600:
                sys.exit(f"the step's messages were not sent within an hour ({sent:,} sent)")
            time.sleep(0.1 if steps_done is None else 0.5)
        memory = max(peak_rss_mb(p.pid) for p in procs)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait()
    # From the first message to the last (the workers' start-up left out), and from the
    # workers' start (a new process loads Tidings in 3 to 10 s here) to the last.
    return {
        "steps": steps_done - (first_step or started),
        "steps_from_start": steps_done - started,
        "sent": sent,
        "elapsed": last - first,
        "from_start": last - started,
        "memory": memory,
    }


def main(size: int | None, workers: int = 1) -> None:
    size = size or 1_000_000
    due = min(DUE, size // 10)
    small = max(1, due // 10)
    broker = os.environ.get("BENCH_BROKER_URL") or os.environ.get("REDIS_URL")
    if not broker:
        sys.exit("give the broker: BENCH_BROKER_URL or REDIS_URL (a Redis database it may empty)")
    env = dict(os.environ)
    env.setdefault("BENCH_DATABASE_URL", DEFAULT_DB)
    # Fixed, not a new one per process: the field keys live there, and the account's
    # encrypted settings are read by every child and worker, run after run.
    data_dir = Path(tempfile.gettempdir()) / "tidings-bench-automation"
    env.setdefault("TIDINGS_DATA_DIR", str(data_dir))
    env.update({
        "CELERY_BROKER_URL": broker, "TIDINGS_TASKS_EAGER": "false",
        "DJANGO_SETTINGS_MODULE": "tidings.settings", "TIDINGS_ALLOWED_RELAY_HOSTS": "127.0.0.1",
        "TIDINGS_FREE_CREDITS": "100000000", "DATABASE_URL": env["BENCH_DATABASE_URL"],
    })  # fmt: skip
    queue = redis.Redis.from_url(broker)
    port = free_port()
    sink, sink_name = start_sink(port)
    try:
        print(f"sink: {sink_name} on 127.0.0.1:{port}; {os.cpu_count()} cores; "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        loaded = _child(env, "load", size, due, port)
        print(f"{size:,} contacts enrolled in a three-step automation, {due:,} due: ready in "
              f"{loaded['seconds']:.1f} s")  # fmt: skip

        queue.flushdb()
        low = _child(env, "queue", size, due, small)
        print(f"the scheduler's pass, {small:,} contacts due: found and queued in "
              f"{low['seconds'] * 1000:,.0f} ms, peak RSS {low['peak_rss_mb']:.0f} MB")  # fmt: skip
        bare = _child(env, "floor", size, due)
        floor_ms = bare["seconds"] * 1000
        parts = ", ".join(f"{k} {v * 1000:,.0f} ms" for k, v in bare["parts"].items())
        print(
            f"floor: the bare writes of the same {2 * due:,} steps ({2 * due:,} StepRun and "
            f"{due:,} Delivery rows inserted, {due:,} enrolments updated, one transaction of "
            f"plain INSERT ... SELECT and UPDATE): {floor_ms:,.0f} ms ({parts})"
        )
        queue.flushdb()
        one = _child(env, "due", size, due, due)
        one_ms = one["seconds"] * 1000
        assert one["taken"] == due and one["steps"] == 2 * due, one
        print(
            f"the same steps run in one process (every chunk in turn, up to the deliveries "
            f"queued; what the pass did itself before it handed them to the workers): "
            f"{one_ms:,.0f} ms ({one['steps'] / one['seconds']:,.0f} steps/s; over the floor "
            f"x{one_ms / floor_ms:.2f}), peak RSS {one['peak_rss_mb']:.0f} MB"
        )
        queue.flushdb()
        full = _child(env, "queue", size, due, due)
        due_ms = full["seconds"] * 1000
        assert full["queued"] == due, full
        print(
            f"the scheduler's pass, {due:,} contacts due ({2 * due:,} steps: the condition, then "
            f"the message): found and queued in {due_ms:,.0f} ms ({queue.llen('celery'):,} jobs "
            f"on the broker; goal < {DUE_GOAL_MS:,} ms: ratio {due_ms / DUE_GOAL_MS:.2f}), "
            f"peak RSS {full['peak_rss_mb']:.0f} MB"
        )
        print(
            f"scheduler memory from {small:,} to {due:,} contacts due: "
            f"{low['peak_rss_mb']:.0f} -> {full['peak_rss_mb']:.0f} MB "
            f"(x{full['peak_rss_mb'] / low['peak_rss_mb']:.2f}; flat is x1)"
        )

        sent = _work(env, workers, full, due)
        steps_ms = sent["steps"] * 1000
        rate = 2 * due / sent["steps"]
        print(
            f"the workers run the steps, {workers} worker(s): {2 * due:,} steps in "
            f"{steps_ms:,.0f} ms from the first step run to none due ({rate:,.0f} steps/s; "
            f"over the floor x{steps_ms / floor_ms:.2f}; against one process "
            f"x{steps_ms / one_ms:.2f}), {sent['steps_from_start']:.1f} s from the workers' start"
        )
        rate = sent["sent"] / max(sent["elapsed"], 0.001)
        print(
            f"the step's messages through the engine, {workers} worker(s): {rate:,.0f} msg/s "
            f"({sent['sent']:,} of {due:,} sent in {sent['elapsed']:.1f} s from the first message "
            f"to the last, {sent['from_start']:.1f} s from the workers' start; no goal set: the "
            f"campaign path measured 906 msg/s with 2 workers on main, DESIGN.md: ratio "
            f"{rate / 906:.2f}), worker peak RSS {sent['memory']:.0f} MB"
        )

        quiet = _child(env, "idle", size)
        print(
            f"nothing due: the due query (the pass's, queue_due) {quiet['median_ms']:.1f} ms "
            f"(median of 9, min {quiet['min_ms']:.1f}, max {quiet['max_ms']:.1f}; "
            f"goal < {IDLE_GOAL_MS} ms: ratio {quiet['median_ms'] / IDLE_GOAL_MS:.2f})"
        )
        print("  its plan:")
        for line in quiet["plan"]:
            print(f"    {line}")
        parts = quiet["parts_ms"]

        def ms(value: float | None) -> str:
            return "stopped after 120 s" if value is None else f"{value:,.0f} ms"

        whole = parts["whole pass"]
        print(
            f"a whole pass with nothing due on {size:,} enrolments: {ms(whole)} (enter alone "
            f"{ms(parts['enter'])}, leave alone: the minute's, the contacts rechecked, "
            f"{ms(parts['leave, the rechecks'])}; every contact, hourly, "
            f"{ms(parts['leave, every contact'])}; goal < {IDLE_GOAL_MS} ms: "
            f"ratio {'> 2400' if whole is None else f'{whole / IDLE_GOAL_MS:.1f}'})"
        )
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"automation due_ms={due_ms:.0f}")
    finally:
        sink.terminate()
        sink.wait()


BENCHMARKS = {"automation": main}
