"""`tidings manage recount_lists`: count every list's subscriptions again and repair the
maintained counters (audience.counters) where they differ."""

from typing import Any

from django.core.management.base import BaseCommand

from tidings.audience import counters


class Command(BaseCommand):
    help = "Recount each list's subscriptions by status and repair the maintained counters."

    def handle(self, *args: Any, **options: Any) -> None:
        wrong = counters.recount()
        for list_id, diff in sorted(wrong.items()):
            said = ", ".join(f"{status} {n:+}" for status, n in sorted(diff.items()))
            self.stdout.write(f"list {list_id}: counters were off by {said}; repaired")
        self.stdout.write(f"lists with wrong counters: {len(wrong)}")
