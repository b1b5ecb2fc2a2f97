"""Benchmark: import contacts from a CSV file through the whole pipeline (read, check,
dedupe, suppression, consent fields, write) against a bare SQL load of the same rows into
the same tables, with the same indexes and constraints, in the same run: the contacts,
subscriptions and proof of consent the import wrote, copied out and loaded again with one
COPY per table in one transaction (the least any import must write); then the same load
on two connections at once, each with half the contacts and their subscriptions (the
least an import using both cores could take here, its Python aside). The old figure, a
bare COPY of the file into an unindexed table of four text columns, is printed too,
labelled. Each size runs in its own process (bench/import_contacts_child.py, the Django
side) so its peak memory is its own.

    python bench/run.py import [--size N]      (default 1,000,000; 100,000 is run too)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(size: int | None) -> None:
    size = size or 1_000_000
    sizes = sorted({min(100_000, size), size})
    results = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, str(HERE / "import_contacts_child.py"), str(n)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(result)
        rate = n / result["import_s"]
        print(
            f"{n:>9,} rows ({result['bytes'] / 1e6:.0f} MB): import {result['import_s']:.2f} s "
            f"({rate:,.0f} rows/s); same rows loaded bare into the same tables "
            f"{result['load_s']:.2f} s, ratio {result['load_s'] / result['import_s']:.3f}; "
            f"upload to disk {result['upload_s']:.2f} s; peak RSS {result['peak_rss_mb']:.0f} MB"
        )
        print(
            f"          (old figure: bare COPY of the file into an unindexed table of four "
            f"text columns {result['copy_s']:.2f} s, ratio "
            f"{result['copy_s'] / result['import_s']:.3f})"
        )
        print(
            f"          the same load on two connections at once (both cores, two halves "
            f"by contact): {result['two_lanes_s']:.2f} s"
        )
        print(f"          counts {result['counts']}, contacts written {result['contacts']:,}")
    big = results[-1]
    ratio = big["load_s"] / big["import_s"]
    print(
        f"goal: ratio >= 0.5 (is {ratio:.3f}), 1M under 30 s (is {big['import_s']:.1f} s; "
        f"the bare load alone takes {big['two_lanes_s']:.1f} s on both cores), "
        f"peak RSS < 300 MB and flat (is {results[0]['peak_rss_mb']:.0f} MB -> "
        f"{big['peak_rss_mb']:.0f} MB)"
    )
    print(f"import ratio={ratio:.3f}")


BENCHMARKS = {"import": main}

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
