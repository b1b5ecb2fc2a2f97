"""A welcome series: contacts who subscribe enter once, each step waits then sends its
message through the campaign engine, once per contact, whatever runs twice; whoever may
no longer be mailed leaves every automation at once (P21)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.automations.conftest import welcome_series
from tidings.audience import restriction, rights
from tidings.audience import services as audience
from tidings.audience.models import MailingList
from tidings.automations import engine, services
from tidings.automations.models import Automation, Enrolment, StepRun
from tidings.automations.services import AutomationError
from tidings.sending import engine as sending_engine
from tidings.sending.models import Delivery

E = Enrolment.Status


def subjects(mailbox) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(m.subject for m in mailbox)


def counts(automation: Automation) -> list[tuple[int, int]]:
    return [(waiting, passed) for _, waiting, passed in engine.step_counts(automation)]


def test_a_welcome_series_sends_each_step_once_after_its_wait(
    account, newsletter, welcome, customer, mailbox
):
    audience.add_contact(account, "early@example.net", lists=[newsletter])
    services.start(welcome, by=customer)
    ada = audience.add_contact(account, "ada@example.net", name="Ada Byron", lists=[newsletter])
    now = timezone.now()
    assert engine.run(now).entered == 1  # only who subscribed since it started
    assert subjects(mailbox) == ["Welcome 1, Ada"]
    assert "Message 1 for Ada Byron" in mailbox[0].body
    engine.run(now)
    engine.run(now + timedelta(days=1))
    assert len(mailbox) == 1  # the second step waits two days
    assert counts(welcome) == [(0, 1), (1, 0)]
    engine.run(now + timedelta(days=2, seconds=1))
    engine.run(now + timedelta(days=3))
    assert subjects(mailbox) == ["Welcome 1, Ada", "Welcome 2, Ada"]
    assert Enrolment.objects.get(contact=ada).status == E.DONE
    assert counts(welcome) == [(0, 1), (0, 1)]
    assert set(Delivery.objects.filter(contact=ada).values_list("status", flat=True)) == {"sent"}


def test_a_due_step_taken_twice_runs_once(account, newsletter, welcome, customer, mailbox):
    services.start(welcome, by=customer)
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    now = timezone.now()
    engine.run(now)
    # As if a second scheduler had found the same enrolment due again.
    Enrolment.objects.update(
        step=welcome.steps.order_by("position").first(), due_at=now, status=E.ACTIVE
    )
    engine.run(now)
    assert StepRun.objects.count() == 1
    assert Delivery.objects.count() == 1
    assert len(mailbox) == 1


def test_a_paused_automation_holds_its_contacts_and_resumes_where_they_were(
    account, newsletter, welcome, customer, mailbox
):
    services.start(welcome, by=customer)
    audience.add_contact(account, "ada@example.net", name="Ada", lists=[newsletter])
    now = timezone.now()
    engine.run(now)
    services.pause(welcome, by=customer)
    engine.run(now + timedelta(days=3))
    assert len(mailbox) == 1
    services.start(welcome, by=customer)
    engine.run(now + timedelta(days=3))
    assert subjects(mailbox) == ["Welcome 1, Ada", "Welcome 2, Ada"]


@pytest.mark.promise("P21")
def test_unsubscribing_objecting_or_restriction_takes_a_contact_out_of_every_automation(
    account, newsletter, welcome, customer, mailbox
):
    other = welcome_series(account, newsletter, customer, waits=(1, 1))
    other.name = "Tips"
    other.save()
    services.start(welcome, by=customer)
    services.start(other, by=customer)
    leaving = {
        "unsubscribes": audience.add_contact(account, "u@example.net", lists=[newsletter]),
        "objects": audience.add_contact(account, "o@example.net", lists=[newsletter]),
        "is restricted": audience.add_contact(account, "r@example.net", lists=[newsletter]),
    }
    stays = audience.add_contact(account, "stays@example.net", lists=[newsletter])
    now = timezone.now()
    engine.run(now)
    assert len(mailbox) == 4  # the first step of the welcome series, to each of them
    audience.unsubscribe(leaving["unsubscribes"])
    rights.request_from_contact(leaving["objects"], kind="objection")
    restriction.restrict(leaving["is restricted"], reason="accuracy contested")
    engine.run(now + timedelta(seconds=1))
    for contact in leaving.values():
        assert set(Enrolment.objects.filter(contact=contact).values_list("status", flat=True)) == {
            E.LEFT
        }
    assert Enrolment.objects.filter(contact=stays, status=E.ACTIVE).count() == 2
    mailbox.clear()
    engine.run(now + timedelta(days=5))
    # The welcome series' second step and the tips' first: to the one who stayed.
    assert [m.to for m in mailbox] == [["stays@example.net"]] * 2


@pytest.mark.promise("P21")
def test_the_engine_skips_a_queued_step_message_of_someone_who_objected_meanwhile(
    account, newsletter, welcome, customer, mailoutbox
):
    # No on-commit run: the step's delivery is queued, not yet sent, when they object.
    services.start(welcome, by=customer)
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    engine.run(timezone.now())
    rights.request_from_contact(ada, kind="objection")
    delivery = Delivery.objects.get(contact=ada)
    sending_engine.send_batch(delivery.campaign_id, delivery.pk, delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SKIPPED and mailoutbox == []


def test_bad_input_changes_nothing(account, newsletter, other_customer, customer):
    elsewhere = MailingList.objects.create(account=other_customer.account, name="Theirs")
    with pytest.raises(AutomationError):
        services.create_automation(account, name="x", mailing_list=elsewhere, by=customer)
    with pytest.raises(AutomationError):
        services.create_automation(account, name="   ", mailing_list=newsletter, by=customer)
    automation = services.create_automation(
        account, name="Empty", mailing_list=newsletter, by=customer
    )
    with pytest.raises(AutomationError, match="step"):
        services.start(automation, by=customer)
    with pytest.raises(AutomationError):
        services.add_step(automation, wait_days=-1, subject="s", from_email="a@b.org", by=customer)
    assert Automation.objects.count() == 1 and not automation.steps.exists()
    automation.refresh_from_db()
    assert automation.status == Automation.Status.DRAFT


def test_a_welcome_series_waits_by_the_test_clock(
    test_clock, account, newsletter, customer, mailbox
):
    series = welcome_series(account, newsletter, customer, waits=(0, 2))
    services.start(series, by=customer)
    audience.add_contact(account, "ada@example.net", name="Ada Byron", lists=[newsletter])
    engine.run()
    assert len(mailbox) == 1
    test_clock.advance(timedelta(days=1))
    engine.run()
    assert len(mailbox) == 1  # a day is not two
    test_clock.advance(timedelta(days=1, minutes=1))
    engine.run()
    assert sorted(m.subject for m in mailbox) == ["Welcome 1, Ada", "Welcome 2, Ada"]


@pytest.mark.parametrize("trigger", ["list", "event"])
def test_a_first_wait_counts_from_the_entry_on_the_test_clock(
    trigger, test_clock, account, newsletter, customer, mailbox
):
    """What fires a trigger is stamped with the real time; once the clock was moved a day
    ahead, the first wait (two hours) must still be waited, not skipped by the offset."""
    test_clock.advance(timedelta(days=1))
    automation = services.create_automation(
        account,
        name="Order follow-up",
        mailing_list=newsletter,
        by=customer,
        trigger=Automation.Trigger.JOINED_LIST if trigger == "list" else Automation.Trigger.EVENT,
        event_name="" if trigger == "list" else "order.placed",
    )
    services.add_step(automation, kind="wait", wait_amount=2, wait_unit="hours", by=customer)
    services.add_step(
        automation,
        wait_days=0,
        subject="How was it?",
        from_email="a@b.org",
        body="<p>Tell us.</p>",
        by=customer,
    )
    services.start(automation, by=customer)
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    if trigger == "event":
        services.record_event(account, contact=ada, client_id="o-1", name="order.placed")
    assert engine.run().entered == 1
    assert mailbox == []
    test_clock.advance(timedelta(hours=1))
    engine.run()
    assert mailbox == []  # an hour is not two
    test_clock.advance(timedelta(hours=1, minutes=1))
    engine.run()
    assert [m.subject for m in mailbox] == ["How was it?"]
