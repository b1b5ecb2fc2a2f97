"""Per-processing switches take effect at once in the engine that does the processing
(P18, P21). Each test flips the switch where its owner flips it (My Account, the
contact's preference page) and runs the real engine: product updates to a real SMTP
server, a campaign to aiosmtpd with tracking, a segment on engagement evaluated and sent.

Follow-ups after support and usage analytics have switches in My Account but no code
that does the processing yet (no support desk, no per-person analytics): docs/rights.md.
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from tests.audience.conftest import path_of
from tests.factories import UserFactory
from tests.sending.conftest import add_contacts
from tidings.audience import links, segments
from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign
from tidings.sending import lifecycle, services, tracking
from tidings.sending.models import TrackingEvent
from tidings.sending.product_updates import deliver, send_product_update

# On-commit jobs run as in production, inside the test's transaction (tests/commits.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]


def html_of(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def tracking_links(html: str) -> list[str]:
    return [
        u.replace("&amp;", "&").removeprefix("http://127.0.0.1:8000")
        for u in re.findall(r'(?:href|src)="([^"]+)"', html)
        if "/t/o/" in u or "/t/c/" in u
    ]


def by_recipient(raw_sink) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {rcpt[0]: html_of(raw) for rcpt, raw in raw_sink.raw}


def object_on_preference_page(client, contact: Contact, *, tracking: bool, profiling: bool):  # type: ignore[no-untyped-def]
    data = {"action": "save", "name": contact.name}
    if tracking:
        data["allow_tracking"] = "on"
    if profiling:
        data["allow_profiling"] = "on"
    response = client.post(path_of(links.preference_url(contact)), data)
    assert response.status_code == 200 and "Your details are saved" in response.content.decode()


def copy_of(campaign: Campaign, name: str, **kwargs) -> Campaign:  # type: ignore[no-untyped-def]
    return Campaign.objects.create(
        account=campaign.account,
        name=name,
        subject=campaign.subject,
        from_email=campaign.from_email,
        body=campaign.body,
        track_opens=True,
        track_clicks=True,
        **kwargs,
    )


@pytest.fixture
def tracked(campaign):  # type: ignore[no-untyped-def]
    campaign.track_opens = campaign.track_clicks = True
    campaign.save()
    return campaign


# --- customer switches ---------------------------------------------------------------


@pytest.mark.promise("P5")
@pytest.mark.promise("P18")
def test_switching_product_updates_off_in_my_account_stops_them_at_once(
    client, customer, smtp_mail
):
    other = UserFactory(email="keen@example.org")
    client.force_login(customer)
    client.post("/account/processing/", {"allow_analytics": ""})  # product updates: off
    customer.refresh_from_db()
    assert customer.allow_product_updates is False
    send_product_update("What is new", "Segments on engagement.")
    assert [m["Subject"] for m in smtp_mail.to(other.email)] == ["What is new"]
    assert "What is new" not in [m["Subject"] for m in smtp_mail.to(customer.email)]

    client.post("/account/processing/", {"allow_product_updates": "on"})
    update = send_product_update("And more", "Another one.")
    assert "And more" in [m["Subject"] for m in smtp_mail.to(customer.email)]
    assert deliver(update.pk) == 0  # each at most once


# --- contact switches ----------------------------------------------------------------


@pytest.mark.promise("P18")
@pytest.mark.promise("P21")
def test_objecting_to_tracking_stops_it_at_once_and_in_every_later_mail(
    client, account, newsletter, tracked, raw_sink
):
    services.set_tracking(account, "contact")
    fan, objector = add_contacts(account, newsletter, 2)
    lifecycle.start_campaign(tracked)
    first = by_recipient(raw_sink)
    object_on_preference_page(client, objector, tracking=False, profiling=True)
    # Links of a mail sent before the objection record nothing from now on.
    for url in tracking_links(first[objector.email]):
        client.get(url)
    assert not TrackingEvent.objects.filter(delivery__contact=objector).exists()
    for url in tracking_links(first[fan.email]):
        client.get(url)
    assert sorted(
        TrackingEvent.objects.filter(delivery__contact=fan).values_list("kind", flat=True)
    ) == ["click", "open"]

    raw_sink.raw.clear()
    second = copy_of(tracked, "Second")
    second.lists.add(newsletter)
    lifecycle.start_campaign(second)
    later = by_recipient(raw_sink)
    # No pixel, plain links for the objector; the fan's mail is tracked.
    assert tracking_links(later[objector.email]) == []
    assert 'href="https://example.org/a?x=1&amp;y=2"' in later[objector.email]
    assert len(tracking_links(later[fan.email])) == 2
    counts = tracking.report(second)["summary"]
    assert counts["opened"] == 0


@pytest.mark.promise("P18")
@pytest.mark.promise("P21")
def test_objecting_to_profiling_takes_the_contact_out_of_engagement_segments(
    client, account, newsletter, tracked, raw_sink
):
    services.set_tracking(account, "contact")
    fan, objector, idle = add_contacts(account, newsletter, 3)
    lifecycle.start_campaign(tracked)
    first = by_recipient(raw_sink)
    for person in (fan, objector):
        client.get(next(u for u in tracking_links(first[person.email]) if "/t/o/" in u))
    openers = segments.save_segment(
        account,
        name="Openers",
        rules={"conditions": [{"field": "opened", "op": "exists", "value": True}]},
    )
    assert set(segments.contacts_in(openers)) == {fan, objector}

    object_on_preference_page(client, objector, tracking=True, profiling=False)
    assert set(segments.contacts_in(openers)) == {fan}
    # The objector is not profiled the other way round either ("never opened").
    sleepers = segments.matching(
        account, {"conditions": [{"field": "opened", "op": "exists", "value": False}]}
    )
    assert set(sleepers) == {idle}
    # Rules on what the customer knows, not on behaviour, still include them.
    assert objector in segments.matching(
        account, {"conditions": [{"field": "email", "op": "contains", "value": "reader"}]}
    )

    raw_sink.raw.clear()
    follow_up = copy_of(tracked, "For openers")
    follow_up.segments.add(openers)
    lifecycle.start_campaign(follow_up)
    assert set(by_recipient(raw_sink)) == {fan.email}


def test_engagement_rules_are_checked(account):
    with pytest.raises(segments.SegmentError, match="not a date"):
        segments.matching(
            account, {"conditions": [{"field": "clicked", "op": "after", "value": "soon"}]}
        )
    with pytest.raises(segments.SegmentError, match="cannot use the operator"):
        segments.matching(account, {"conditions": [{"field": "opened", "op": "eq", "value": "x"}]})
