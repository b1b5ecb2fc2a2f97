"""A contact's activity on their page, newest first and paged: subscriptions and
unsubscriptions, campaigns received, opens and clicks only where per-contact tracking
was allowed, bounces and rights requests; never another account's events."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tidings.audience import rights, services
from tidings.audience.timeline import timeline
from tidings.campaigns.models import Campaign
from tidings.sending.models import BounceRecord, Delivery, TrackingEvent


def _campaign(account, name: str, **tracking: bool) -> Campaign:  # type: ignore[no-untyped-def]
    return Campaign.objects.create(
        account=account, name=name, subject="s", from_email="news@example.org", body="b",
        **tracking,
    )  # fmt: skip


@pytest.fixture
def history(account, newsletter, offers):  # type: ignore[no-untyped-def]
    """A contact's life, one step a day from 2026-01-01."""
    start = timezone.make_aware(timezone.datetime(2026, 1, 1, 9, 0))
    day = timedelta(days=1)
    with time_machine.travel(start, tick=False) as clock:
        ada = services.add_contact(account, "ada@example.org", lists=[newsletter])
        clock.shift(day)
        services.subscribe(ada, offers, confirmed=True)
        clock.shift(day)
        tracked = _campaign(account, "Spring news", track_opens=True, track_clicks=True)
        delivery = Delivery.objects.create(
            campaign=tracked, contact=ada, status=Delivery.Status.SENT, sent_at=timezone.now()
        )
        clock.shift(day)
        TrackingEvent.objects.create(campaign=tracked, delivery=delivery, kind="open")
        clock.shift(day)
        TrackingEvent.objects.create(
            campaign=tracked, delivery=delivery, kind="click", url="https://example.org/spring"
        )
        clock.shift(day)
        # Counts only: a campaign without per-contact tracking shows no opens.
        untracked = _campaign(account, "Summer news")
        other = Delivery.objects.create(
            campaign=untracked, contact=ada, status=Delivery.Status.SENT, sent_at=timezone.now()
        )
        TrackingEvent.objects.create(campaign=untracked, delivery=other, kind="open")
        clock.shift(day)
        BounceRecord.objects.create(
            account=account, contact=ada, campaign=untracked, kind="soft", source="dsn"
        )
        clock.shift(day)
        services.unsubscribe(ada, offers)
        clock.shift(day)
        rights.request_from_contact(ada, kind="access", details="")
    return ada


def test_the_timeline_tells_a_contacts_life_newest_first(history):
    texts = [e.text for e in timeline(history).events]
    assert texts == [
        "Asked for access to my data",
        "Unsubscribed from “Offers”",
        "Soft bounce of the campaign “Summer news”",
        "Received the campaign “Summer news”",
        "Clicked https://example.org/spring in the campaign “Spring news”",
        "Opened the campaign “Spring news”",
        "Received the campaign “Spring news”",
        "Subscribed to “Offers”",
        "Subscribed to “Newsletter”",
    ]


def test_the_timeline_is_paged(history):
    first = timeline(history, size=4)
    second = timeline(history, page=2, size=4)
    third = timeline(history, page=3, size=4)
    assert (first.newer, first.older, second.older, third.older) == (None, 2, 3, None)
    everything = [e.text for e in timeline(history).events]
    assert [e.text for e in first.events + second.events + third.events] == everything


def test_the_contact_page_shows_the_activity_and_its_pages(logged_in, history, other_customer):
    theirs = services.add_contact(other_customer.account, "ada@example.org")
    _campaign(other_customer.account, "Their news")
    Delivery.objects.create(
        campaign=Campaign.objects.get(name="Their news"), contact=theirs,
        status=Delivery.Status.SENT, sent_at=timezone.now(),
    )  # fmt: skip
    url = reverse("audience:contact", args=[history.uuid])
    page = logged_in.get(url).content.decode()
    assert "Activity" in page and "Opened the campaign “Spring news”" in page
    assert "Opened the campaign “Summer news”" not in page
    assert "Their news" not in page
    assert "2026-01-03" in page
    second = logged_in.get(url + "?activity=2").content.decode()
    assert "Opened the campaign" not in second and "Nothing yet." in second
