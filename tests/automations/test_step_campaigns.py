"""An automation's step messages are campaigns only the automation sends: they are not
"sending now" on the dashboard, and one the customer cancels takes nobody more."""

from __future__ import annotations

from django.utils import timezone

from tidings.audience import services as audience
from tidings.automations import engine, services
from tidings.automations.models import Automation, Enrolment
from tidings.campaigns.models import Campaign
from tidings.sending import dashboard, lifecycle
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
