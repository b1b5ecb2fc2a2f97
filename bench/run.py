"""Run one benchmark: `python bench/run.py NAME [--size N] [--workers W]`.

Each bench/*.py module that defines BENCHMARKS = {"name": main} adds its benchmarks;
`main(size)` prints its figures and, last, `NAME ratio=R` (or `NAME ms=M`). A benchmark
whose main takes `workers` (send) gets --workers.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks() -> dict:
    sys.path.insert(0, str(HERE))
    found: dict = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem in {
            "run", "benchdb", "chat_child", "web_child", "web_settings", "web_urls",
            "automation_child", "account_data_child", "dashboard_child",
            "export_contacts_child", "import_contacts_child", "segment_count_child",
            "send_campaign_child",
        }:  # fmt: skip
            continue
        module = importlib.import_module(path.stem)
        found.update(getattr(module, "BENCHMARKS", {}))
    return found


def main() -> None:
    known = benchmarks()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=sorted(known))
    parser.add_argument("--size", type=int, default=None, help="rows (default: 1,000,000)")
    parser.add_argument("--workers", type=int, default=None, help="Celery workers (send)")
    args = parser.parse_args()
    run = known[args.name]
    if args.workers is None:
        run(args.size)
    elif "workers" in inspect.signature(run).parameters:
        run(args.size, workers=args.workers)
    else:
        parser.error(f"{args.name} takes no --workers")


if __name__ == "__main__":
    main()
