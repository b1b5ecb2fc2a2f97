"""Opens, clicks and one-click unsubscriptions' counts recorded outside the request: the
public link does one XADD to a Redis stream and answers; the worker's task
(`tracking.drain`) writes the events in batches, by the same rules as the direct write
(P26), each once, even when a drain is killed halfway. Without Redis, the request writes
them itself. Real Redis and PostgreSQL (or SQLite) throughout."""

from __future__ import annotations

import pytest
from celery import Celery
from django.urls import reverse
from django.utils import timezone

from tests.sending.conftest import add_contacts
from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign
from tidings.celery import app as tidings_app
from tidings.celery import leave_out_what_cannot_run
from tidings.sending import services, tokens, tracking
from tidings.sending.limits import shared_redis
from tidings.sending.models import CampaignStat, Delivery, LinkClick, TrackingEvent

pytestmark = pytest.mark.django_db

URL = "https://example.org/a?x=1&y=2"


@pytest.fixture
def stream(settings):  # type: ignore[no-untyped-def]
    """The stream on (as in production with Redis), empty at the start."""
    settings.SENDING = {**settings.SENDING, "tracking_stream": True}
    redis = shared_redis()
    assert redis is not None, "these tests need REDIS_URL"
    redis.delete(tracking.STREAM)
    yield redis
    redis.delete(tracking.STREAM)


@pytest.fixture
def sent(account, newsletter, campaign):  # type: ignore[no-untyped-def]
    """The campaign sent to three contacts (deliveries as the engine leaves them); the
    third objected to tracking."""
    now = timezone.now()
    campaign.track_opens = campaign.track_clicks = True
    campaign.status = Campaign.Status.SENT
    campaign.started_at = campaign.finished_at = now
    campaign.save()
    contacts = add_contacts(account, newsletter, 3)
    Contact.objects.filter(pk=contacts[2].pk).update(allow_tracking=False)
    deliveries = [
        Delivery.objects.create(campaign=campaign, contact=c, status="sent", sent_at=now)
        for c in contacts
    ]
    return campaign, deliveries


def open_link(campaign_id: int, delivery_id: int | None) -> str:
    return reverse("sending:open", args=[tokens.open_token(campaign_id, delivery_id)])


def click_link(campaign_id: int, delivery_id: int | None, url: str = URL) -> str:
    return reverse("sending:click", args=[tokens.click_token(campaign_id, delivery_id, url)])


def counts(campaign: Campaign) -> dict[str, int]:
    return dict(CampaignStat.objects.filter(campaign=campaign).values_list("kind", "count"))


@pytest.mark.promise("P26")
def test_aggregate_opens_and_clicks_cost_no_statement_and_are_written_once_by_the_drain(
    client, account, sent, stream, django_assert_num_queries
):
    campaign, _ = sent
    services.set_tracking(account, "aggregate")
    pixel, click = open_link(campaign.pk, None), click_link(campaign.pk, None)
    client.get(pixel)
    client.get(click)  # the click's check of its campaign, then kept a minute in Redis
    with django_assert_num_queries(0):
        for _ in range(5):
            assert client.get(pixel).status_code == 200
            response = client.get(click)
            assert response.status_code == 302 and response["Location"] == URL
    assert counts(campaign) == {} and tracking.stream_length() == 12
    assert tracking.drain() == 12
    assert counts(campaign) == {"open": 6, "click": 6}
    assert dict(LinkClick.objects.values_list("url", "clicks")) == {URL: 6}
    assert not TrackingEvent.objects.exists()
    # Drained: nothing left, nothing written twice.
    assert tracking.stream_length() == 0 and tracking.drain() == 0
    assert counts(campaign) == {"open": 6, "click": 6}


@pytest.mark.promise("P26")
def test_per_contact_events_from_the_stream_follow_the_same_rules(client, account, sent, stream):
    campaign, (fan, other, objector) = sent
    services.set_tracking(account, "contact")
    for delivery in (fan, fan, other, objector):
        client.get(open_link(campaign.pk, delivery.pk))
    for delivery in (fan, objector):
        assert client.get(click_link(campaign.pk, delivery.pk)).status_code == 302
    assert not TrackingEvent.objects.exists()
    assert tracking.drain() == 6
    events = TrackingEvent.objects.order_by("pk")
    assert [(e.delivery_id, e.kind, e.first) for e in events] == [
        (fan.pk, "open", True),
        (fan.pk, "open", False),
        (other.pk, "open", True),
        (fan.pk, "click", True),
    ]
    # The contact who objected is in no record and no count; the click's link count
    # holds only the fan's.
    assert not TrackingEvent.objects.filter(delivery=objector).exists()
    assert counts(campaign) == {}
    assert dict(LinkClick.objects.values_list("url", "clicks")) == {URL: 1}
    summary = tracking.report(campaign)["summary"]
    assert summary["opened"] == 2 and summary["opens"] == 3 and summary["clicked"] == 1


@pytest.mark.promise("P26")
def test_an_account_that_went_aggregate_gets_counts_only_for_per_contact_links(
    client, account, sent, stream
):
    campaign, (fan, _, objector) = sent
    services.set_tracking(account, "contact")
    client.get(open_link(campaign.pk, fan.pk))
    client.get(open_link(campaign.pk, objector.pk))
    services.set_tracking(account, "aggregate")  # before the drain: the rule of now applies
    assert tracking.drain() == 2
    assert not TrackingEvent.objects.exists()
    assert counts(campaign) == {"open": 1}


