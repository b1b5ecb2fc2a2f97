"""An automation's step messages are campaigns only the automation sends: they are not
"sending now" on the dashboard, one the customer cancels takes nobody more, and their
links live as long as they are sent."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

import time_machine
from django.conf import settings
from django.utils import timezone

from tests.factories import campaign_status
from tidings.audience import services as audience
from tidings.automations import engine, services
from tidings.automations.models import Automation, Enrolment
from tidings.campaigns.models import Campaign
from tidings.sending import dashboard, lifecycle, reports, tracking
from tidings.sending.models import Delivery
from tidings.staff.models import AuditEvent


def test_step_messages_are_not_sending_now_on_the_dashboard(account, newsletter, welcome, customer):
    services.start(welcome, by=customer)
    assert dashboard.sending_now(account) == []


def test_a_cancelled_step_message_pauses_the_automation_and_takes_nobody(
    account, newsletter, welcome, customer, mailbox
):
    services.start(welcome, by=customer)
    first = welcome.steps.order_by("position").first()
    lifecycle.cancel_campaign(Campaign.objects.get(pk=first.campaign_id))
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    engine.run(timezone.now())
    welcome.refresh_from_db()
    assert welcome.status == Automation.Status.PAUSED
    assert Delivery.objects.count() == 0 and mailbox == []
    assert Enrolment.objects.get().step == first  # waiting where they were


def test_the_engines_pause_of_an_automation_is_audited(account, newsletter, welcome, customer):
    services.start(welcome, by=customer)
    first = welcome.steps.order_by("position").first()
    lifecycle.cancel_campaign(Campaign.objects.get(pk=first.campaign_id))
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    engine.run(timezone.now())
    (paused,) = AuditEvent.objects.filter(
        target_type="automations.Automation", target_id=str(welcome.pk), action="update"
    ).exclude(reason="started")
    assert (paused.fields, paused.actor_kind) == (["status"], "system")
    assert (paused.account_id, paused.reason) == (account.pk, engine.STEP_NOT_SENDING)


def _click_link(message) -> str:  # type: ignore[no-untyped-def]
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    (link,) = [u for u in re.findall(r'href="([^"]+)"', html) if "/t/c/" in u]
    return link.replace("&amp;", "&").removeprefix("http://127.0.0.1:8000")


def _link_reached_after_its_lifetime(account, newsletter, customer, mailbox):  # type: ignore[no-untyped-def]
    """A one-step series whose message has a tracked link, started now; a contact who
    reaches the step 30 days after the links' lifetime. Returns (welcome, step, when
    they reached it, the click link they were mailed)."""
    welcome = services.create_automation(
        account, name="Welcome", mailing_list=newsletter, by=customer
    )
    services.add_step(
        welcome,
        wait_days=0,
        subject="Welcome",
        from_email="news@news.example.org",
        body='<p>Read <a href="https://example.org/start">how to start</a>.</p>',
        by=customer,
    )
    step = welcome.steps.get()
    Campaign.objects.filter(pk=step.campaign_id).update(track_clicks=True)
    services.start(welcome, by=customer)
    later = timezone.now() + timedelta(days=settings.SENDING["click_link_days"] + 30)
    with time_machine.travel(later, tick=False):
        audience.add_contact(account, "ada@example.net", lists=[newsletter])
        engine.run(later)
    (message,) = mailbox
    return welcome, step, later, _click_link(message)


def test_a_step_messages_links_work_for_who_reaches_it_after_the_links_lifetime(
    account, newsletter, customer, client, mailbox
):
    """A link expires TIDINGS_CLICK_LINK_DAYS after its message was sent. A step's
    message is sent for as long as its automation runs: its links count from the day it
    stops, not from the day it was written."""
    _welcome, step, later, click = _link_reached_after_its_lifetime(
        account, newsletter, customer, mailbox
    )
    days = settings.SENDING["click_link_days"]
    with time_machine.travel(later, tick=False):
        response = client.get(click)
    assert response.status_code == 302
    assert response["Location"] == "https://example.org/start"

    def click_on(day: int):  # type: ignore[no-untyped-def]
        # Days later: the check kept a minute with Redis is long gone.
        tracking.forget_click_checks(step.campaign_id)
        with time_machine.travel(later + timedelta(days=day), tick=False):
            return client.get(click)

    # Once it is no longer sent, its links live their days from then, and no longer.
    with time_machine.travel(later + timedelta(days=1), tick=False):
        lifecycle.cancel_campaign(Campaign.objects.get(pk=step.campaign_id))
    assert click_on(days).status_code == 302
    response = click_on(days + 2)
    assert response.status_code == 410 and "Location" not in response


def test_figures_of_a_step_message_but_none_of_a_campaign_cancelled_before_it_started(
    account, newsletter, welcome, customer, mailbox
):
    """The campaigns list's figures: a step message is never "started" and has them from
    its first day; a campaign scheduled, then cancelled before its time, sent nothing."""
    services.start(welcome, by=customer)
    audience.add_contact(account, "ada@example.net", lists=[newsletter])
    engine.run(timezone.now())
    step_message = Campaign.objects.get(pk=welcome.steps.order_by("position").first().campaign_id)
    never_went = Campaign.objects.create(
        account=account, name="Never went", subject="Hi", from_email="news@news.example.org",
        **campaign_status(Campaign.Status.CANCELLED),
    )  # fmt: skip
    rates = reports.key_rates([step_message, never_went])
    assert rates[step_message.pk]["sent"] == 1
    assert never_went.pk not in rates


def test_removing_a_send_step_stops_its_message_whose_links_count_from_then(
    account, newsletter, customer, client, mailbox
):
    """Untied from its removed step, an open message would read as a campaign sending
    for ever, its links never expiring: it is stopped, and they count from then."""
    welcome, step, later, click = _link_reached_after_its_lifetime(
        account, newsletter, customer, mailbox
    )
    days = settings.SENDING["click_link_days"]
    with time_machine.travel(later, tick=False):
        services.remove_step(step, by=customer)
    stopped = Campaign.objects.get(pk=step.campaign_id)
    assert stopped.status == Campaign.Status.CANCELLED and stopped.finished_at == later
    assert Delivery.objects.get(campaign=stopped).status == Delivery.Status.SENT
    assert lifecycle.automation_step_of(stopped) is None
    # What it sent stays in the campaigns list's figures, with its report.
    assert reports.key_rates([stopped])[stopped.pk]["sent"] == 1
    welcome.refresh_from_db()
    assert welcome.status == Automation.Status.ACTIVE and not welcome.steps.exists()

    def click_on(day: int):  # type: ignore[no-untyped-def]
        tracking.forget_click_checks(stopped.pk)
        with time_machine.travel(later + timedelta(days=day), tick=False):
            return client.get(click)

    assert click_on(days - 1).status_code == 302
    assert click_on(days + 1).status_code == 410


def test_removing_a_send_step_of_an_automation_never_started_deletes_its_draft(
    account, newsletter, customer
):
    flow = services.create_automation(account, name="Flow", mailing_list=newsletter, by=customer)
    services.add_step(
        flow, wait_days=0, subject="Hi", from_email="news@news.example.org", body="<p>Hi</p>",
        by=customer,
    )  # fmt: skip
    kept = Campaign.objects.create(
        account=account, name="My own draft", subject="Mine", from_email="news@news.example.org"
    )
    step = flow.steps.get()
    services.remove_step(step, by=customer)
    assert not Campaign.objects.filter(pk=step.campaign_id).exists()
    assert Campaign.objects.filter(pk=kept.pk).exists()  # a draft of no step stays
