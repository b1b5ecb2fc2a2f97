"""The segment benchmark's side in Django (bench/segment_count.py runs it as a child
process): Django is configured on the bench database before anything of Tidings is
imported.

    python bench/segment_count_child.py N
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import benchdb

benchdb.setup()

# Django is configured just above: the rest may be imported now.
from export_contacts_child import ensure_audience  # noqa: E402
from segment_count import REPEAT  # noqa: E402

from tidings.accounts.models import Account  # noqa: E402
from tidings.audience import segments, selectors  # noqa: E402
from tidings.audience.models import MailingList  # noqa: E402


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


def measure(size: int) -> dict:
    """Per rule set: the contacts found, the medians of the count, the first page and
    both together (ms), and the page's contacts shown and total as printed."""
    t = time.perf_counter()
    account = Account.objects.get(pk=ensure_audience(size))
    ready = time.perf_counter() - t
    newsletter = MailingList.objects.get(account=account)
    rules_out = []
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
        rules_out.append({
            "label": label, "found": found, "count_ms": statistics.median(counts),
            "page_ms": statistics.median(pages), "both_ms": statistics.median(both),
            "shown": len(page.contacts), "total": format(page.total),
        })  # fmt: skip
    return {"ready_s": ready, "rules": rules_out}


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
