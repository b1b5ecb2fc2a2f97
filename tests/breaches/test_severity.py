"""A breach's severity by ENISA's method (SE = DPC x EI + CB): Tidings proposes it from
the scope's data and the incident's nature, a named person sets it and says why, and
the proposal is never applied by itself (P33). The cases follow the spirit of the
EDPB's guidelines 01/2021 on examples of breach notification."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tidings.breaches import services, severity
from tidings.breaches.models import Assessment, Incident, Scope
from tidings.core import datamap
from tidings.staff.audit import AuditEvent

CONTACTS = "audience.Contact"


def _breach(officer: Any, summary: str, **nature: Any) -> Incident:
    incident = services.record_incident(
        by=officer, summary=summary, detected_at=timezone.now() - timedelta(hours=1)
    )
    return services.qualify_breach(
        incident,
        by=officer,
        cause="the cause",
        consequences="the consequences",
        measures="the measures",
        **nature,
    )


def _scope_of(incident: Incident, records: dict[str, int], *, special: bool = False) -> Scope:
    """A scope as scoping would keep it, for tables a test need not fill."""
    return Scope.objects.create(
        incident=incident,
        entries=sorted(records),
        per_account=[{"account": 1, "users": 1, "contacts": 0, "records": records}],
        special_categories=special,
    )


def test_the_method_s_levels_have_its_boundaries():
    assert severity.level_of(Decimal("1.75")) == "low"
    assert severity.level_of(Decimal(2)) == "medium"
    assert severity.level_of(Decimal("2.99")) == "medium"
    assert severity.level_of(Decimal(3)) == "high"
    assert severity.level_of(Decimal(4)) == "very_high"


def test_the_data_map_classes_billing_as_financial_and_opens_as_behavioural():
    classes = {e.label: e.data_class for e in datamap.entries()}
    assert classes["billing.Order"] == datamap.DataClass.FINANCIAL
    assert classes["sending.TrackingEvent"] == datamap.DataClass.BEHAVIOURAL
    assert classes[CONTACTS] == datamap.DataClass.SIMPLE


@pytest.mark.promise("P33")
def test_ransomware_with_a_backup_and_no_exfiltration_is_low(privacy_officer, acme):
    # EDPB 01/2021, case 1: encrypted by ransomware, restored from backup, nothing taken.
    incident = _breach(
        privacy_officer, "Ransomware encrypted the contacts database",
        availability=True, recoverable=True, malicious=True,
    )  # fmt: skip
    scope = services.scope_incident(incident, by=privacy_officer, entries=[CONTACTS])
    proposal = severity.propose(incident, scope)
    assert (proposal.dpc, proposal.ei) == (1, 1)
    assert (proposal.availability, proposal.malicious, proposal.confidentiality) == (
        Decimal("0.25"), Decimal("0.5"), 0,
    )  # fmt: skip
    assert proposal.score == Decimal("1.75") and proposal.level == "low"


@pytest.mark.promise("P33")
def test_exfiltration_of_health_data_is_very_high(privacy_officer):
    # EDPB 01/2021, case 2-like: an attacker took data revealing people's health.
    incident = _breach(
        privacy_officer, "A clinic's patient list was stolen from an account",
        confidentiality=True, malicious=True,
    )  # fmt: skip
    proposal = severity.propose(incident, _scope_of(incident, {CONTACTS: 40}, special=True))
    assert proposal.dpc == 4 and proposal.ei == 1
    assert proposal.score == Decimal(5) and proposal.level == "very_high"


@pytest.mark.promise("P33")
def test_financial_data_misdirected_to_one_person_is_high(privacy_officer):
    # EDPB 01/2021, the "mistakes" cases: one customer's order sent to another by error.
    incident = _breach(
        privacy_officer, "An order confirmation went to the wrong customer",
        confidentiality=True, known_recipients=True,
    )  # fmt: skip
    proposal = severity.propose(incident, _scope_of(incident, {"billing.Order": 1}))
    assert proposal.dpc == 3 and proposal.confidentiality == Decimal("0.25")
    assert proposal.score == Decimal("3.25") and proposal.level == "high"


@pytest.mark.promise("P33")
def test_leaked_opens_and_clicks_without_malice_are_medium(privacy_officer):
    incident = _breach(privacy_officer, "A report of clicks was public", confidentiality=True)
    scope = _scope_of(incident, {"sending.TrackingEvent": 300, CONTACTS: 20})
    proposal = severity.propose(incident, scope)
    assert proposal.dpc == 2 and proposal.score == Decimal("2.5")
    assert proposal.level == "medium"


def test_stolen_encrypted_data_with_the_key_safe_is_low(privacy_officer):
    # EDPB 01/2021, case 7-like: a stolen device whose data was strongly encrypted.
    incident = _breach(
        privacy_officer, "A laptop with an encrypted export was stolen",
        confidentiality=True, malicious=True, unintelligible=True,
    )  # fmt: skip
    proposal = severity.propose(incident, _scope_of(incident, {"billing.Order": 500}))
    assert proposal.ei == Decimal("0.25")
    assert proposal.score == Decimal("1.75") and proposal.level == "low"


def _set(incident: Incident, officer: Any, **changes: Any) -> Assessment:
    proposal = services.severity_proposal(incident)
    assert proposal is not None
    figures: dict[str, Any] = {
        "dpc": proposal.dpc,
        "ei": proposal.ei,
        "confidentiality": proposal.confidentiality,
        "integrity": proposal.integrity,
        "availability": proposal.availability,
        "malicious": proposal.malicious,
        "level": proposal.level,
        "reason": "as proposed: the scope and the facts agree",
    }
    return services.assess_severity(incident, by=officer, **{**figures, **changes})


@pytest.mark.promise("P33")
def test_the_proposal_is_never_applied_until_a_named_person_sets_it_and_says_why(
    privacy_officer, acme
):
    incident = _breach(privacy_officer, "Contacts exported by an attacker", confidentiality=True)
    services.scope_incident(incident, by=privacy_officer, entries=[CONTACTS])
    assert services.current_assessment(incident) is None
    with pytest.raises(services.BreachError):
        _set(incident, privacy_officer, reason="  ")
    assert not Assessment.objects.exists()

    # The officer knows the list is a patients' list: DPC up, and says so.
    assessment = _set(
        incident, privacy_officer, dpc=Decimal(4), level="very_high",
        reason="the list is a clinic's patients: it reveals their health",
    )  # fmt: skip
    assert assessment.decided_by == privacy_officer
    assert assessment.score == Decimal("4.5") and assessment.level == "very_high"
    assert assessment.proposal["score"] == "1.5" and assessment.proposal["level"] == "low"
    assert services.current_assessment(incident) == assessment
    event = AuditEvent.objects.get(target_type="breaches.Assessment", target_id=str(assessment.pk))
    assert event.actor_id == privacy_officer.pk and "very_high" in event.reason


def test_figures_outside_the_method_are_refused(privacy_officer, acme):
    incident = _breach(privacy_officer, "A leak", confidentiality=True)
    services.scope_incident(incident, by=privacy_officer, entries=[CONTACTS])
    with pytest.raises(services.BreachError):
        _set(incident, privacy_officer, dpc=Decimal(5))
    with pytest.raises(services.BreachError):
        _set(incident, privacy_officer, level="apocalyptic")
    assert not Assessment.objects.exists()


def test_an_unscoped_breach_has_no_proposal_and_cannot_be_assessed(privacy_officer):
    incident = _breach(privacy_officer, "A leak", confidentiality=True)
    assert services.severity_proposal(incident) is None
    with pytest.raises(services.BreachError):
        services.assess_severity(
            incident, by=privacy_officer, dpc=Decimal(1), ei=Decimal(1),
            confidentiality=Decimal("0.5"), integrity=Decimal(0), availability=Decimal(0),
            malicious=Decimal(0), level="low", reason="a guess",
        )  # fmt: skip


@pytest.mark.promise("P33")
def test_the_officer_sees_the_proposal_on_the_incident_page_and_sets_the_severity(
    console, privacy_officer, acme
):
    incident = _breach(
        privacy_officer, "Ransomware on the contacts database",
        availability=True, recoverable=True, malicious=True,
    )  # fmt: skip
    client = console(privacy_officer)
    url = f"/staff/privacy-office/breaches/{incident.pk}/"
    assert "Scope the breach first" in client.get(url).content.decode()
    services.scope_incident(incident, by=privacy_officer, entries=[CONTACTS])
    page = client.get(url).content.decode()
    assert "Tidings proposes low (score 1.75)" in page
    assert "Availability +0.25: the data can be restored." in page
    assert "the data can be restored; malicious intent;" in page  # the circumstances
    assert "No severity set yet" in page
    figures = {
        "severity-dpc": "1", "severity-ei": "1", "severity-confidentiality": "0",
        "severity-integrity": "0", "severity-availability": "0.25", "severity-malicious": "0.5",
        "severity-level": "low",
    }  # fmt: skip
    refused = client.post(url, {"action": "severity", **figures})
    assert refused.status_code == 400 and not Assessment.objects.exists()
    reason = "restored from the backup within the hour; nothing was taken"
    done = client.post(url, {"action": "severity", **figures, "severity-reason": reason})
    assert done.status_code == 302, done.content
    page = client.get(url).content.decode()
    assert reason in page and privacy_officer.email in page
    assert Assessment.objects.get().level == "low"
