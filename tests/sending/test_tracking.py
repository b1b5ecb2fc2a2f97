"""Opens and clicks: optional per campaign, never for a contact who objected, counts only
under aggregate-only tracking, signed links that redirect only where the campaign
pointed, per-contact events folded into counts when their retention ends."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.factories import campaign_status
from tests.sending.conftest import add_contacts
from tidings.campaigns.models import Campaign
from tidings.core import retention
from tidings.sending import lifecycle, services, tokens, tracking
from tidings.sending.models import CampaignStat, Delivery, TrackingEvent

# On-commit jobs run as in production, inside the test's transaction (tests/commits.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]


def html_of(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def links(html: str, kind: str) -> list[str]:
    return [
        u.replace("&amp;", "&").removeprefix("http://127.0.0.1:8000")
        for u in re.findall(r'(?:href|src)="([^"]+)"', html)
        if f"/t/{kind}/" in u
    ]


@pytest.fixture
def tracked(campaign):  # type: ignore[no-untyped-def]
    campaign.track_opens = campaign.track_clicks = True
    campaign.save()
    return campaign


@pytest.mark.promise("P18")
def test_per_contact_tracking_records_who_and_never_for_an_objector(
    client, account, newsletter, tracked, raw_sink
):
    services.set_tracking(account, "contact")
    fan, objector = add_contacts(account, newsletter, 2)
    objector.allow_tracking = False
    objector.save()
    lifecycle.start_campaign(tracked)
    by_rcpt = {rcpt[0]: html_of(raw) for rcpt, raw in raw_sink.raw}
    assert links(by_rcpt[objector.email], "c") == [] and links(by_rcpt[objector.email], "o") == []
    assert 'href="https://example.org/a?x=1&amp;y=2"' in by_rcpt[objector.email]

    (click,) = links(by_rcpt[fan.email], "c")
    (pixel,) = links(by_rcpt[fan.email], "o")
    response = client.get(click)
    assert response.status_code == 302 and response["Location"] == "https://example.org/a?x=1&y=2"
    assert client.get(pixel)["Content-Type"] == "image/gif"
    client.get(pixel)
    delivery = Delivery.objects.get(contact=fan)
    events = TrackingEvent.objects.filter(delivery=delivery)
    assert sorted(events.values_list("kind", flat=True)) == ["click", "open", "open"]
    summary = tracking.report(tracked)["summary"]
    assert summary["opened"] == 1 and summary["opens"] == 2 and summary["clicked"] == 1


@pytest.mark.promise("P26")
def test_aggregate_only_tracking_counts_without_knowing_who(
    client, account, newsletter, tracked, raw_sink
):
    services.set_tracking(account, "aggregate")
    add_contacts(account, newsletter, 2)
    lifecycle.start_campaign(tracked)
    pages = [html_of(raw) for _, raw in raw_sink.raw]
    # Both recipients get the very same tracking links: they say nothing about who.
    assert links(pages[0], "c") == links(pages[1], "c")
    assert links(pages[0], "o") == links(pages[1], "o")
    client.get(links(pages[0], "o")[0])
    client.get(links(pages[1], "c")[0])
    assert not TrackingEvent.objects.exists()
    counts = dict(CampaignStat.objects.values_list("kind", "count"))
    assert counts == {"open": 1, "click": 1}


def test_an_aggregate_open_is_one_statement_and_counts_nothing_once_its_campaign_is_gone(
    client, account, newsletter, tracked, raw_sink, django_assert_num_queries
):
    """The open pixel is the hottest link of a big send: under aggregate tracking it is
    one round trip to the database, which also checks that the campaign still exists."""
    services.set_tracking(account, "aggregate")
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(tracked)
    (pixel,) = links(html_of(raw_sink.raw[0][1]), "o")
    client.get(pixel)  # the session and the URL resolver warmed
    with django_assert_num_queries(1):
        assert client.get(pixel).status_code == 200
    assert dict(CampaignStat.objects.values_list("kind", "count")) == {"open": 2}
    Campaign.objects.filter(pk=tracked.pk).delete()
    response = client.get(pixel)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert not CampaignStat.objects.exists()


def test_untracked_campaigns_have_plain_links(account, newsletter, campaign, raw_sink):
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(campaign)
    html = html_of(raw_sink.raw[0][1])
    assert "/t/" not in html and "https://example.org/a?x=1&amp;y=2" in html


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        tokens.click_token(1, None, "https://example.org/")[:-2] + "xx",
        tokens.open_token(1, None),  # an open token is no click token
        tokens.click_token(1, None, "javascript:alert(1)"),
    ],
)
def test_the_click_redirect_is_no_open_redirect(client, account, token):
    response = client.get(f"/t/c/{token}/")
    assert response.status_code == 400
    assert "Location" not in response


def test_expired_events_become_counts_and_are_deleted(
    client, account, newsletter, tracked, raw_sink, settings
):
    services.set_tracking(account, "contact")
    add_contacts(account, newsletter, 2)
    lifecycle.start_campaign(tracked)
    for _, raw in raw_sink.raw:
        client.get(links(html_of(raw), "o")[0])
    client.get(links(html_of(raw_sink.raw[0][1]), "o")[0])
    before = tracking.report(tracked)["summary"]
    later = timezone.now() + timezone.timedelta(days=settings.SENDING["tracking_days"] + 1)
    rule = next(r for r in retention.rules() if r.name == "tracking events")
    assert retention.apply(rule, now=later).count == 3
    assert not TrackingEvent.objects.exists()
    after = tracking.report(tracked)["summary"]
    assert after == before and after["opened"] == 2 and after["opens"] == 3


# --- click links are bound to their campaign and expire --------------------------------


def _sent_click(client, account, newsletter, tracked, raw_sink) -> str:  # type: ignore[no-untyped-def]
    services.set_tracking(account, "aggregate")
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(tracked)
    (click,) = links(html_of(raw_sink.raw[0][1]), "c")
    assert client.get(click).status_code == 302
    return click


def test_a_click_link_expires_after_the_configured_days(
    client, account, newsletter, tracked, raw_sink, settings
):
    click = _sent_click(client, account, newsletter, tracked, raw_sink)
    days = settings.SENDING["click_link_days"]
    with time_machine.travel(timezone.now() + timedelta(days=days + 1)):
        response = client.get(click)
    assert response.status_code == 410 and "Location" not in response
    assert dict(CampaignStat.objects.values_list("kind", "count")) == {"click": 1}


def test_a_click_link_lives_while_its_campaign_sends_and_counts_from_its_end(
    client, account, newsletter, tracked, raw_sink, settings
):
    """A campaign paused (or sending, or open for an automation's step) may still send:
    its links live. Its days count from when it stopped sending, not from its start."""
    click = _sent_click(client, account, newsletter, tracked, raw_sink)
    days = settings.SENDING["click_link_days"]
    Campaign.objects.filter(pk=tracked.pk).update(**campaign_status(Campaign.Status.PAUSED))
    later = timezone.now() + timedelta(days=days + 30)

    def click_on(moment):  # type: ignore[no-untyped-def]
        tracking.forget_click_checks(tracked.pk)  # kept a minute with Redis
        with time_machine.travel(moment, tick=False):
            return client.get(click)

    assert click_on(later).status_code == 302
    with time_machine.travel(later, tick=False):
        lifecycle.cancel_campaign(Campaign.objects.get(pk=tracked.pk))
    assert click_on(later + timedelta(days=days - 1)).status_code == 302
    response = click_on(later + timedelta(days=days + 1))
    assert response.status_code == 410 and "Location" not in response


def test_a_long_send_s_links_count_from_its_end_not_its_start(
    client, account, newsletter, tracked, raw_sink, settings
):
    """A campaign that took a month to send (a slow relay, a pause): its last readers
    get a link that lives its days from the end, as the first readers' does."""
    click = _sent_click(client, account, newsletter, tracked, raw_sink)
    days = settings.SENDING["click_link_days"]
    ended = Campaign.objects.get(pk=tracked.pk).finished_at
    Campaign.objects.filter(pk=tracked.pk).update(started_at=ended - timedelta(days=30))
    tracking.forget_click_checks(tracked.pk)
    with time_machine.travel(ended + timedelta(days=days - 1), tick=False):
        assert client.get(click).status_code == 302
    tracking.forget_click_checks(tracked.pk)
    with time_machine.travel(ended + timedelta(days=days + 1), tick=False):
        assert client.get(click).status_code == 410


def test_a_campaign_has_an_end_exactly_when_it_ended(campaign):
    """The database holds the rule the links' days count by."""
    for status, finished_at in [
        (Campaign.Status.SENT, None),
        (Campaign.Status.CANCELLED, None),
        (Campaign.Status.SENDING, timezone.now()),
        (Campaign.Status.DRAFT, timezone.now()),
    ]:
        with pytest.raises(IntegrityError), transaction.atomic():
            Campaign.objects.filter(pk=campaign.pk).update(status=status, finished_at=finished_at)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT and campaign.finished_at is None


def test_a_click_link_dies_with_its_campaign(client, account, newsletter, tracked, raw_sink):
    click = _sent_click(client, account, newsletter, tracked, raw_sink)
    Campaign.objects.filter(pk=tracked.pk).delete()
    response = client.get(click)
    assert response.status_code == 410 and "Location" not in response


@pytest.mark.parametrize(
    "url",
    ["https://evil.example/login", "https://example.org.evil.example/a", "http://example.org/a"],
)
def test_a_signed_click_link_to_a_site_the_campaign_never_named_does_not_redirect(
    client, tracked, url
):
    token = tokens.click_token(tracked.pk, None, url)
    response = client.get(f"/t/c/{token}/")
    assert response.status_code == 410 and "Location" not in response


def test_a_click_link_to_a_personalised_path_on_the_campaigns_site_redirects(client, tracked):
    tracked.body += '<a href="https://example.org/u/{{ contact.uuid }}">you</a>'
    tracked.save()
    token = tokens.click_token(tracked.pk, None, "https://example.org/u/abc")
    response = client.get(f"/t/c/{token}/")
    assert response.status_code == 302 and response["Location"] == "https://example.org/u/abc"
