"""Run one benchmark: `python bench/run.py NAME [--size N]`.

Each bench/*.py module that defines BENCHMARKS = {"name": main} adds its benchmarks;
`main(size)` prints its figures and, last, `NAME ratio=R` (or `NAME ms=M`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks() -> dict:
    sys.path.insert(0, str(HERE))
    found: dict = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem in {"run", "benchdb"}:
            continue
        module = importlib.import_module(path.stem)
        found.update(getattr(module, "BENCHMARKS", {}))
    return found


def main() -> None:
    known = benchmarks()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=sorted(known))
    parser.add_argument("--size", type=int, default=None, help="rows (default: 1,000,000)")
    args = parser.parse_args()
    known[args.name](args.size)


if __name__ == "__main__":
    main()
