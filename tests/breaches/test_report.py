"""The authority report (art. 33(3)): every field, phases as new filings, the first
filing freezing deadline and lateness, a late one only with reasons; recorded as a
disclosure (P25); no affected person's name or address in it (P33)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from pypdf import PdfReader

from tidings.breaches import report, services
from tidings.breaches.models import Filing, Incident
from tidings.privacy.models import Disclosure

ART_33_3 = (
    "nature",
    "data_categories",
    "approximate_people",
    "approximate_records",
    "contact",
    "likely_consequences",
    "measures",
)


def scoped_breach(by, *, aware_hours_ago: int = 2, entries=("audience.Contact", "accounts.User")):  # type: ignore[no-untyped-def]
    incident = services.record_incident(
        by=by,
        summary="Contact export mailed to the wrong customer",
        detected_at=timezone.now() - timedelta(hours=aware_hours_ago),
    )
    services.qualify_breach(
        incident,
        by=by,
        confidentiality=True,
        cause="human error: the export's link was sent to a similar address",
        consequences="unsolicited mail to the contacts",
        measures="the link was revoked after 20 minutes; the recipient confirmed deletion",
    )
    services.scope_incident(incident, by=by, entries=list(entries))
    return Incident.objects.get(pk=incident.pk)


@pytest.mark.promise("P33", "P25")
def test_a_filing_holds_every_field_of_art_33_3_and_is_recorded_as_a_disclosure(
    privacy_officer, acme
):
    incident = scoped_breach(privacy_officer)
    filing = services.file_report(incident, by=privacy_officer, reference="DPA-2026-77")
    assert filing.phase == 1 and not filing.late
    for name in ART_33_3:
        assert filing.content[name], name
    assert filing.content["approximate_people"] == {
        "customers_users": 2,
        "contacts_of_customers": 3,
    }
    disclosure = Disclosure.objects.get()
    assert disclosure.reference == "DPA-2026-77" and "art. 33" in disclosure.legal_ground


@pytest.mark.promise("P33")
def test_the_report_holds_no_affected_persons_name_or_address(privacy_officer, acme):
    incident = scoped_breach(privacy_officer)
    services.file_report(incident, by=privacy_officer)
    body, content_type, _name = report.export(incident, "json")
    text = body.decode()
    assert content_type == "application/json" and json.loads(text)["phase"] == 1
    for person in [*acme.users, *acme.contacts]:
        assert person.email not in text
        assert not person.name or person.name not in text
    pdf, pdf_type, _pdf_name = report.export(incident, "pdf")
    assert pdf_type == "application/pdf" and pdf.startswith(b"%PDF")


@pytest.mark.promise("P33")
def test_a_filing_after_72_hours_needs_its_reasons_and_the_first_freezes_lateness(
    privacy_officer, acme
):
    incident = scoped_breach(privacy_officer)
    with time_machine.travel(timezone.now() + timedelta(hours=69), tick=False):
        on_time = services.file_report(incident, by=privacy_officer)
    with time_machine.travel(timezone.now() + timedelta(hours=100), tick=False):
        # A later phase (art. 33(4)) is a new filing; it keeps the first one's lateness.
        follow_up = services.file_report(incident, by=privacy_officer, reference="more counts")
    assert not on_time.late and not follow_up.late
    assert follow_up.phase == 2 and follow_up.deadline == on_time.deadline


def test_a_late_first_filing_without_reasons_is_refused(privacy_officer, acme):
    incident = scoped_breach(privacy_officer)
    with time_machine.travel(timezone.now() + timedelta(hours=73), tick=False):
        with pytest.raises(services.BreachError, match="reasons for the delay"):
            services.file_report(incident, by=privacy_officer)
        assert not Filing.objects.exists() and not Disclosure.objects.exists()
        late = services.file_report(
            incident, by=privacy_officer, late_reason="the scope took four days to establish"
        )
    assert late.late and late.late_reason.startswith("the scope")


def test_only_a_scoped_breach_is_reported(privacy_officer):
    incident = services.record_incident(
        by=privacy_officer, summary="a laptop was stolen", detected_at=timezone.now()
    )
    with pytest.raises(services.BreachError):
        services.file_report(incident, by=privacy_officer)
    services.qualify_breach(
        incident, by=privacy_officer, availability=True, cause="theft", consequences="none",
        measures="remote wipe",
    )  # fmt: skip
    with pytest.raises(services.BreachError, match="Scope"):
        services.file_report(incident, by=privacy_officer)
    assert not Filing.objects.exists()


@pytest.mark.promise("P33")
def test_the_severity_set_is_in_the_report_and_the_processor_notice(mailbox, privacy_officer, acme):
    privacy_officer.name = "Dana Officer"
    privacy_officer.save(update_fields=["name"])
    incident = scoped_breach(privacy_officer)
    draft, _type, _name = report.export(incident, "pdf")
    assert "Not assessed yet" in _pdf_text(draft)  # a proposal is never reported
    assert report.content_of(incident)["severity"] is None
    services.assess_severity(
        incident, by=privacy_officer, dpc=Decimal(2), ei=Decimal(1),
        confidentiality=Decimal("0.5"), integrity=Decimal(0), availability=Decimal(0),
        malicious=Decimal("0.5"), level="high", reason="contacts' habits sent to a stranger",
    )  # fmt: skip
    services.file_report(incident, by=privacy_officer)
    body, _type, _name = report.export(incident, "json")
    severity = json.loads(body)["severity"]
    assert severity["level"] == "high" and severity["score"] == "3.00"
    assert (severity["dpc"], severity["ei"]) == ("2.00", "1.00")
    assert severity["cb"] == {
        "confidentiality": "0.50", "integrity": "0.00", "availability": "0.00",
        "malicious_intent": "0.50",
    }  # fmt: skip
    assert severity["decided_by"] == "Dana Officer"
    assert severity["reason"] == "contacts' habits sent to a stranger"
    pdf, _type, _name = report.export(incident, "pdf")
    text = " ".join(_pdf_text(pdf).split())
    assert "Severity as assessed (ENISA method" in text
    assert "high (score 3.00)" in text and "DPC 2.00 \N{MULTIPLICATION SIGN} EI 1.00" in text
    assert "Dana Officer" in text and "contacts' habits sent to a stranger" in text
    services.send_notices(incident, by=privacy_officer)
    english = acme.users[0].email
    (facts,) = [m for m in mailbox if m.to == [english] and "contacts' data" in m.subject]
    assert "ENISA method, SE = DPC x EI + CB): high, score 3.00" in facts.body
    (own,) = [m for m in mailbox if m.to == [english] and "your data" in m.subject]
    assert "ENISA" not in own.body  # the controller's notice: plain language only


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.promise("P33")
def test_the_pdf_shows_times_as_the_pages_do_and_the_authority_filed_with(
    privacy_officer, acme, settings
):
    settings.TIME_ZONE = "UTC"
    incident = scoped_breach(privacy_officer)
    services.assess_severity(
        incident, by=privacy_officer, dpc=Decimal("1"), ei=Decimal("1"),
        confidentiality=Decimal("0.25"), integrity=Decimal("0"),
        availability=Decimal("0"), malicious=Decimal("0"), level="medium",
        reason="addresses only",
    )  # fmt: skip
    filing = services.file_report(incident, by=privacy_officer, reference="DPA-9")
    text = _pdf_text(report.export(incident, "pdf")[0])
    aware = timezone.localtime(incident.aware_at).strftime("%Y-%m-%d %H:%M UTC")
    assert aware in text and filing.deadline.strftime("%Y-%m-%d %H:%M UTC") in text
    assert "+00:00" not in text  # no raw ISO 8601 (with its microseconds) on the form
    assert filing.authority in text.replace("\n", " ")
