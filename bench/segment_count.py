"""Benchmark: a segment's size and its first page of contacts on a 1,000,000-contact
account, as the segment editor and the contacts page ask for them.

    python bench/run.py segment [--size N]     (default 1,000,000)

For each kind of rule (an attribute, two attributes, list membership, a date, a part of
a name found in a few contacts or in many, a whole name, a tag), the full count
(`segments.size`, the number the editor shows) and the first page
(`selectors.page_of`, 50 contacts newest first with "1,000+")
are timed together, 9 times; the median of each is printed. The last line is the worst
median: `segment ms=M`. Goal: under 300 ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPEAT = 9
GOAL_MS = 300


def rule_sets(list_uuid: str) -> dict[str, dict]:
    def one(condition: dict) -> dict:
        return {"match": "all", "conditions": [condition]}

    return {
        "attribute city = City 7 (1%)": one(
            {"field": "attribute", "key": "city", "op": "eq", "value": "City 7"}
        ),
        "attribute plan = free and city = City 3": {
            "match": "all",
            "conditions": [
                {"field": "attribute", "key": "plan", "op": "eq", "value": "free"},
                {"field": "attribute", "key": "city", "op": "eq", "value": "City 3"},
            ],
        },
        "on the list (everyone)": one({"field": "list", "op": "eq", "value": list_uuid}),
        "added after a date (nobody)": one(
            {"field": "created_at", "op": "after", "value": "2999-01-01"}
        ),
        "name contains 'son 12345'": one({"field": "name", "op": "contains", "value": "son 12345"}),
        "name contains 'son 1' (11%)": one({"field": "name", "op": "contains", "value": "son 1"}),
        "name is 'person 500000'": one({"field": "name", "op": "eq", "value": "person 500000"}),
        "tag vip (nobody)": one({"field": "tag", "op": "eq", "value": "vip"}),
    }


def main(size: int | None) -> None:
    import benchdb

    benchdb.setup()
    sys.path.insert(0, str(HERE))
    from export_contacts import ensure_audience

    from tidings.accounts.models import Account
    from tidings.audience import segments, selectors
    from tidings.audience.models import MailingList

    size = size or 1_000_000
    t = time.perf_counter()
    account = Account.objects.get(pk=ensure_audience(size))
    print(f"account of {size:,} contacts ready in {time.perf_counter() - t:.1f} s")
    newsletter = MailingList.objects.get(account=account)
    worst = 0.0
    for label, rules in rule_sets(str(newsletter.uuid)).items():
        counts, pages, both = [], [], []
        found = 0
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            found = segments.size(account, rules)
            t1 = time.perf_counter()
            page = selectors.page_of(segments.matching(account, rules), account)
            t2 = time.perf_counter()
            counts.append((t1 - t0) * 1000)
            pages.append((t2 - t1) * 1000)
            both.append((t2 - t0) * 1000)
        median = statistics.median(both)
        worst = max(worst, median)
        print(
            f"{label}: {found:,} contacts; count {statistics.median(counts):.0f} ms, "
            f"first page ({len(page.contacts)} shown, {page.total}) "
            f"{statistics.median(pages):.0f} ms; together {median:.0f} ms (median of {REPEAT})"
        )
    print(f"goal: under {GOAL_MS} ms at the median (worst rule: {worst:.0f} ms)")
    print(f"segment ms={worst:.0f}")


BENCHMARKS = {"segment": main}

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
