"""Benchmarks of the data-subject rights on a big account: the "all my data" archive
(P20) and the erasure of the account (P13, P17).

    python bench/run.py account-export [--size N]   (default 1,000,000 contacts)
    python bench/run.py erasure [--size N]          (default 1,000,000 contacts)

The account has N contacts, each on one list with a proof of consent and a delivery of
one sent campaign, and one open for every tenth contact: about 4.1 N rows. It is made
with SQL in a process of its own; the measurement runs in another, so its peak RSS is
its own (both bench/account_data_child.py, the Django side). The archive's format is
BENCH_FORMAT (csv, xlsx or xls; default csv). The archive's account is kept between
runs; the erasure's is made afresh each time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ERASURE_GOAL_S = 120


def _run_child(kind: str, n: int, account: int | None = None) -> dict:
    # One data directory for every run: the kept account's encrypted fields (the owner's
    # phone and address) need the field keys generated there.
    default_dir = Path(tempfile.gettempdir()) / "tidings-bench-account-data"
    env = {"TIDINGS_DATA_DIR": str(default_dir), **os.environ}
    if account is not None:
        env["BENCH_ACCOUNT"] = str(account)
    proc = subprocess.run(
        [sys.executable, str(HERE / "account_data_child.py"), kind, str(n)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def account_export(size: int | None) -> None:
    n = size or 1_000_000
    fmt = os.environ.get("BENCH_FORMAT", "csv")
    account = _run_child("prepare-export", n)["account"]
    got = _run_child("account-export", n, account)
    print(
        f"archive of all the data of an account of {n:,} contacts ({got['rows']:,} rows, "
        f"{fmt}): {got['seconds']:.1f} s ({got['rows'] / got['seconds']:,.0f} rows/s), "
        f"zip {got['bytes'] / 1e6:.0f} MB, peak RSS {got['peak_rss_mb']:.0f} MB"
    )
    print(f"account-export s={got['seconds']:.1f} rss_mb={got['peak_rss_mb']:.0f}")


def erasure(size: int | None) -> None:
    n = size or 1_000_000
    account = _run_child("prepare-erasure", n)["account"]
    got = _run_child("erasure", n, account)
    print(
        f"erasure of an account of {n:,} contacts ({got['rows']:,} rows): "
        f"{got['seconds']:.1f} s ({got['rows'] / got['seconds']:,.0f} rows/s), "
        f"peak RSS {got['peak_rss_mb']:.0f} MB"
    )
    print(f"counts: {json.dumps(got['counts'], sort_keys=True)}")
    print(
        f"CPU: PostgreSQL backend {got['backend_cpu']:.1f} s, Python {got['python_cpu']:.1f} s "
        f"(load average {got['load']:.1f} at the end: the wall time grows with it)"
    )
    print(
        f"goal: under {ERASURE_GOAL_S} s at 1,000,000 contacts; ratio to the goal "
        f"{got['seconds'] / ERASURE_GOAL_S:.2f} (under 1 meets it)"
    )
    # The same work bare, in the same run: a second account like the first, its rows
    # deleted by one statement per table in one transaction (bench/account_data_child.py,
    # FLOOR_STATEMENTS). What separates the erasure from it is the erasure's own work
    # (batches that commit and resume, the data map's order, the counts).
    bare_account = _run_child("prepare-erasure", n)["account"]
    bare = _run_child("floor", n, bare_account)
    print(
        f"floor: the same rows of a second such account ({bare['rows']:,}) deleted by one "
        f"bare statement per table in one transaction: {bare['seconds']:.1f} s "
        f"(PostgreSQL backend CPU {bare['backend_cpu']:.1f} s); erasure / floor "
        f"{got['seconds'] / bare['seconds']:.2f}"
    )
    print(f"erasure s={got['seconds']:.1f} rss_mb={got['peak_rss_mb']:.0f}")


BENCHMARKS = {"account-export": account_export, "erasure": erasure}
