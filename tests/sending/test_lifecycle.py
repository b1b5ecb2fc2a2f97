"""A campaign's life is one table (sending.lifecycle.TRANSITIONS): every action leaves
from the states it names, leads to its state, and is refused, with the same words, from
every other state, changing nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import campaign_status
from tests.sending.conftest import add_contacts
from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign
from tidings.sending import lifecycle
from tidings.sending.models import Delivery

S = Campaign.Status

ACTIONS = {
    "schedule": lambda c: lifecycle.schedule_campaign(c, timezone.now() + timedelta(days=1)),
    "unschedule": lifecycle.unschedule_campaign,
    "pause": lifecycle.pause_campaign,
    "resume": lifecycle.resume_campaign,
    "cancel": lifecycle.cancel_campaign,
    "resend unknown": lambda c: _resend_one_unknown(c),
}


def _resend_one_unknown(campaign: Campaign) -> None:
    """The action needs a message of unknown outcome to send again."""
    contact = Contact.objects.create(account=campaign.account, email="lost@example.net")
    Delivery.objects.create(campaign=campaign, contact=contact, status=Delivery.Status.UNKNOWN)
    lifecycle.resend_unknown(campaign)


def test_the_table_knows_every_state_and_every_customer_action():
    states = set(S.values)
    for name, transition in lifecycle.TRANSITIONS.items():
        assert transition.sources <= states and transition.target in states, name
    assert set(ACTIONS) | {"start"} == set(lifecycle.CUSTOMER_ACTIONS)
    assert lifecycle.allowed(Campaign(status=S.DRAFT)) == ["start", "schedule"]
    assert lifecycle.allowed(Campaign(status=S.SENDING)) == ["pause", "cancel", "resend unknown"]
    assert lifecycle.allowed(Campaign(status=S.SENT)) == ["resend unknown"]


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("status", sorted(S.values))
def test_each_action_moves_or_is_refused_by_the_table(account, newsletter, action, status):
    campaign = Campaign.objects.create(
        account=account, name="c", subject="Hello", from_email="news@example.org", body="Hi",
        **campaign_status(status),
    )  # fmt: skip
    campaign.lists.add(newsletter)
    add_contacts(account, newsletter, 1)  # someone to send to, or nothing can be scheduled
    transition = lifecycle.TRANSITIONS[action]
    if status in transition.sources:
        ACTIONS[action](campaign)
        campaign.refresh_from_db()
        assert campaign.status == transition.target
    else:
        with pytest.raises(lifecycle.SendingError) as refused:
            ACTIONS[action](campaign)
        shown = Campaign(status=status).get_status_display()
        assert str(refused.value) == transition.refusal.format(status=shown)
        campaign.refresh_from_db()
        assert campaign.status == status
