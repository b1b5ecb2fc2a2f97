"""`tidings audit`: check that nobody has changed the audit log, anchor its head outside
the database, and protect it on PostgreSQL (P7). docs/operator.md, "The audit log"."""

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from tidings.staff import checkpoints, db_guard
from tidings.staff.audit import verify_chain


class Command(BaseCommand):
    help = (
        "Audit log tools. `verify` walks the hash chain, checks it against the signed "
        "checkpoints and names the first broken entry; `checkpoint` writes a signed "
        "checkpoint (`--mail`: and mails it to the privacy contact); `protect` (PostgreSQL, "
        "as a privileged role) gives the log an owner role the application's role is not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["verify", "checkpoint", "protect"])
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            type=Path,
            metavar="FILE",
            help="verify: also check against this checkpoint (a copy kept from the mail)",
        )
        parser.add_argument("--mail", action="store_true", help="checkpoint: mail it too")
        parser.add_argument("--app-role", help="protect: the role Tidings connects as")
        parser.add_argument(
            "--owner", default="tidings_audit", help="protect: the log's owner (NOLOGIN)"
        )
        parser.add_argument(
            "--min-retention-days",
            type=int,
            default=None,
            help="protect: the database never expires younger entries "
            "(default: TIDINGS_AUDIT_RETENTION_YEARS x 365)",
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "checkpoint":
            self._checkpoint(mail=options["mail"])
        elif action == "protect":
            self._protect(options)
        else:
            self._verify(options["checkpoint"])

    def _verify(self, extra: list[Path]) -> None:
        report = verify_chain(extra_checkpoints=extra)
        failed = False
        if connection.vendor == "postgresql":
            guard = db_guard.status(connection)
            self.stdout.write(guard.describe())
            lifted = db_guard.triggers_hold(connection)
            if lifted:
                self.stderr.write("audit log guard LIFTED: " + "; ".join(lifted))
                failed = True
        else:
            self.stdout.write(
                "no database roles on SQLite: the signed checkpoints are the evidence"
            )
        broken = report.first_broken
        if broken is not None:
            self.stderr.write(
                f"audit log BROKEN at entry id {broken.pk} ({broken.at:%Y-%m-%d %H:%M:%S %Z}): "
                f"{report.problem}; the {report.checked} entries before it are intact."
            )
            failed = True
        elif report.problem:
            self.stderr.write(f"audit log BROKEN: {report.problem}.")
            failed = True
        else:
            self.stdout.write(
                f"audit log OK: {report.checked} entries, chain intact; "
                f"head #{report.head_pk}, consistent with {report.checkpoints} signed checkpoint(s)"
            )
        if failed:
            # SystemExit, not CommandError: `tidings audit verify` turns it into the exit code.
            sys.exit(1)

    def _checkpoint(self, *, mail: bool) -> None:
        if mail:
            path = checkpoints.checkpoint_and_mail()
            self.stdout.write(f"checkpoint written to {path} and mailed to the privacy contact")
        else:
            path = checkpoints.write(checkpoints.current())
            self.stdout.write(f"checkpoint written to {path}")

    def _protect(self, options: dict[str, Any]) -> None:
        if not options["app_role"]:
            raise CommandError("protect needs --app-role, the role Tidings connects as")
        days = options["min_retention_days"]
        if days is None:
            days = 365 * settings.RETENTION["audit_years"]
        try:
            warnings = db_guard.protect(
                connection,
                app_role=options["app_role"],
                owner_role=options["owner"],
                min_retention_days=days,
            )
        except db_guard.GuardError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"audit log protected: owned by {options['owner']}; {options['app_role']} may read "
            f"and append, and expire entries older than {days} days"
        )
        for warning in warnings:
            self.stderr.write(f"warning: {warning}")
