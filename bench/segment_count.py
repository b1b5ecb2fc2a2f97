"""Benchmark: a segment's size and its first page of contacts on a 1,000,000-contact
account, as the segment editor and the contacts page ask for them.

    python bench/run.py segment [--size N]     (default 1,000,000)

For each kind of rule (an attribute, two attributes, list membership, a date, a part of
a name found in a few contacts or in many, a whole name, a tag), the full count
(`segments.size`, the number the editor shows) and the first page
(`selectors.page_of`, 50 contacts newest first with "1,000+")
are timed together, 9 times, in a process of its own (bench/segment_count_child.py, the
Django side); the median of each is printed. The last line is the worst
median: `segment ms=M`. Goal: under 300 ms.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPEAT = 9
GOAL_MS = 300


def main(size: int | None) -> None:
    size = size or 1_000_000
    proc = subprocess.run(
        [sys.executable, str(HERE / "segment_count_child.py"), str(size)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"account of {size:,} contacts ready in {got['ready_s']:.1f} s")
    worst = 0.0
    for rule in got["rules"]:
        median = rule["both_ms"]
        worst = max(worst, median)
        print(
            f"{rule['label']}: {rule['found']:,} contacts; count {rule['count_ms']:.0f} ms, "
            f"first page ({rule['shown']} shown, {rule['total']}) "
            f"{rule['page_ms']:.0f} ms; together {median:.0f} ms (median of {REPEAT})"
        )
    print(f"goal: under {GOAL_MS} ms at the median (worst rule: {worst:.0f} ms)")
    print(f"segment ms={worst:.0f}")


BENCHMARKS = {"segment": main}

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
