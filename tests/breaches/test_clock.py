"""Each obligation's clock escalates to the privacy officers at a third, two thirds and
five sixths of its own time and when it is missed (24, 48, 60 and 72 hours for the
72-hour ones), once per step and obligation even with two runs at once, and stops for
an obligation once it is met (P33). Time-travel tests: the clock is moved, nothing
sleeps."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from django.db import close_old_connections, connection
from django.utils import timezone

from tests.breaches.test_report import scoped_breach
from tests.factories import StaffFactory
from tidings.accounts.models import User
from tidings.breaches import obligations, services
from tidings.celery import app


def _escalate_at(hours: float, aware_at) -> int:  # type: ignore[no-untyped-def]
    with time_machine.travel(aware_at + timedelta(hours=hours), tick=False):
        return services.escalate_clocks()


@pytest.mark.promise("P33")
def test_officers_are_mailed_at_24_48_60_hours_and_when_the_deadline_is_missed(
    mailbox, privacy_officer, operator_admin, acme, settings
):
    settings.OPERATOR = {**settings.OPERATOR, "authority_name": "the Commissioner's office"}
    incident = scoped_breach(privacy_officer, aware_hours_ago=0)
    aware = incident.aware_at
    assert _escalate_at(23, aware) == 0
    steps = [_escalate_at(h, aware) for h in (24.5, 30, 48.1, 60.2, 60.3, 73, 90)]
    assert steps == [1, 0, 1, 1, 0, 1, 0]
    subjects = [m.subject for m in mailbox if m.to == [privacy_officer.email]]
    assert len(subjects) == 4 and len(mailbox) == 8  # the admin is told too
    assert "24 hours" in subjects[0] and "60 hours" in subjects[2]
    assert "the deadline to tell the Commissioner's office (EU) has passed" in subjects[3]


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
    assert incident.escalations == {} and not mailbox
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


@pytest.mark.promise("P33")
def test_each_obligation_escalates_on_its_own_deadline_and_stops_once_met(
    mailbox, privacy_officer, acme, settings, monkeypatch
):
    # Texas's 30 days, its threshold taken as met (Acme has too few people for 250).
    texas = [replace(r, threshold=0) if r.jurisdiction == "US-TX" else r for r in obligations.RULES]
    monkeypatch.setattr(obligations, "RULES", tuple(texas))
    settings.BREACHES = {"jurisdictions": ["US-TX"]}
    incident = scoped_breach(privacy_officer, aware_hours_ago=0)
    aware = incident.aware_at
    assert _escalate_at(24.5, aware) == 1
    with time_machine.travel(aware + timedelta(hours=30), tick=False):
        services.file_report(incident, by=privacy_officer)  # the operator's authority
        services.send_notices(incident, by=privacy_officer)  # both of Acme's roles
    mailbox.clear()
    # The 72-hour obligations are met: only Texas's clock runs, on its 30 days.
    days = [3.1, 9.9, 10.1, 11, 20.1, 24.9, 25.1]
    assert [_escalate_at(d * 24, aware) for d in days] == [0, 0, 1, 0, 1, 0, 1]
    subjects = [m.subject for m in mailbox if m.to == [privacy_officer.email]]
    assert subjects == [
        f"Breach {incident.pk}: 240 hours since awareness, not reported yet",
        f"Breach {incident.pk}: 480 hours since awareness, not reported yet",
        f"Breach {incident.pk}: 600 hours since awareness, not reported yet",
    ]
    assert "the Texas Attorney General (US-TX)" in mailbox[0].body
    assert settings.OPERATOR["authority_name"] not in mailbox[0].body  # filed: stopped
    incident.refresh_from_db()
    assert incident.escalations["authority:US-TX"] == 3
    with time_machine.travel(aware + timedelta(days=26), tick=False):
        to_texas = services.file_report(incident, by=privacy_officer, jurisdiction="US-TX")
    # Its own deadline and lateness: 30 days, not the first filing's 72 hours.
    assert to_texas.deadline == aware + timedelta(days=30) and not to_texas.late
    assert [_escalate_at(d * 24, aware) for d in (30.1, 40)] == [0, 0]
    incident.refresh_from_db()
    assert incident.clock_done  # every obligation met: the job skips it now


@pytest.mark.promise("P33")
def test_an_obligation_without_a_fixed_time_follows_the_policys_72_hours(
    mailbox, privacy_officer, acme, settings
):
    settings.BREACHES = {"jurisdictions": ["CH"]}  # "as soon as possible"
    incident = scoped_breach(privacy_officer, aware_hours_ago=0)
    aware = incident.aware_at
    assert _escalate_at(24.5, aware) == 1
    assert "FDPIC) (CH)" in mailbox[-1].body and "the policy's 72 hours" in mailbox[-1].body
    with time_machine.travel(aware + timedelta(hours=30), tick=False):
        services.file_report(incident, by=privacy_officer)
        services.send_notices(incident, by=privacy_officer)
    assert _escalate_at(48.1, aware) == 1  # the Swiss authority is not told yet
    body = mailbox[-1].body
    assert "FDPIC" in body and "account #" not in body
    assert settings.OPERATOR["authority_name"] not in body  # filed: its clock stopped
    assert _escalate_at(73, aware) == 1
    assert "the deadline to tell the Federal Data Protection" in mailbox[-1].subject
    assert _escalate_at(90, aware) == 0


@pytest.mark.promise("P33")
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_each_escalation_once(mailbox, privacy_officer, acme):
    incident = scoped_breach(privacy_officer, aware_hours_ago=0)
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def run() -> None:
        try:
            with time_machine.travel(incident.aware_at + timedelta(hours=24.5), tick=False):
                barrier.wait()
                counts.append(services.escalate_clocks())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_old_connections()
    assert sorted(counts) == [0, 1]
    assert len([m for m in mailbox if m.to == [privacy_officer.email]]) == 1
    assert _escalate_at(25, incident.aware_at) == 0


@pytest.mark.promise("P33")
def test_an_officer_address_the_pipeline_refuses_does_not_stop_the_clock(
    mailbox, privacy_officer, acme, settings
):
    # `tidings createadmin`'s default admin on a fresh instance: admin@localhost.
    StaffFactory(email="admin@localhost", staff_role=User.StaffRole.ADMIN)
    incident = scoped_breach(privacy_officer, aware_hours_ago=0)
    assert _escalate_at(24.5, incident.aware_at) == 1
    assert [m.to for m in mailbox] == [[privacy_officer.email]]
    # With only that one, the operator's privacy address is told instead.
    User.objects.filter(pk=privacy_officer.pk).update(is_active=False)
    assert _escalate_at(48.5, incident.aware_at) == 1
    assert mailbox[-1].to == [settings.OPERATOR["privacy_email"]]