def test_a_link_naming_another_campaigns_delivery_records_nothing(
    client, account, other_customer, sent, stream
):
    """A delivery id in a validly signed link with the wrong campaign (another tenant's)
    is refused at the drain: nothing written, and the stream still empties."""
    campaign, (fan, _, _) = sent
    services.set_tracking(account, "contact")
    foreign = Campaign.objects.create(
        account=other_customer.account, name="Other", subject="x", from_email="a@b.example"
    )
    assert client.get(open_link(foreign.pk, fan.pk)).status_code == 200
    shared_redis().xadd(tracking.STREAM, {"k": "open", "c": "not a number"})  # type: ignore[union-attr]
    shared_redis().xadd(tracking.STREAM, {"k": "erase", "c": campaign.pk})  # type: ignore[union-attr]
    assert tracking.drain() == 3
    assert not TrackingEvent.objects.exists() and not CampaignStat.objects.exists()
    assert tracking.stream_length() == 0


def test_events_of_a_campaign_deleted_before_the_drain_are_dropped(client, account, sent, stream):
    campaign, _ = sent
    services.set_tracking(account, "aggregate")
    client.get(open_link(campaign.pk, None))
    assert client.get(click_link(campaign.pk, None)).status_code == 302
    Campaign.objects.filter(pk=campaign.pk).delete()
    # Its links stop at once, though their check was kept in Redis.
    assert client.get(click_link(campaign.pk, None)).status_code == 410
    assert tracking.drain() == 2
    assert not CampaignStat.objects.exists() and not LinkClick.objects.exists()


def test_a_drain_killed_before_its_commit_loses_nothing(client, account, sent, stream):
    """A recorder that read entries and died before committing: they stay pending in the
    group, and the next drain writes them, once."""
    campaign, _ = sent
    services.set_tracking(account, "aggregate")
    for _ in range(7):
        client.get(open_link(campaign.pk, None))
    tracking.create_group(stream)
    taken = tracking.take(stream, batch=4)  # read, then the process dies
    assert len(taken) == 4 and counts(campaign) == {}
    assert tracking.drain(batch=3) == 7
    assert counts(campaign) == {"open": 7}
    assert tracking.stream_length() == 0


def test_a_drain_killed_after_its_commit_counts_nothing_twice(client, account, sent, stream):
    """A recorder that committed a batch and died before acknowledging it: the entries
    are read again, and skipped (the mark, committed with the events, is past them)."""
    campaign, (fan, _, _) = sent
    services.set_tracking(account, "contact")
    for _ in range(3):
        client.get(open_link(campaign.pk, fan.pk))
    for _ in range(4):
        client.get(click_link(campaign.pk, fan.pk))
    tracking.create_group(stream)
    written = tracking.write_next(stream, batch=5)  # committed, then the process dies
    assert len(written) == 5 and TrackingEvent.objects.count() == 5
    assert tracking.drain() == 7  # the 5 again (skipped), then the 2 left
    assert TrackingEvent.objects.filter(kind="open").count() == 3
    assert TrackingEvent.objects.filter(kind="click").count() == 4
    assert TrackingEvent.objects.filter(first=True).count() == 2
    assert dict(LinkClick.objects.values_list("url", "clicks")) == {URL: 4}
    assert tracking.stream_length() == 0 and tracking.drain() == 0


@pytest.mark.promise("P21")
def test_a_one_click_unsubscribe_takes_effect_before_the_answer_and_is_counted_by_the_drain(
    client, account, newsletter, sent, stream
):
    campaign, (fan, _, _) = sent
    link = reverse(
        "sending:unsubscribe", args=[tokens.unsubscribe_token(fan.contact.uuid.hex, campaign.pk)]
    )
    response = client.post(link, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    # In effect now, not when the stream is drained.
    assert Contact.objects.get(pk=fan.contact_id).status == Contact.Status.UNSUBSCRIBED
    assert not fan.contact.subscriptions.exclude(status="unsubscribed").exists()
    client.post(link, {"List-Unsubscribe": "One-Click"})  # again: counted once
    assert counts(campaign) == {}
    assert tracking.drain() == 1
    assert counts(campaign) == {"unsubscribe": 1}


def test_without_redis_the_request_writes_the_event_itself(client, account, sent, settings):
    """The embedded default (no Redis): the same links write at once, and the click's
    check reads the database each time."""
    settings.SENDING = {**settings.SENDING, "tracking_stream": True}
    settings.REDIS_URL = ""
    campaign, (fan, _, objector) = sent
    services.set_tracking(account, "contact")
    client.get(open_link(campaign.pk, fan.pk))
    client.get(open_link(campaign.pk, objector.pk))
    assert client.get(click_link(campaign.pk, None)).status_code == 302
    assert [(e.delivery_id, e.kind) for e in TrackingEvent.objects.all()] == [(fan.pk, "open")]
    assert counts(campaign) == {"click": 1}
    assert tracking.drain() == 0
    Campaign.objects.filter(pk=campaign.pk).delete()
    assert client.get(click_link(campaign.pk, None)).status_code == 410


@pytest.mark.parametrize("redis", [True, False])
def test_beat_drains_the_stream_only_where_there_can_be_one(settings, redis):
    """With Redis, beat drains the stream every five seconds and flushes the page views
    every ten; without it (the embedded default) there is neither, and both are left
    out of beat's schedule."""
    settings.REDIS_URL = "redis://127.0.0.1:6379/0" if redis else ""
    # Not the current app: the jobs of the tests after this one must find the real one.
    app = Celery("schedule-under-test", set_as_current=False)
    app.conf.beat_schedule = dict(tidings_app.conf.beat_schedule)
    leave_out_what_cannot_run(app)
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert ("tidings.sending.tasks.record_tracking_events" in tasks) is redis
    assert ("tidings.consent.tasks.flush_page_views" in tasks) is redis
    assert "tidings.sending.tasks.start_due_campaigns" in tasks
