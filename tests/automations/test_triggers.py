"""The triggers of an automation: a tag added (by any path), a date attribute (yearly
or once, in the contact's or the account's time zone), a click on a campaign's link
(only where tracking may record it, P26), an event posted to the API (idempotent by
its id); each enters a contact once, or again when the automation allows re-entry."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from datetime import timedelta

import pytest
from django.utils import timezone

from tidings.audience import bulk, restriction, rights
from tidings.audience import services as audience
from tidings.audience.models import Contact, MailingList
from tidings.automations import engine, services
from tidings.automations.models import Automation, Enrolment, PendingEntry, StepRun
from tidings.automations.services import AutomationError
from tidings.campaigns import services as campaigns
from tidings.sending import tokens, tracking
from tidings.sending.models import Delivery, SendingSettings

E = Enrolment.Status
T = Automation.Trigger


def build(account, newsletter, customer, trigger, *, steps=1, **settings) -> Automation:  # type: ignore[no-untyped-def]
    automation = services.create_automation(
        account,
        name=f"On {trigger}",
        mailing_list=newsletter,
        by=customer,
        trigger=trigger,
        **settings,
    )
    for n in range(1, steps + 1):
        services.add_step(
            automation,
            wait_days=0,
            subject=f"Hello {n}",
            from_email="news@news.example.org",
            body=f"<p>Message {n}.</p>",
            by=customer,
        )
    return services.start(automation, by=customer)


def test_a_tag_added_by_any_path_enters_the_lists_subscribers_once(
    account, newsletter, customer, mailbox
):
    automation = build(account, newsletter, customer, T.TAG_ADDED, trigger_tag="vip")
    by_form = audience.add_contact(account, "a@example.net", lists=[newsletter], tags=["vip"])
    by_edit = audience.add_contact(account, "b@example.net", lists=[newsletter])
    audience.update_contact(by_edit, tags=["vip", "other"])
    by_bulk = audience.add_contact(account, "c@example.net", lists=[newsletter])
    bulk.add_tag(Contact.objects.filter(pk=by_bulk.pk), "vip")
    not_on_list = audience.add_contact(account, "d@example.net", tags=["vip"])
    other_tag = audience.add_contact(account, "e@example.net", lists=[newsletter], tags=["x"])
    assert PendingEntry.objects.count() == 4  # written by the database, no scan
    now = timezone.now()
    assert engine.run(now).entered == 3
    assert sorted(m.to[0] for m in mailbox) == ["a@example.net", "b@example.net", "c@example.net"]
    assert not PendingEntry.objects.exists()
    assert not Enrolment.objects.filter(contact__in=[not_on_list, other_tag]).exists()
    # Removing and adding the tag again: no second entry without re-entry.
    audience.update_contact(by_form, tags=[])
    audience.update_contact(by_form, tags=["vip"])
    engine.run(now + timedelta(minutes=1))
    assert len(mailbox) == 3
    assert StepRun.objects.filter(step__automation=automation).count() == 3


def test_re_entry_runs_the_steps_again_after_finishing(account, newsletter, customer, mailbox):
    automation = build(account, newsletter, customer, T.TAG_ADDED, trigger_tag="vip", reentry=True)
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter], tags=["vip"])
    now = timezone.now()
    engine.run(now)
    assert Enrolment.objects.get(contact=ada).status == E.DONE
    audience.update_contact(ada, tags=[])
    audience.update_contact(ada, tags=["vip"])
    engine.run(now + timedelta(minutes=1))
    engine.run(now + timedelta(minutes=2))
    enrolment = Enrolment.objects.get(contact=ada)
    assert (enrolment.status, enrolment.round) == (E.DONE, 2)
    assert [m.subject for m in mailbox] == ["Hello 1", "Hello 1"]
    assert StepRun.objects.filter(step__automation=automation, contact=ada).count() == 2


def test_a_date_attribute_enters_at_the_time_in_the_contacts_time_zone(
    account, newsletter, customer, mailbox
):
    now = timezone.now().replace(microsecond=0)
    tomorrow = (now + timedelta(days=2)).date()
    build(account, newsletter, customer, T.DATE, date_attribute="birthday", date_time="08:30")
    tokyo = audience.add_contact(
        account,
        "tokyo@example.net",
        lists=[newsletter],
        attributes={"birthday": tomorrow.replace(year=1990).isoformat(), "time_zone": "Asia/Tokyo"},
    )
    plain = audience.add_contact(
        account,
        "plain@example.net",
        lists=[newsletter],
        attributes={"birthday": tomorrow.replace(year=1985).isoformat()},
    )
    audience.add_contact(account, "none@example.net", lists=[newsletter])
    assert engine.run(now).entered == 2  # enrolled ahead, due at the date
    due = Enrolment.objects.get(contact=tokyo).due_at
    assert due == dt.datetime.combine(
        tomorrow, dt.time(8, 30), tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo")
    )
    other = Enrolment.objects.get(contact=plain).due_at
    assert other == dt.datetime.combine(tomorrow, dt.time(8, 30), tzinfo=zoneinfo.ZoneInfo("UTC"))
    engine.run(due - timedelta(minutes=1))
    assert mailbox == []
    engine.run(due + timedelta(seconds=1))
    assert [m.to for m in mailbox] == [["tokyo@example.net"]]
    # The hourly sweep does not enrol them again while they are in it.
    assert engine.run(now + timedelta(hours=2)).entered == 0


def test_a_date_once_in_the_past_enters_nobody(account, newsletter, customer):
    build(account, newsletter, customer, T.DATE, date_attribute="renewal", date_yearly=False)
    audience.add_contact(
        account, "late@example.net", lists=[newsletter], attributes={"renewal": "2001-01-01"}
    )
    assert engine.run(timezone.now()).entered == 0


@pytest.mark.promise("P26")
def test_a_click_enters_only_who_may_be_tracked(account, newsletter, customer, mailbox):
    SendingSettings.objects.update_or_create(
        account=account, defaults={"tracking": SendingSettings.Tracking.PER_CONTACT}
    )
    news = campaigns.create_campaign(
        account,
        by=customer,
        lists=[newsletter],
        name="News",
        subject="News",
        from_email="news@news.example.org",
        body='<p><a href="https://shop.example.org/sale">Sale</a></p>',
    )
    build(
        account,
        newsletter,
        customer,
        T.CLICKED,
        trigger_campaign=news,
        trigger_url="https://shop.example.org/sale",
    )
    tracked = audience.add_contact(account, "t@example.net", lists=[newsletter])
    objected = audience.add_contact(account, "o@example.net", lists=[newsletter])
    Contact.objects.filter(pk=objected.pk).update(allow_tracking=False)
    for contact in (tracked, objected):
        delivery = Delivery.objects.create(campaign=news, contact=contact, status="sent")
        url = "https://shop.example.org/sale"
        tracking.record(tokens.TrackingToken(news.pk, delivery.pk, url), "click")
    assert engine.run(timezone.now()).entered == 1
    assert Enrolment.objects.get().contact == tracked


def test_an_event_enters_the_automations_listening_once_per_id(
    account, newsletter, customer, other_customer
):
    automation = build(account, newsletter, customer, T.EVENT, event_name="order.paid")
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    assert services.record_event(account, contact=ada, client_id="evt-1", name="order.paid") == (
        True,
        1,
    )
    assert services.record_event(account, contact=ada, client_id="evt-1", name="order.paid") == (
        False,
        0,
    )
    assert services.record_event(account, contact=ada, client_id="evt-2", name="other") == (True, 0)
    assert engine.run(timezone.now()).entered == 1
    theirs = audience.add_contact(other_customer.account, "t@example.net")
    with pytest.raises(AutomationError):
        services.record_event(account, contact=theirs, client_id="evt-3", name="order.paid")
    with pytest.raises(AutomationError):
        services.record_event(
            other_customer.account, contact=theirs, client_id="evt-4", automation=automation
        )
    assert PendingEntry.objects.count() == 0


@pytest.mark.promise("P21")
def test_an_event_answers_only_the_automations_the_contact_enters(account, newsletter, customer):
    """The API's answer goes by the scheduler's rule of entry: not for a contact who
    unsubscribed, nor one off the list, nor one in it already (no re-entry)."""
    build(account, newsletter, customer, T.EVENT, event_name="order.paid")
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter])
    off = audience.add_contact(account, "off@example.net")
    gone = audience.add_contact(account, "gone@example.net", lists=[newsletter])
    audience.unsubscribe(gone, newsletter)
    paid = {"name": "order.paid"}
    assert services.record_event(account, contact=off, client_id="e-1", **paid) == (True, 0)
    assert services.record_event(account, contact=gone, client_id="e-2", **paid) == (True, 0)
    assert services.record_event(account, contact=ada, client_id="e-3", **paid) == (True, 1)
    assert engine.run(timezone.now()).entered == 1
    assert services.record_event(account, contact=ada, client_id="e-4", **paid) == (True, 0)
    assert list(Enrolment.objects.values_list("contact__email", flat=True)) == ["ada@example.net"]


@pytest.mark.promise("P21")
def test_leaving_at_once_holds_for_every_trigger_and_a_paused_automation(
    account, newsletter, customer, mailbox
):
    automation = build(account, newsletter, customer, T.TAG_ADDED, steps=2, trigger_tag="vip")
    step = automation.steps.order_by("position").last()
    services.update_step(step, wait_days=3, by=customer)
    ada = audience.add_contact(account, "ada@example.net", lists=[newsletter], tags=["vip"])
    now = timezone.now()
    engine.run(now)
    services.pause(automation, by=customer)
    audience.unsubscribe(ada)
    assert engine.run(now + timedelta(seconds=1)).left == 1
    assert Enrolment.objects.get(contact=ada).status == E.LEFT
    services.start(automation, by=customer)
    engine.run(now + timedelta(days=4))
    assert [m.subject for m in mailbox] == ["Hello 1"]


def test_bad_trigger_settings_are_refused_and_change_nothing(
    account, newsletter, customer, other_customer
):
    theirs = campaigns.create_campaign(
        other_customer.account,
        by=other_customer,
        lists=[MailingList.objects.create(account=other_customer.account, name="L")],
        name="Theirs",
        subject="s",
        from_email="a@example.org",
        body="b",
    )
    for trigger, settings in [
        (T.TAG_ADDED, {"trigger_tag": "  "}),
        (T.DATE, {"date_attribute": ""}),
        (T.DATE, {"date_attribute": "birthday", "date_time": "25:99"}),
        (T.CLICKED, {"trigger_campaign": theirs}),
        (T.EVENT, {"event_name": "has space"}),
        ("nonsense", {}),
    ]:
        with pytest.raises(AutomationError):
            services.create_automation(
                account, name="x", mailing_list=newsletter, by=customer, trigger=trigger, **settings
            )
    assert not Automation.objects.exists()


@pytest.mark.promise("P18")
@pytest.mark.promise("P21")
def test_a_restricted_or_objecting_contact_enters_nothing_and_leaves_a_date_automation(
    account, newsletter, customer, mailbox
):
    tagged = build(account, newsletter, customer, T.TAG_ADDED, trigger_tag="vip")
    dated = build(account, newsletter, customer, T.DATE, date_attribute="renewal")
    soon = (timezone.now() + timedelta(days=3)).date().isoformat()
    held = audience.add_contact(account, "held@example.net", lists=[newsletter])
    restriction.restrict(held, reason="accuracy contested")
    objecting = audience.add_contact(account, "o@example.net", lists=[newsletter])
    rights.request_from_contact(objecting, kind="objection")
    for contact in (held, objecting):
        audience.update_contact(contact, tags=["vip"], attributes={"renewal": soon})
    waiting = audience.add_contact(
        account, "w@example.net", lists=[newsletter], attributes={"renewal": soon}
    )
    now = timezone.now()
    engine.run(now)
    assert not Enrolment.objects.filter(contact__in=[held, objecting]).exists()
    assert Enrolment.objects.get(contact=waiting).automation == dated
    restriction.restrict(waiting, reason="objection pending")
    assert engine.run(now + timedelta(seconds=1)).left == 1
    engine.run(now + timedelta(days=5))
    assert not [m for m in mailbox if m.subject.startswith("Hello")]  # notices only
    assert not StepRun.objects.filter(step__automation=tagged).exists()
