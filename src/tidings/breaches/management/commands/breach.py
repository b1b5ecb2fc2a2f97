"""`tidings breach drill`: rehearse a whole personal-data breach (P33) from its record to
its notices, with the mail kept in the local outbox. docs/breaches.md, "The drill"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tidings.accounts.models import User
from tidings.breaches import drill, services
from tidings.privacy.office_views import PERMISSION


class Command(BaseCommand):
    help = (
        "Breach register tools. `drill` runs a whole incident as a rehearsal: recorded as a "
        "drill (never counted as a breach), scoped from the data map, a severity proposed, the "
        "authority report written as PDF (never filed) and the notices written to the local "
        "outbox only, marked as a drill; then prints a summary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["drill"])
        parser.add_argument(
            "--by", required=True, help="the email of the privacy officer or admin running it"
        )
        parser.add_argument(
            "--entry",
            action="append",
            default=[],
            help="a table of the data map assumed touched (e.g. audience.Contact); "
            "repeat it; default: every table",
        )
        parser.add_argument(
            "--account", action="append", type=int, default=[], help="default: every account"
        )
        parser.add_argument(
            "--report-dir", type=Path, default=Path("."), help="where the report's PDF goes"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        officer = User.objects.filter(email__iexact=options["by"], is_staff=True).first()
        if officer is None or not officer.has_perm(PERMISSION):
            raise CommandError(f"{options['by']} is no privacy officer nor admin")
        try:
            result = drill.run_drill(
                by=officer,
                report_dir=options["report_dir"],
                entries=options["entry"] or None,
                account_ids=options["account"] or None,
            )
        except services.BreachError as error:
            raise CommandError(str(error)) from error
        scope, proposal, fields = result.scope, result.proposal, result.report_fields
        countries = scope.per_country.items()
        lines = [
            f"Drill incident #{result.incident.pk} recorded (a drill: never counted as a breach).",
            f"Scope: {len(scope.per_account)} accounts, {scope.customers_affected} customers' "
            f"users (controller), {scope.contacts_affected} contacts (processor), "
            f"{scope.records_affected} records.",
            f"Categories: {', '.join(scope.categories)}",
            "People per country, users/contacts (where the data map knows it): "
            + (", ".join(f"{c or 'unknown'} {n['users']}/{n['contacts']}" for c, n in countries)),
            f"Severity proposed (ENISA): {proposal.level} (score {proposal.score}: DPC "
            f"{proposal.dpc} x EI {proposal.ei} + CB "
            f"{proposal.score - proposal.dpc * proposal.ei}); not set: a person decides.",
            f"Report: {result.report_path} (not filed); fields: {', '.join(sorted(fields))}.",
            f"Notices written: {result.notices}, as drill mail: delivered only to the local "
            "outbox (whatever relay is configured), marked as a drill.",
        ]
        self.stdout.write("\n".join(lines))
