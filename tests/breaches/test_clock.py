"""The 72-hour clock escalates to the privacy officers at 24, 48 and 60 hours after
awareness and when the deadline is missed, once per step, and stops once the report is
filed (P33). Time-travel tests: the clock is moved, nothing sleeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.breaches.test_report import scoped_breach
from tests.factories import StaffFactory
from tidings.accounts.models import User
from tidings.breaches import services
from tidings.celery import app


def _escalate_at(hours: float, aware_at) -> int:  # type: ignore[no-untyped-def]
    with time_machine.travel(aware_at + timedelta(hours=hours), tick=False):
        return services.escalate_clocks()


@pytest.mark.promise("P33")
def test_officers_are_mailed_at_24_48_60_hours_and_when_the_deadline_is_missed(
    mailbox, privacy_officer, operator_admin, acme
):
    incident = scoped_breach(privacy_officer, aware_hours_ago=0)
    aware = incident.aware_at
    assert _escalate_at(23, aware) == 0
    steps = [_escalate_at(h, aware) for h in (24.5, 30, 48.1, 60.2, 60.3, 73, 90)]
    assert steps == [1, 0, 1, 1, 0, 1, 0]
    subjects = [m.subject for m in mailbox if m.to == [privacy_officer.email]]
    assert len(subjects) == 4 and len(mailbox) == 8  # the admin is told too
    assert "24 hours" in subjects[0] and "60 hours" in subjects[2]
    assert "72 hours have passed" in subjects[3]


def test_a_filed_report_with_everyone_told_or_a_non_breach_stops_the_clock(
    mailbox, privacy_officer, acme
):
    filed = scoped_breach(privacy_officer, aware_hours_ago=1)
    services.file_report(filed, by=privacy_officer)
    services.send_notices(filed, by=privacy_officer)
    mailbox.clear()
    dismissed = services.record_incident(
        by=privacy_officer, summary="false alarm", detected_at=timezone.now()
    )
    services.qualify_not_a_breach(dismissed, by=privacy_officer, reason="no personal data")
    assert _escalate_at(80, timezone.now()) == 0
    assert not mailbox


@pytest.mark.promise("P33")
def test_the_clock_escalates_after_the_report_until_everyone_is_told(
    mailbox, privacy_officer, acme
):
    incident = scoped_breach(privacy_officer, aware_hours_ago=0)
    aware = incident.aware_at
    assert _escalate_at(24.5, aware) == 1
    with time_machine.travel(aware + timedelta(hours=30), tick=False):
        services.file_report(incident, by=privacy_officer)
    # Reported in time, but Acme's two users are told of neither their data nor their
    # contacts' (art. 34 and 33(2)): the officers hear of it at the next step.
    assert _escalate_at(48.1, aware) == 1
    reminder = mailbox[-1]
    assert "not all told yet" in reminder.subject
    assert "4 notices to the people affected are not sent yet" in reminder.body
    with time_machine.travel(aware + timedelta(hours=50), tick=False):
        services.send_notices(incident, by=privacy_officer)
    told = len(mailbox)
    assert [_escalate_at(h, aware) for h in (60.2, 73)] == [0, 0]
    assert len(mailbox) == told


@pytest.mark.promise("P33")
def test_without_privacy_officers_the_clock_mails_the_privacy_address(
    mailbox, staff, acme, settings
):
    incident = scoped_breach(staff, aware_hours_ago=0)
    assert _escalate_at(24.5, incident.aware_at) == 1
    (mail,) = mailbox
    assert mail.to == [settings.OPERATOR["privacy_email"]] and "24 hours" in mail.subject


@pytest.mark.promise("P33")
def test_with_nobody_to_tell_the_step_waits_for_the_next_run(mailbox, staff, acme, settings):
    settings.OPERATOR = {**settings.OPERATOR, "privacy_email": ""}
    incident = scoped_breach(staff, aware_hours_ago=0)
    assert _escalate_at(24.5, incident.aware_at) == 0
    incident.refresh_from_db()
    assert incident.escalated_hours == 0 and not mailbox
    officer = StaffFactory(
        email="new-dpo@operator.example", staff_role=User.StaffRole.PRIVACY_OFFICER
    )
    assert _escalate_at(25, incident.aware_at) == 1
    (mail,) = mailbox
    assert mail.to == [officer.email] and "24 hours" in mail.subject


def test_a_late_step_skips_the_ones_it_passed(mailbox, privacy_officer, acme):
    # The worker was down for two days: one mail, for where the clock is now.
    incident = scoped_breach(privacy_officer, aware_hours_ago=0)
    assert _escalate_at(61, incident.aware_at) == 1
    (mail,) = mailbox
    assert "60 hours" in mail.subject


def test_the_clock_is_on_the_schedule():
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "tidings.breaches.tasks.escalate_breach_clocks" in tasks
