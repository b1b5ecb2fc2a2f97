"""A campaign page never stands still at 0 % without saying why: a campaign with
messages due and no sign of life for minutes says it is stalled (no worker, no broker),
and the reasons messages failed are listed with their counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.sending.conftest import add_contacts
from tidings.campaigns.models import Campaign
from tidings.sending import engine, recipients
from tidings.sending.models import Delivery

pytestmark = pytest.mark.django_db

S = Campaign.Status
D = Delivery.Status


def sending_since(campaign: Campaign, minutes: int) -> None:
    recipients.materialise(campaign)
    started = timezone.now() - timedelta(minutes=minutes)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=S.SENDING, started_at=started, recipients_fixed_at=started
    )
    campaign.refresh_from_db()


def test_a_campaign_nobody_works_on_says_it_is_stalled(
    client, customer, account, newsletter, campaign
):
    add_contacts(account, newsletter, 3)
    sending_since(campaign, minutes=10)
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()
    assert "Nothing has gone out for 10 minutes though 3 messages wait." in page
    assert engine.progress(campaign)["stalled_minutes"] == 10


def test_recent_work_or_retries_not_yet_due_are_not_a_stall(account, newsletter, campaign):
    add_contacts(account, newsletter, 2)
    sending_since(campaign, minutes=10)
    first, second = Delivery.objects.filter(campaign=campaign).order_by("id")
    Delivery.objects.filter(pk=first.pk).update(status=D.SENT, sent_at=timezone.now())
    assert engine.progress(campaign)["stalled_minutes"] == 0  # a message just went out

    long_ago = timezone.now() - timedelta(minutes=10)
    Delivery.objects.filter(pk=first.pk).update(sent_at=long_ago)
    Delivery.objects.filter(pk=second.pk).update(
        not_before=timezone.now() + timedelta(minutes=20), last_error="451 try later"
    )
    assert engine.progress(campaign)["stalled_minutes"] == 0  # the retry is not due yet

    Delivery.objects.filter(pk=second.pk).update(not_before=long_ago)
    assert engine.progress(campaign)["stalled_minutes"] == 10
    Campaign.objects.filter(pk=campaign.pk).update(status=S.PAUSED)
    campaign.refresh_from_db()
    assert engine.progress(campaign)["stalled_minutes"] == 0  # paused on purpose


def test_the_page_lists_why_messages_failed(client, customer, account, newsletter, campaign):
    add_contacts(account, newsletter, 4)
    sending_since(campaign, minutes=1)
    ids = list(
        Delivery.objects.filter(campaign=campaign).order_by("id").values_list("pk", flat=True)
    )
    Delivery.objects.filter(pk__in=ids[:3]).update(
        status=D.FAILED, last_error="552 message too big"
    )
    Delivery.objects.filter(pk=ids[3]).update(
        status=D.FAILED, last_error="451 gave up after 5 tries"
    )
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()
    assert "Why messages failed" in page
    assert page.index("<strong>3</strong> messages: 552 message too big") < page.index(
        "<strong>1</strong> message: 451 gave up after 5 tries"
    )
