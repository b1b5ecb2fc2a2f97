"""The sending pages: scoped to the account, work without JavaScript, and the public
archive shows no personal data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.factories import campaign_status
from tests.sending.conftest import add_contacts
from tidings.campaigns.models import Campaign
from tidings.sending import lifecycle, recipients
from tidings.sending.models import Delivery

# On-commit jobs run as in production, inside the test's transaction (tests/commits.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]


def test_send_now_from_the_page_and_follow_progress(
    client, customer, account, newsletter, campaign, relay, smtp_server
):
    add_contacts(account, newsletter, 3)
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/send/")
    assert page.status_code == 200
    assert b"3 contacts would receive it now" in page.content
    response = client.post(f"/campaigns/{campaign.uuid}/send/", {"action": "send"}, follow=True)
    assert b"Sending has started." in response.content
    progress = client.get(f"/campaigns/{campaign.uuid}/progress.json").json()
    assert progress["sent"] == 3 and progress["remaining"] == 0 and progress["status"] == "sent"
    assert len(smtp_server.messages) == 3
    report = client.get(f"/campaigns/{campaign.uuid}/report/")
    page = report.content.decode()
    assert report.status_code == 200 and '<canvas id="report-chart"' in page
    # The chart is Tidings's own script drawing JSON figures; without JavaScript the same
    # figures are a table.
    for tag in re.findall(r"<script[^>]*>", page):
        assert 'src="/static/' in tag or 'type="application/json"' in tag, tag
    assert re.search(r'<span class="rate">3</span>', page)  # sent
    assert re.search(r'<td class="num">3</td>', page.split("The same figures as a table")[1])


def test_schedule_with_a_time_zone_then_unschedule(client, customer, account, newsletter, campaign):
    add_contacts(account, newsletter, 1)
    client.force_login(customer)
    response = client.post(
        f"/campaigns/{campaign.uuid}/send/",
        {"action": "schedule", "when": "2099-05-01T09:30", "timezone": "Europe/Paris"},
        follow=True,
    )
    assert b"Scheduled." in response.content
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    assert campaign.scheduled_at.isoformat() == "2099-05-01T07:30:00+00:00"
    client.post(f"/campaigns/{campaign.uuid}/send/", {"action": "unschedule"})
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.scheduled_at is None


@pytest.mark.parametrize(
    "data",
    [
        {"action": "schedule", "when": "yesterday", "timezone": "UTC"},
        {"action": "schedule", "when": "2099-05-01T09:30", "timezone": "Mars/Olympus"},
        {"action": "schedule", "when": "2001-05-01T09:30", "timezone": "UTC"},
        {"action": "pause"},
        {"action": "explode"},
    ],
)
def test_bad_actions_say_why_and_change_nothing(client, customer, campaign, data):
    client.force_login(customer)
    response = client.post(f"/campaigns/{campaign.uuid}/send/", data, follow=True)
    assert response.status_code == 200 and b'class="message error"' in response.content
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_another_accounts_campaign_is_not_found_and_not_sent(client, other_customer, campaign):
    client.force_login(other_customer)
    for path in ("send/", "progress.json", "report/"):
        assert client.get(f"/campaigns/{campaign.uuid}/{path}").status_code == 404
    assert client.post(f"/campaigns/{campaign.uuid}/send/", {"action": "send"}).status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_the_public_archive_shows_sent_archived_campaigns_without_personal_data(
    client, account, newsletter, campaign, relay, smtp_server
):
    add_contacts(account, newsletter, 1)
    assert client.get(f"/archive/{account.pk}/").status_code == 404
    campaign.archived = True
    campaign.save()
    lifecycle.start_campaign(campaign)
    listing = client.get(f"/archive/{account.pk}/")
    assert listing.status_code == 200 and b"November news" in listing.content
    page = client.get(f"/archive/{account.pk}/{campaign.uuid}/")
    assert page.status_code == 200
    assert b"Reader 0" not in page.content and b"reader0@example.net" not in page.content
    assert b"sandbox" in page.content
    Campaign.objects.filter(pk=campaign.pk).update(archived=False)
    assert client.get(f"/archive/{account.pk}/{campaign.uuid}/").status_code == 404


def test_the_settings_page_adds_a_relay_and_a_domain(client, customer, account):
    client.force_login(customer)
    response = client.post(
        "/sending/",
        {
            "form": "relay",
            "relay-name": "Mine",
            "relay-host": "smtp.example.org",
            "relay-port": "587",
            "relay-security": "starttls",
            "relay-username": "u",
            "relay-password": "pw-123",
            "relay-esp": "",
            "relay-max_connections": "4",
            "relay-rate_per_second": "10",
            "relay-rate_per_hour": "0",
            "relay-active": "on",
        },
        follow=True,
    )
    assert b"Relay added." in response.content and b"pw-123" not in response.content
    response = client.post(
        "/sending/",
        {"form": "domain", "domain-domain": "news.example.org", "domain-selector": "tidings"},
        follow=True,
    )
    assert b"tidings._domainkey.news.example.org" in response.content
    assert b"v=DKIM1; k=rsa; p=" in response.content


def controls_of(page: bytes) -> str:
    text = page.decode()
    start = text.index('<section class="card send-controls"')
    return text[start : text.index("</section>", start)]


def test_a_draft_shows_test_send_and_schedule_prefilled_from_the_campaign(
    client, customer, campaign
):
    campaign.scheduled_at = datetime(2099, 5, 1, 7, 30, tzinfo=UTC)
    campaign.schedule_timezone = "Europe/Paris"
    campaign.save()
    client.force_login(customer)
    controls = controls_of(client.get(f"/campaigns/{campaign.uuid}/").content)
    for button in ("Send test", "Send now", "Schedule"):
        assert f">{button}</button>" in controls
    for button in ("Pause", "Resume", "Cancel"):
        assert f">{button}</button>" not in controls
    assert 'value="2099-05-01T09:30"' in controls and 'value="Europe/Paris"' in controls
    assert "Open the report" not in controls and "<progress" not in controls


@pytest.mark.parametrize(
    ("status", "shown", "hidden"),
    [
        ("sending", ["Pause", "Cancel"], ["Resume", "Send now", "Send test"]),
        ("paused", ["Resume", "Cancel"], ["Pause", "Send now"]),
        ("sent", [], ["Pause", "Resume", "Cancel", "Send now"]),
    ],
)
def test_a_started_campaign_shows_progress_and_the_actions_its_status_allows(
    client, customer, account, newsletter, campaign, status, shown, hidden
):
    add_contacts(account, newsletter, 4)
    recipients.materialise(campaign)
    Delivery.objects.filter(pk__in=Delivery.objects.order_by("pk")[:3].values("pk")).update(
        status="sent", sent_at=timezone.now()
    )
    Campaign.objects.filter(pk=campaign.pk).update(**campaign_status(status))
    client.force_login(customer)
    controls = controls_of(client.get(f"/campaigns/{campaign.uuid}/").content)
    for button in shown:
        assert f">{button}</button>" in controls
    for button in hidden:
        assert f">{button}</button>" not in controls
    assert '<progress id="p-bar" max="4" value="3"' in controls
    assert '<span id="p-percent">75</span>' in controls
    assert ("Open the report" in controls) == (status == "sent")


def test_a_campaign_cancelled_before_its_time_shows_no_progress_nor_report(
    client, customer, account, newsletter, campaign
):
    """Scheduled, then cancelled: nothing went out. The page said "0% done" and offered a
    report, while the campaigns list rightly shows no figures for it."""
    add_contacts(account, newsletter, 2)
    lifecycle.schedule_campaign(campaign, timezone.now() + timedelta(days=3))
    lifecycle.cancel_campaign(campaign)
    client.force_login(customer)
    controls = controls_of(client.get(f"/campaigns/{campaign.uuid}/").content)
    assert "Cancelled before it went out: nobody received it." in controls
    assert "<progress" not in controls and "Open the report" not in controls
    assert "goes out from" not in controls


def test_actions_from_the_campaign_page_return_to_it_and_never_elsewhere(
    client, customer, account, newsletter, campaign
):
    add_contacts(account, newsletter, 1)
    client.force_login(customer)
    page = f"/campaigns/{campaign.uuid}/"
    data = {"action": "schedule", "when": "2099-05-01T09:30", "timezone": "Asia/Tokyo"}
    response = client.post(f"/campaigns/{campaign.uuid}/send/", {**data, "next": page})
    assert response.status_code == 302 and response["Location"] == page
    campaign.refresh_from_db()
    assert campaign.schedule_timezone == "Asia/Tokyo"
    assert 'value="2099-05-01T09:30"' in controls_of(client.get(page).content)
    response = client.post(
        f"/campaigns/{campaign.uuid}/send/",
        {"action": "unschedule", "next": "https://evil.example/"},
    )
    assert response["Location"] == f"/campaigns/{campaign.uuid}/send/"


def test_the_customer_menu_leads_to_the_sending_settings(client, customer):
    client.force_login(customer)
    page = client.get("/campaigns/").content.decode()
    menu = page[page.index('<nav aria-label="Main">') : page.index("</nav>")]
    assert '<a href="/sending/">Sending settings</a>' in menu


def test_times_said_in_utc_are_utc_for_a_reader_in_another_time_zone(client, customer, campaign):
    """The walk's find: a Paris reader read 10:00 UTC for 09:00 UTC (their own time
    labelled UTC) on the dashboard, the send controls, the campaign and its report."""
    customer.time_zone = "Europe/Paris"
    customer.save(update_fields=["time_zone"])
    at = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SCHEDULED, scheduled_at=at, schedule_timezone="Europe/Paris"
    )
    client.force_login(customer)
    for url in ("/dashboard/", f"/campaigns/{campaign.uuid}/send/"):
        page = client.get(url).content.decode()
        assert "09:00 UTC" in page and "10:00 UTC" not in page, url
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SENT, started_at=at, finished_at=at.replace(hour=12)
    )
    for url in (f"/campaigns/{campaign.uuid}/", f"/campaigns/{campaign.uuid}/report/"):
        page = client.get(url).content.decode()
        assert "09:00 UTC" in page and "10:00 UTC" not in page, url
        assert "13:00 UTC" not in page, url
