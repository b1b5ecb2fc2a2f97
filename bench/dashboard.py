"""Benchmark: the dashboard after login and a campaign's report, on an account of
1,000,000 contacts with a campaign of 100,000 deliveries.

    python bench/run.py dashboard [--size N]     (contacts, default 1,000,000)

Times, 9 times each, in a process of its own (bench/dashboard_child.py, the Django side),
median printed:
- the audience's growth over 30 and 90 days (`growth.daily`, from the maintained rows),
  beside what it replaces: counting the subscriptions by day (the same figures read from
  `created_at` and `unsubscribed_at`);
- the whole dashboard's figures (`dashboard.context`), with the campaign in "last
  campaigns";
- the campaign's report (`reports.build`) and, alone, its figures by receiving domain
  (computed from the 100,000 deliveries at report time);
- the growth again with 100,000 rows not yet compacted (one per single-row statement,
  as many signups through forms within the hour before the hourly compaction).
Last line: `dashboard ms=M`, the dashboard's median. Goal: under 300 ms.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPEAT = 9
DELIVERIES = 100_000
GOAL_MS = 300


def main(size: int | None) -> None:
    size = size or 1_000_000
    proc = subprocess.run(
        [sys.executable, str(HERE / "dashboard_child.py"), str(size)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"account of {size:,} contacts, campaign of {DELIVERIES:,} deliveries ready in "
          f"{got['ready_s']:.1f} s")  # fmt: skip
    print(f"growth rows of the list: {got['growth_rows']}")
    for label, median, low, high in got["timed"]:
        print(f"{label}: {median:.0f} ms (median of {REPEAT}; min {low:.0f}, max {high:.0f})")
    print(f"compacting {got['compacted']:,} rows: {got['compact_s']:.1f} s")
    print(f"goal: the dashboard under {GOAL_MS} ms")
    print(f"dashboard ms={got['dashboard_ms']:.0f}")


BENCHMARKS = {"dashboard": main}

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
