"""Two schedulers at once (two beats, or a re-delivered task beside a fresh one): every
contact's step runs once and its message is queued once (PostgreSQL's row locks; the
unique (step, contact) and (campaign, contact) constraints hold whatever else happens)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.automations.conftest import at_once, welcome_series
from tidings.audience import services as audience
from tidings.automations import engine, services
from tidings.automations.models import Automation, Enrolment, StepRun
from tidings.sending.models import Delivery

CONTACTS = 120


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_run_each_step_once_for_each_contact(
    account, newsletter, customer, mailoutbox
):
    automation = welcome_series(account, newsletter, customer, waits=(0, 1))
    services.start(automation, by=customer)
    for i in range(CONTACTS):
        audience.add_contact(account, f"reader{i}@example.net", lists=[newsletter])
    now = timezone.now()
    engine.run(now)  # everyone enters and gets the first step
    start = threading.Barrier(2)

    def scheduler() -> None:
        start.wait()
        while engine.run_due(now + timedelta(days=1, seconds=1), limit=10)[0]:
            pass

    errors = at_once(scheduler)
    assert errors == []
    assert StepRun.objects.count() == 2 * CONTACTS
    assert Delivery.objects.count() == 2 * CONTACTS
    assert set(Enrolment.objects.values_list("status", flat=True)) == {Enrolment.Status.DONE}
    per_recipient = Counter(m.to[0] for m in mailoutbox)
    assert len(per_recipient) == CONTACTS and set(per_recipient.values()) == {2}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_scheduler_leaves_an_automation_being_edited_for_its_next_pass(
    account, newsletter, customer, mailoutbox
):
    automation = welcome_series(account, newsletter, customer, waits=(0, 1))
    services.start(automation, by=customer)
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now()
    engine.run(now)
    locked, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def editor() -> None:
        # An edit's transaction holds the automation's row, as services' edits do.
        try:
            with transaction.atomic():
                Automation.objects.select_for_update().get(pk=automation.pk)
                locked.set()
                release.wait(10)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=editor)
    thread.start()
    assert locked.wait(10)
    later = now + timedelta(days=1, seconds=1)
    try:
        assert engine.run_due(later) == (0, 0)  # not waiting on the lock: skipped
        assert StepRun.objects.count() == 1
    finally:
        release.set()
        thread.join()
    assert errors == []
    assert engine.run_due(later) == (1, 1)  # the next pass runs it, once
    assert StepRun.objects.count() == 2
