"""`tidings audit verify`: check that nobody has changed the audit log (P7)."""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tidings.staff.audit import verify_chain


class Command(BaseCommand):
    help = "Audit log tools. `verify` walks the hash chain and names the first broken entry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["verify"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        report = verify_chain()
        broken = report.first_broken
        if broken is None:
            self.stdout.write(f"audit log OK: {report.checked} entries, chain intact")
            return
        self.stderr.write(
            f"audit log BROKEN at entry id {broken.pk} ({broken.at:%Y-%m-%d %H:%M:%S %Z}): "
            f"{report.problem}; the {report.checked} entries before it are intact."
        )
        # SystemExit, not CommandError: `tidings audit verify` turns it into the exit code.
        sys.exit(1)
