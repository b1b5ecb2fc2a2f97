"""A breach drill (`tidings breach drill`): a whole incident run as a rehearsal.

1. The incident is recorded as a drill: it stays in the register, marked, and is never
   counted as a breach, escalated nor reported to the authority.
2. It is qualified and scoped like a real one (the scope is counts only: it tells
   nobody), and ENISA's method proposes a severity; nobody sets it.
3. The authority report is written as a PDF, never filed.
4. The notices are written through the one pipeline as drill mail: marked as a drill in
   subject and body, kept in the local outbox whatever relay is configured, tied to
   nobody, with no banner nor notice in anyone's account.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils import timezone

from tidings.accounts.models import User
from tidings.breaches import report, services, severity
from tidings.breaches.models import Incident, Scope
from tidings.privacy import breach_scope
from tidings.staff import audit

SUMMARY = "DRILL: rehearsal of the breach procedure"


@dataclass
class DrillResult:
    incident: Incident
    scope: Scope
    proposal: severity.Proposal
    report_path: Path
    report_fields: dict[str, Any]
    notices: int


def run_drill(
    *,
    by: User,
    report_dir: Path,
    entries: list[str] | None = None,
    account_ids: list[int] | None = None,
) -> DrillResult:
    """Run an incident from its record to its notices as a drill (every table of the
    data map unless `entries` says which), writing the report's PDF in `report_dir`."""
    labels = entries or [e.label for e in breach_scope.scopable_entries()]
    incident = services.record_incident(
        by=by,
        summary=SUMMARY,
        description="tidings breach drill",
        detected_at=timezone.now(),
        drill=True,
    )
    incident = services.qualify_breach(
        incident,
        by=by,
        confidentiality=True,
        malicious=True,
        cause="drill: an assumed exfiltration of the tables chosen",
        consequences="drill: phishing using the addresses, as assumed",
        measures="drill: none, nothing happened",
    )
    scope = services.scope_incident(incident, by=by, entries=labels, account_ids=account_ids)
    proposal = severity.propose(incident, scope)
    body, _type, name = report.export(incident, "pdf")
    report_dir.mkdir(parents=True, exist_ok=True)
    report_path = report_dir / name
    report_path.write_bytes(body)
    audit.record(
        audit.AuditEvent.Action.EXPORT, incident, by=by,
        reason=f"breach drill {incident.pk}: the report written to {report_path}",
    )  # fmt: skip
    notices = services.send_notices(incident, by=by)
    return DrillResult(
        incident=incident,
        scope=scope,
        proposal=proposal,
        report_path=report_path,
        report_fields=report.content_of(incident),
        notices=notices,
    )
