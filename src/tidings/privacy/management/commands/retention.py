"""`tidings retention [--dry-run]`: apply the retention schedule, or show what it would do."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tidings.core import retention


class Command(BaseCommand):
    help = "Delete every kind of data whose retention period has ended (P12)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be deleted, delete nothing"
        )

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        verb = "would delete" if dry_run else "deleted"
        for outcome in retention.apply_all(dry_run=dry_run):
            rule = outcome.rule
            self.stdout.write(f"{rule.name}: {verb} {outcome.count}  ({rule.why()})")
