"""Recording and qualifying incidents: the clock runs from awareness, and nothing of the
register is lost (GDPR art. 33(5), P33)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tidings.breaches import services
from tidings.breaches.models import AUTHORITY_DEADLINE, Incident
from tidings.staff.models import AuditEvent


def _record(by, **overrides):  # type: ignore[no-untyped-def]
    now = timezone.now()
    values = {"summary": "Backup disk lost in transit", "detected_at": now - timedelta(hours=3)}
    return services.record_incident(by=by, **{**values, **overrides})


@pytest.mark.promise("P33")
def test_the_clock_runs_seventy_two_hours_from_awareness_not_detection(privacy_officer):
    now = timezone.now()
    incident = _record(
        privacy_officer,
        detected_at=now - timedelta(hours=10),
        aware_at=now - timedelta(hours=4),
        gap_reason="the alert went to a mailbox read on Monday",
    )
    assert incident.deadline == now - timedelta(hours=4) + AUTHORITY_DEADLINE
    assert AuditEvent.objects.filter(action="create", target_type="breaches.Incident").exists()


def test_awareness_before_detection_is_refused(privacy_officer):
    now = timezone.now()
    with pytest.raises(services.BreachError, match="before detection"):
        _record(
            privacy_officer, detected_at=now - timedelta(hours=1), aware_at=now - timedelta(hours=2)
        )
    assert not Incident.objects.exists()


def test_a_gap_between_detection_and_awareness_needs_a_written_reason(privacy_officer):
    now = timezone.now()
    with pytest.raises(services.BreachError, match="write why"):
        _record(
            privacy_officer, detected_at=now - timedelta(hours=5), aware_at=now - timedelta(hours=1)
        )
    assert not Incident.objects.exists()


def test_an_incident_in_the_future_or_without_a_summary_is_refused(privacy_officer):
    with pytest.raises(services.BreachError):
        _record(privacy_officer, detected_at=timezone.now() + timedelta(hours=1))
    with pytest.raises(services.BreachError):
        _record(privacy_officer, summary="  ")
    assert not Incident.objects.exists()


def test_not_a_breach_is_kept_with_who_why_and_when_and_cannot_be_requalified(privacy_officer):
    incident = _record(privacy_officer)
    services.qualify_not_a_breach(
        incident, by=privacy_officer, reason="the disk was encrypted with a key kept apart"
    )
    incident.refresh_from_db()
    assert incident.status == Incident.Status.NOT_A_BREACH
    assert incident.qualified_by == privacy_officer and incident.qualified_at is not None
    with pytest.raises(services.BreachError, match="already qualified"):
        services.qualify_breach(
            incident, by=privacy_officer, confidentiality=True, cause="c", consequences="x",
            measures="m",
        )  # fmt: skip
    assert Incident.objects.get().qualification_reason.startswith("the disk was encrypted")


def test_a_breach_needs_its_nature_cause_consequences_and_measures(privacy_officer):
    incident = _record(privacy_officer)
    with pytest.raises(services.BreachError, match="what was lost"):
        services.qualify_breach(
            incident, by=privacy_officer, cause="c", consequences="x", measures="m"
        )
    with pytest.raises(services.BreachError, match="cause"):
        services.qualify_breach(
            incident, by=privacy_officer, integrity=True, cause="", consequences="x", measures="m"
        )
    assert Incident.objects.get().status == Incident.Status.OPEN
    with pytest.raises(services.BreachError, match="why"):
        services.qualify_not_a_breach(incident, by=privacy_officer, reason=" ")
