"""Benchmark: export contacts to CSV and XLSX through Tidings's exporter, against the bare
library over a server-side cursor on the same rows, in the same run. Each measurement
runs in its own process (bench/export_contacts_child.py, the Django side) so its peak
memory is its own.

    python bench/run.py export-csv [--size N]     (default 1,000,000; 100,000 too)
    python bench/run.py export-xlsx [--size N]
    python bench/run.py export-xls [--size N]      (memory growth of XLS; default 300,000)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(kind: str, n: int) -> dict:
    proc = subprocess.run(
        [sys.executable, str(HERE / "export_contacts_child.py"), kind, str(n)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(fmt: str, size: int | None) -> None:
    size = size or 1_000_000
    small = min(100_000, size)
    ours_small = measure(fmt, small)
    bare = measure(f"bare-{fmt}", size)
    ours = measure(fmt, size)
    library = "csv.writer" if fmt == "csv" else "XlsxWriter (constant memory)"
    print(
        f"bare {library} over a server-side cursor, {size:,} rows: {bare['seconds']:.2f} s "
        f"({size / bare['seconds']:,.0f} rows/s), peak RSS {bare['peak_rss_mb']:.0f} MB"
    )
    print(
        f"Tidings export ({fmt}), {size:,} rows: {ours['seconds']:.2f} s "
        f"({size / ours['seconds']:,.0f} rows/s), {ours['bytes'] / 1e6:.0f} MB, "
        f"peak RSS {ours['peak_rss_mb']:.0f} MB ({ours_small['peak_rss_mb']:.0f} MB at {small:,})"
    )
    ratio = bare["seconds"] / ours["seconds"]
    print(f"goal: ratio >= 0.5 (is {ratio:.3f}), peak memory flat")
    print(f"export-{fmt} ratio={ratio:.3f}")


def run_xls(size: int | None) -> None:
    """XLS has no constant-memory writer: measure how its memory grows."""
    size = size or 300_000
    sizes = sorted({min(65_535, size), min(100_000, size), size})
    last = {}
    for n in sizes:
        last = measure("xls", n)
        print(
            f"Tidings export (xls), {n:,} rows: {last['seconds']:.2f} s "
            f"({n / last['seconds']:,.0f} rows/s), {last['bytes'] / 1e6:.0f} MB, "
            f"peak RSS {last['peak_rss_mb']:.0f} MB"
        )
    print(f"export-xls ms={last['seconds'] * 1000:.0f}")


BENCHMARKS = {
    "export-csv": lambda size: run("csv", size),
    "export-xlsx": lambda size: run("xlsx", size),
    "export-xls": run_xls,
}

if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else "csv", None)
