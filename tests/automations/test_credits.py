"""Automations and A/B tests pay for their messages as campaigns do: one credit each
(billing.credits), through the campaign lifecycle; none goes out on credits the
account does not have."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import campaign_status
from tests.sending.conftest import add_contacts
from tidings.audience import services as audience
from tidings.automations import engine, services, splittests
from tidings.automations.models import Enrolment, SplitTest
from tidings.automations.splittests import SplitTestError
from tidings.billing import credits
from tidings.billing.models import CreditEntry
from tidings.campaigns.models import Campaign
from tidings.sending.models import Delivery

E = Enrolment.Status


@pytest.fixture
def few_credits(settings):  # type: ignore[no-untyped-def]
    settings.BILLING = {**settings.BILLING, "free_credits": 3, "credits_required": True}


def give(account, n: int) -> None:  # type: ignore[no-untyped-def]
    """Credits as staff would add them: a ledger entry and the balance, together."""
    CreditEntry.objects.create(account=account, kind=CreditEntry.Kind.ADJUST, credits=n)
    credits._add(account, n)


def test_each_step_message_costs_a_credit_and_those_not_covered_wait(
    few_credits, account, newsletter, welcome, customer, mailbox
):
    services.start(welcome, by=customer)
    for n in range(5):
        audience.add_contact(account, f"reader{n}@example.net", lists=[newsletter])
    now = timezone.now()
    engine.run(now)
    # Three credits: three first steps go, two contacts wait an hour at their step.
    assert len(mailbox) == 3
    assert credits.balance_of(account).available == 0
    entry = CreditEntry.objects.get(account=account, kind=CreditEntry.Kind.STEP)
    assert (entry.credits, entry.messages) == (-3, 3)
    waiting = Enrolment.objects.filter(step__position=0, status=E.ACTIVE)
    assert waiting.count() == 2
    assert all(e.due_at > now + timedelta(minutes=59) for e in waiting)
    engine.run(now + timedelta(hours=2))
    assert len(mailbox) == 3  # still no credits: nothing more, nobody lost
    give(account, 2)
    engine.run(now + timedelta(hours=2))
    assert len(mailbox) == 3  # they try again an hour after the last try
    engine.run(now + timedelta(hours=3, seconds=1))
    assert len(mailbox) == 5
    assert Delivery.objects.count() == 5
    # The ledger adds up: the balance is the sum of its entries.
    total = sum(CreditEntry.objects.filter(account=account).values_list("credits", flat=True))
    assert total == credits.balance_of(account).available == 0


def test_a_list_larger_than_the_balance_does_not_stop_an_automation_from_starting(
    few_credits, account, newsletter, welcome, customer
):
    # Steps are paid per message when contacts reach them, not reserved at the start.
    add_contacts(account, newsletter, 5)
    services.start(welcome, by=customer)
    welcome.refresh_from_db()
    assert welcome.status == welcome.Status.ACTIVE
    assert credits.balance_of(account).available == 3
    assert not CreditEntry.objects.filter(account=account, kind=CreditEntry.Kind.RESERVE)


def test_a_step_message_sent_on_its_own_cannot_be_opened_for_an_automation(
    account, newsletter, welcome, customer
):
    step = welcome.steps.first()
    Campaign.objects.filter(pk=step.campaign_id).update(**campaign_status(Campaign.Status.SENT))
    with pytest.raises(services.AutomationError):
        services.start(welcome, by=customer)
    assert Campaign.objects.get(pk=step.campaign_id).status == Campaign.Status.SENT


@pytest.fixture
def campaign(account, newsletter):  # type: ignore[no-untyped-def]
    campaign = Campaign.objects.create(
        account=account, name="November", subject="News", from_email="news@news.example.org",
        body="<p>Hello {{ contact.name }}</p>", track_opens=True,
    )  # fmt: skip
    campaign.lists.add(newsletter)
    return campaign


def test_an_ab_test_reserves_its_samples_credits_and_is_refused_beyond_them(
    settings, account, newsletter, campaign, customer, mailbox
):
    add_contacts(account, newsletter, 20)
    settings.BILLING = {**settings.BILLING, "free_credits": 3, "credits_required": True}
    test = splittests.create_test(
        campaign, subjects=["Other"], test_percent=20, metric="opens", wait_hours=1, by=customer
    )
    with pytest.raises(SplitTestError):
        splittests.start_test(test, by=customer)  # 4 messages, 3 credits
    test.refresh_from_db()
    assert test.status == SplitTest.Status.DRAFT
    assert Delivery.objects.count() == 0 and mailbox == []
    assert credits.balance_of(account).available == 3


def test_an_ab_winner_waits_for_credits_and_says_so(
    settings, account, newsletter, campaign, customer, mailbox
):
    add_contacts(account, newsletter, 20)
    settings.BILLING = {**settings.BILLING, "free_credits": 20, "credits_required": True}
    test = splittests.create_test(
        campaign, subjects=["Other"], test_percent=20, metric="opens", wait_hours=1, by=customer
    )
    now = timezone.now()
    splittests.start_test(test, by=customer, now=now)
    assert len(mailbox) == 4
    give(account, -14)  # spent elsewhere meanwhile
    assert splittests.decide_due(now + timedelta(hours=2)) == 0  # 16 to go, 2 credits
    test.refresh_from_db()
    assert test.status == SplitTest.Status.TESTING and "credits" in test.note
    assert Delivery.objects.count() == 4
    give(account, 14)
    assert splittests.decide_due(now + timedelta(hours=3)) == 1
    assert len(mailbox) == 20
