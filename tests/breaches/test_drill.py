"""`tidings breach drill` rehearses a whole incident (P33): recorded, scoped, a severity
proposed, the report written, the notices written, and nobody real told: every mail
goes to the local outbox whatever relay is configured, marked as a drill."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tidings.breaches import services
from tidings.breaches.models import Filing, Incident, Notice
from tidings.outbox.models import OutboxMessage
from tidings.privacy.models import Disclosure
from tidings.staff.models import AuditEvent


def _drill(officer, tmp_path, *more: str) -> str:  # type: ignore[no-untyped-def]
    out = StringIO()
    call_command(
        "breach", "drill", "--by", officer.email, "--report-dir", str(tmp_path), *more, stdout=out
    )
    return out.getvalue()


@pytest.mark.promise("P33")
def test_a_drill_runs_a_whole_incident_and_tells_nobody_real(
    privacy_officer, acme, globex, smtp_mail, tmp_path
):
    # The operator's relay is a real SMTP server: a drill must never reach it.
    printed = _drill(privacy_officer, tmp_path, "--entry", "audience.Contact")

    incident = Incident.objects.get()
    assert incident.drill and incident.status == Incident.Status.BREACH
    assert "Scope: 2 accounts, 0 customers' users (controller), 5 contacts (processor)" in printed
    assert (
        "People per country, users/contacts (where the data map knows it): unknown 0/5" in printed
    )
    # Simple data (DPC 1) x EI 1 + confidentiality 0.5 + malicious 0.5, as the drill assumes.
    assert "Severity proposed (ENISA): medium (score 2.0" in printed
    assert "Notices written: 3, as drill mail: delivered only to the local outbox" in printed
    pdf = tmp_path / f"breach-report-{incident.pk}.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "approximate_people" in printed and "likely_consequences" in printed

    assert smtp_mail.messages == []
    kept = list(OutboxMessage.objects.order_by("recipients"))
    assert sorted(m.recipients for m in kept) == sorted(
        u.email for u in [*acme.users, *globex.users]
    )
    # Marked as a drill in each reader's language.
    french = next(m for m in kept if m.recipients == acme.users[1].email)
    english = [m for m in kept if m is not french]
    assert all(m.subject.startswith("[DRILL]") for m in english)
    assert all(m.body.startswith("THIS IS A DRILL") for m in english)
    assert french.subject.startswith("[EXERCICE]")
    assert french.body.startswith("CECI EST UN EXERCICE")
    assert "Une violation de données personnelles" in french.subject

    # Nothing of it reaches anyone's account, the authority or the register's counts.
    assert not Notice.objects.exists() and not Filing.objects.exists()
    assert not Disclosure.objects.exists()
    assert not Incident.objects.filter(drill=False).exists()
    assert services.escalate_clocks(timezone.now() + timedelta(hours=73)) == 0
    with pytest.raises(services.BreachError):
        services.file_report(incident, by=privacy_officer)
    assert AuditEvent.objects.filter(target_type="breaches.Incident", action="export").exists()


def test_the_register_marks_the_drill(privacy_officer, console, acme, mailbox, tmp_path):
    _drill(privacy_officer, tmp_path, "--entry", "accounts.User")
    page = console(privacy_officer).get("/staff/privacy-office/breaches/").content.decode()
    assert "DRILL (not a breach: a rehearsal)" in page
    incident = Incident.objects.get()
    page = console(privacy_officer).get(f"/staff/privacy-office/breaches/{incident.pk}/")
    assert "Authority report due in" not in page.content.decode()


def test_only_a_privacy_officer_runs_a_drill(staff, acme, tmp_path):
    with pytest.raises(CommandError):
        _drill(staff, tmp_path)
    assert not Incident.objects.exists()


def test_a_drill_that_matches_nobody_says_so(privacy_officer, tmp_path, db):
    with pytest.raises(CommandError, match="matches nobody"):
        _drill(privacy_officer, tmp_path, "--entry", "audience.Contact")
