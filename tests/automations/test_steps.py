"""The steps of an automation: waits (a duration, or until a weekday and time), a
condition that goes on, jumps to a later step or leaves, tag and list changes through
the audience's own services (a list's consent proof says why), leaving; each once per
contact in the same exactly-once machinery; and editing a running automation (a
changed wait, an inserted or removed step) skips and repeats nobody's step."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.automations.conftest import welcome_series
from tidings.audience import services as audience
from tidings.audience.models import ConsentProof, Contact, MailingList, Subscription
from tidings.automations import engine, services, timing
from tidings.automations.forms import StepForm
from tidings.automations.models import Automation, Enrolment, Step, StepRun
from tidings.automations.services import AutomationError
from tidings.campaigns.models import Campaign
from tidings.sending import tokens, tracking
from tidings.sending.models import Delivery, SendingSettings

E = Enrolment.Status
K = Step.Kind


def send(automation, customer, subject, wait_days=0, **kw):  # type: ignore[no-untyped-def]
    return services.add_step(
        automation,
        wait_days=wait_days,
        subject=subject,
        from_email="news@news.example.org",
        body=f"<p>{subject}</p>",
        by=customer,
        **kw,
    )


def test_waits_conditions_tags_lists_and_leaving_run_once_each(
    account, newsletter, customer, mailbox
):
    pros = MailingList.objects.create(account=account, name="Pros")
    flow = services.create_automation(account, name="Nurture", mailing_list=newsletter, by=customer)
    send(flow, customer, "Hello")
    services.add_step(flow, kind=K.WAIT, wait_amount=2, wait_unit="hours", by=customer)
    condition = services.add_step(
        flow, kind=K.CONDITION, test="equals", key="plan", value="pro", by=customer
    )
    services.add_step(flow, kind=K.ADD_TO_LIST, target_list=pros, by=customer)
    tag = services.add_step(flow, kind=K.ADD_TAG, tag="nurtured", by=customer)
    services.add_step(flow, kind=K.REMOVE_TAG, tag="new", by=customer)
    services.add_step(flow, kind=K.LEAVE, by=customer)
    send(flow, customer, "Never sent")
    services.update_step(condition, otherwise=tag, by=customer)  # not met: jump to the tag
    services.start(flow, by=customer)
    pro = audience.add_contact(
        account, "pro@example.net", lists=[newsletter], attributes={"plan": "pro"}, tags=["new"]
    )
    free = audience.add_contact(
        account, "free@example.net", lists=[newsletter], attributes={"plan": "free"}, tags=["new"]
    )
    now = timezone.now()
    engine.run(now)
    assert sorted(m.to[0] for m in mailbox) == ["free@example.net", "pro@example.net"]
    engine.run(now + timedelta(hours=1))
    assert set(Enrolment.objects.values_list("step__kind", flat=True)) == {K.WAIT}
    engine.run(now + timedelta(hours=2, seconds=1))
    engine.run(now + timedelta(hours=2, seconds=1))  # a second pass repeats nothing
    pro.refresh_from_db()
    free.refresh_from_db()
    assert pro.tags == ["nurtured"] and free.tags == ["nurtured"]
    assert Subscription.objects.filter(mailing_list=pros, contact=pro, status="confirmed").exists()
    assert not Subscription.objects.filter(mailing_list=pros, contact=free).exists()
    proof = ConsentProof.objects.get(mailing_list=pros, contact=pro)
    assert "Nurture" in proof.note  # why they are on the list
    assert set(Enrolment.objects.values_list("status", flat=True)) == {E.EXITED}
    assert StepRun.objects.filter(contact=pro).count() == 7
    assert StepRun.objects.filter(contact=free).count() == 6  # jumped over the list
    assert len(mailbox) == 2  # the last message is after "leave"
    counts = [(s.kind, w, p) for s, w, p in engine.step_counts(flow)]
    assert counts[3] == (K.ADD_TO_LIST, 0, 1) and counts[7] == (K.SEND, 0, 0)


def test_a_condition_without_another_step_leaves(account, newsletter, customer, mailbox):
    flow = services.create_automation(account, name="VIP", mailing_list=newsletter, by=customer)
    services.add_step(flow, kind=K.CONDITION, test="has_tag", key="vip", by=customer)
    send(flow, customer, "For VIPs")
    services.start(flow, by=customer)
    audience.add_contact(account, "vip@example.net", lists=[newsletter], tags=["vip"])
    audience.add_contact(account, "no@example.net", lists=[newsletter])
    engine.run(timezone.now())
    assert [m.to for m in mailbox] == [["vip@example.net"]]
    statuses = dict(Enrolment.objects.values_list("contact__email", "status"))
    assert statuses == {"vip@example.net": E.DONE, "no@example.net": E.EXITED}


def test_a_wait_until_a_weekday_and_time_is_in_the_accounts_time_zone(account, customer):
    customer.time_zone = "Europe/Paris"
    customer.save()
    flow = services.create_automation(
        account, name="Tuesday", mailing_list=account.mailing_lists.create(name="L"), by=customer
    )  # type: ignore[attr-defined]
    step = services.add_step(flow, kind=K.WAIT, wait_weekday=1, wait_time="09:00", by=customer)
    zone = timing.account_zone(account.pk)
    assert zone == zoneinfo.ZoneInfo("Europe/Paris")
    monday = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
    assert timing.due_on_arrival(step, monday, zone) == dt.datetime(
        2026, 12, 8, 8, 0, tzinfo=dt.UTC
    )
    tuesday_late = dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC)
    assert timing.due_on_arrival(step, tuesday_late, zone) == dt.datetime(
        2026, 12, 15, 8, 0, tzinfo=dt.UTC
    )


def test_editing_a_running_automation_skips_and_repeats_nobody(
    account, newsletter, customer, mailbox
):
    flow = welcome_series(account, newsletter, customer, waits=(0, 2))
    first, second = flow.steps.order_by("position")
    services.start(flow, by=customer)
    early = audience.add_contact(account, "early@example.net", lists=[newsletter])
    now = timezone.now()
    engine.run(now)  # early got message 1 and waits 2 days for message 2
    # Insert a wait before the second message, and a tag step at the very start.
    services.add_step(
        flow, kind=K.WAIT, wait_amount=1, wait_unit="days", before=second, by=customer
    )
    services.add_step(flow, kind=K.ADD_TAG, tag="entered", before=first, by=customer)
    assert [s.kind for s in flow.steps.order_by("position")] == [K.ADD_TAG, K.SEND, K.WAIT, K.SEND]
    assert Enrolment.objects.get(contact=early).step == second  # still where they were
    # A shorter wait of the message they wait for: due at their arrival plus the new wait.
    services.update_step(second, wait_days=1, by=customer)
    waiting = Enrolment.objects.get(contact=early)
    assert waiting.due_at == waiting.arrived_at + timedelta(days=1)
    late = audience.add_contact(account, "late@example.net", lists=[newsletter])
    engine.run(timezone.now())
    late.refresh_from_db()
    assert late.tags == ["entered"]
    engine.run(now + timedelta(days=1, seconds=2))
    # early: message 2 (never the inserted steps behind them); late: waits a day more.
    assert sorted(m.subject.strip() for m in mailbox) == ["Welcome 1,", "Welcome 1,", "Welcome 2,"]
    engine.run(now + timedelta(days=3))  # late: the inserted wait is over
    engine.run(now + timedelta(days=5))  # and the message's own day
    assert [m.subject.strip() for m in mailbox].count("Welcome 2,") == 2
    for contact in (early, late):
        runs = StepRun.objects.filter(contact=contact)
        assert runs.count() == len({r.step_id for r in runs})  # nothing twice
    assert not StepRun.objects.filter(contact=early, step__kind__in=[K.ADD_TAG, K.WAIT]).exists()
    early.refresh_from_db()
    assert early.tags == []


def test_removing_the_step_contacts_wait_at_moves_them_on(account, newsletter, customer, mailbox):
    flow = welcome_series(account, newsletter, customer, waits=(0, 2, 3))
    _first, second, third = flow.steps.order_by("position")
    services.start(flow, by=customer)
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    engine.run(timezone.now())
    services.remove_step(second, by=customer)
    enrolment = Enrolment.objects.get(contact=ada)
    assert enrolment.step == third
    assert list(flow.steps.order_by("position").values_list("position", flat=True)) == [0, 1]


def test_bad_steps_are_refused_and_change_nothing(account, newsletter, customer, other_customer):
    flow = services.create_automation(account, name="F", mailing_list=newsletter, by=customer)
    send(flow, customer, "One")
    later = services.add_step(flow, kind=K.LEAVE, by=customer)
    theirs = MailingList.objects.create(account=other_customer.account, name="Theirs")
    other_flow = services.create_automation(
        other_customer.account,
        name="Other",
        mailing_list=theirs,
        by=other_customer,
    )
    foreign = services.add_step(other_flow, kind=K.LEAVE, by=other_customer)
    bad = [
        {"kind": "nonsense"},
        {"kind": K.WAIT, "wait_amount": 0, "wait_unit": "days"},
        {"kind": K.WAIT, "wait_amount": 5, "wait_unit": "weeks"},
        {"kind": K.WAIT, "wait_weekday": 9},
        {"kind": K.CONDITION, "test": "equals", "key": ""},
        {"kind": K.CONDITION, "test": "opened", "about": later},
        {"kind": K.CONDITION, "test": "has_tag", "key": "x", "otherwise": foreign},
        {"kind": K.ADD_TAG, "tag": ""},
        {"kind": K.ADD_TO_LIST, "target_list": theirs},
        {"kind": K.LEAVE, "tag": "x"},
        {"kind": K.LEAVE, "before": foreign},
    ]
    for settings in bad:
        with pytest.raises(AutomationError):
            services.add_step(flow, by=customer, **settings)
    assert flow.steps.count() == 2
    with pytest.raises(AutomationError):
        services.update_step(later, tag="x", by=customer)
    assert Automation.objects.get(pk=flow.pk).steps.count() == 2
    assert Contact.objects.count() == 0


@pytest.mark.promise("P26")
def test_a_condition_on_a_click_counts_only_what_tracking_may_record(
    account, newsletter, customer, mailbox
):
    SendingSettings.objects.update_or_create(
        account=account, defaults={"tracking": SendingSettings.Tracking.PER_CONTACT}
    )
    flow = services.create_automation(account, name="Clicks", mailing_list=newsletter, by=customer)
    message = send(flow, customer, "Look")
    services.add_step(flow, kind=K.WAIT, wait_amount=1, wait_unit="days", by=customer)
    services.add_step(flow, kind=K.CONDITION, test="clicked", about=message, by=customer)
    services.add_step(flow, kind=K.ADD_TAG, tag="clicker", by=customer)
    Campaign.objects.filter(pk=message.campaign_id).update(track_clicks=True)
    services.start(flow, by=customer)
    clicks = audience.add_contact(account, "c@example.net", lists=[newsletter])
    objected = audience.add_contact(account, "o@example.net", lists=[newsletter])
    idle = audience.add_contact(account, "i@example.net", lists=[newsletter])
    now = timezone.now()
    engine.run(now)
    Contact.objects.filter(pk=objected.pk).update(allow_tracking=False)
    for contact in (clicks, objected):
        delivery = Delivery.objects.get(contact=contact, campaign=message.campaign)
        token = tokens.TrackingToken(message.campaign.pk, delivery.pk, "https://example.org/")
        tracking.record(token, "click")
    engine.run(now + timedelta(days=1, seconds=1))
    statuses = dict(Enrolment.objects.values_list("contact__email", "status"))
    assert statuses == {
        "c@example.net": E.DONE,
        "o@example.net": E.EXITED,
        "i@example.net": E.EXITED,
    }
    assert Contact.objects.get(pk=clicks.pk).tags == ["clicker"]
    assert Contact.objects.get(pk=idle.pk).tags == []


def test_a_click_of_the_first_rounds_message_does_not_meet_the_second_rounds_condition(
    account, newsletter, customer, mailbox
):
    """Re-entry: each round's condition counts that round's message only (the
    delivery is the same row, queued again; its first round's click came before)."""
    SendingSettings.objects.update_or_create(
        account=account, defaults={"tracking": SendingSettings.Tracking.PER_CONTACT}
    )
    flow = services.create_automation(
        account,
        name="Orders",
        mailing_list=newsletter,
        by=customer,
        trigger=Automation.Trigger.EVENT,
        event_name="order.paid",
        reentry=True,
    )
    message = send(flow, customer, "Thanks")
    services.add_step(flow, kind=K.WAIT, wait_amount=1, wait_unit="days", by=customer)
    services.add_step(flow, kind=K.CONDITION, test="clicked", about=message, by=customer)
    Campaign.objects.filter(pk=message.campaign_id).update(track_clicks=True)
    services.start(flow, by=customer)
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    services.record_event(account, contact=ada, client_id="first", name="order.paid")
    now = timezone.now()
    engine.run(now)
    delivery = Delivery.objects.get(contact=ada, campaign=message.campaign)
    token = tokens.TrackingToken(message.campaign.pk, delivery.pk, "https://example.org/")
    tracking.record(token, "click")
    engine.run(now + timedelta(days=1, seconds=1))
    assert Enrolment.objects.get(contact=ada).status == E.DONE  # clicked: met
    services.record_event(account, contact=ada, client_id="second", name="order.paid")
    later = timezone.now() + timedelta(days=2)
    engine.run(later)
    enrolment = Enrolment.objects.get(contact=ada)
    assert (enrolment.round, enrolment.status) == (2, E.ACTIVE)
    engine.run(later + timedelta(days=1, seconds=1))
    enrolment.refresh_from_db()
    assert enrolment.status == E.EXITED  # no click in this round: not met
    assert StepRun.objects.filter(contact=ada, round=2).count() == 3


def test_a_step_is_chosen_by_what_it_does_and_a_message_by_its_subject(
    account, newsletter, customer
):
    """The step form's choices (insert before, the condition's message, where to go if
    not met) said only "Step 2", "Step 3"; a condition's message offered waits too."""
    flow = services.create_automation(account, name="Nurture", mailing_list=newsletter, by=customer)
    send(flow, customer, "Hello")
    services.add_step(flow, kind=K.WAIT, wait_amount=2, wait_unit="hours", by=customer)
    services.add_step(flow, kind=K.ADD_TAG, tag="warm", by=customer)
    form = StepForm(automation=flow)

    def labels(name: str) -> list[str]:
        return [str(label) for value, label in form.fields[name].choices if value != ""]

    assert labels("before") == [
        "Step 1 · send a message: “Hello”",
        "Step 2 · wait",
        "Step 3 · add a tag",
    ]
    assert labels("about") == ["Step 1 · send a message: “Hello”"]
    assert labels("otherwise") == labels("before")


def test_a_steps_message_is_named_after_its_place_as_steps_move_and_the_automation_is_renamed(
    account, newsletter, customer
):
    """ "Welcome: step 2" follows its step when one is inserted before it or removed, and
    the automation's new name; a name the customer gave the message stays."""
    flow = welcome_series(account, newsletter, customer, waits=(0, 2, 1))
    first, second, third = flow.steps.order_by("position")

    def names() -> list[str]:
        return [
            s.campaign.name
            for s in Step.objects.filter(automation=flow, kind=K.SEND).order_by("position")
        ]

    assert names() == ["Welcome: step 1", "Welcome: step 2", "Welcome: step 3"]
    third.campaign.name = "The last word"
    third.campaign.save()
    services.add_step(flow, kind=K.ADD_TAG, tag="new", before=first, by=customer)
    assert names() == ["Welcome: step 2", "Welcome: step 3", "The last word"]
    services.set_trigger(flow, trigger=flow.trigger, name="Onboarding", by=customer)
    assert names() == ["Onboarding: step 2", "Onboarding: step 3", "The last word"]
    services.remove_step(Step.objects.get(automation=flow, kind=K.ADD_TAG), by=customer)
    assert names() == ["Onboarding: step 1", "Onboarding: step 2", "The last word"]
    assert second.campaign.pk == Step.objects.get(pk=second.pk).campaign_id
