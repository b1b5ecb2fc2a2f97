"""Every campaign message carries the unsubscribe link and the sender's postal address
(CAN-SPAM) exactly once: from the layout's footer when it prints them, else from the
engine's own footer. Without a postal address nothing is sent."""

from __future__ import annotations

import email
import email.policy

import pytest

from tests.sending.conftest import POSTAL_ADDRESS, add_contacts
from tidings.campaigns.models import Layout
from tidings.sending import lifecycle, services
from tidings.sending.models import Delivery, SendingSettings
from tidings.staff.models import AuditEvent

# On-commit jobs run as in production, inside the test's transaction (tests/commits.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]


def sent_parts(raw_sink) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(List-Unsubscribe https URL, HTML, text) of each message the sink received."""
    parts = []
    for _, raw in raw_sink.raw:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        url = message["List-Unsubscribe"].split(",")[0].strip("<> ")
        html = message.get_body(("html",)).get_content().replace("&amp;", "&")
        text = message.get_body(("plain",)).get_content()
        parts.append((url, html, text))
    return parts


def test_the_default_layout_carries_the_unsubscribe_link_and_the_address_once(
    account, newsletter, campaign, raw_sink
):
    add_contacts(account, newsletter, 2)
    lifecycle.start_campaign(campaign)
    assert len(raw_sink.raw) == 2
    for url, html, text in sent_parts(raw_sink):
        assert "/oneclick/" in url
        assert html.count(url) == 1 and html.count("/oneclick/") == 1
        assert text.count("/oneclick/") == 1
        assert html.count(POSTAL_ADDRESS) == 1 and text.count(POSTAL_ADDRESS) == 1
        # The layout's "Manage your subscriptions" goes to the contact's real page.
        assert "/p/" in html and 'href="#"' not in html


def test_a_raw_html_layout_without_the_link_still_gets_the_footer(
    account, newsletter, campaign, raw_sink
):
    campaign.layout = Layout.objects.create(
        account=account, name="Bare", html="<html><body>{{ content }}</body></html>"
    )
    campaign.save()
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(campaign)
    ((url, html, text),) = sent_parts(raw_sink)
    assert html.count(url) == 1 and "Unsubscribe</a>" in html
    assert text.count(url) == 1
    assert html.count(POSTAL_ADDRESS) == 1 and text.count(POSTAL_ADDRESS) == 1


def test_a_layout_printing_the_address_but_no_link_gets_only_the_link(
    account, newsletter, campaign, raw_sink
):
    campaign.layout = Layout.objects.create(
        account=account,
        name="Address only",
        html="<html><body>{{ content }}<p>{{ campaign.postal_address }}</p></body></html>",
    )
    campaign.save()
    add_contacts(account, newsletter, 1)
    lifecycle.start_campaign(campaign)
    ((url, html, text),) = sent_parts(raw_sink)
    assert html.count(url) == 1
    assert html.count(POSTAL_ADDRESS) == 1 and text.count(POSTAL_ADDRESS) == 1


def test_without_a_postal_address_nothing_is_sent_or_scheduled(
    account, newsletter, campaign, raw_sink
):
    SendingSettings.objects.filter(account=account).update(postal_address="")
    add_contacts(account, newsletter, 2)
    with pytest.raises(lifecycle.SendingError, match="postal address"):
        lifecycle.start_campaign(campaign)
    from datetime import timedelta

    from django.utils import timezone

    with pytest.raises(lifecycle.SendingError, match="postal address"):
        lifecycle.schedule_campaign(campaign, timezone.now() + timedelta(days=1))
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.scheduled_at is None
    assert not Delivery.objects.exists() and raw_sink.raw == []


def test_the_send_page_says_the_address_is_missing(client, customer, account, campaign):
    SendingSettings.objects.filter(account=account).update(postal_address="")
    client.force_login(customer)
    page = client.get(f"/campaigns/{campaign.uuid}/").content.decode()
    assert "add your postal address</a>" in page
    response = client.post(f"/campaigns/{campaign.uuid}/send/", {"action": "send"}, follow=True)
    assert b'class="message error"' in response.content and b"CAN-SPAM" in response.content
    campaign.refresh_from_db()
    assert campaign.status == "draft"


@pytest.mark.postgres  # `contains` on a JSON list
def test_the_address_is_set_on_the_settings_page_audited_and_encrypted(client, customer):
    client.force_login(customer)
    response = client.post(
        "/sending/",
        {"form": "address", "postal_address": "Rue Haute 5\r\n1000  Brussels\r\nBelgium\r\n"},
        follow=True,
    )
    assert b"Postal address saved." in response.content
    saved = SendingSettings.objects.get(account=customer.account)
    assert saved.postal_address == "Rue Haute 5, 1000 Brussels, Belgium"
    event = AuditEvent.objects.filter(action="update", fields__contains=["postal_address"]).get()
    assert event.account_id == customer.account_id
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT postal_address FROM sending_sendingsettings WHERE id = %s", [saved.pk]
        )
        assert "Brussels" not in cursor.fetchone()[0]


@pytest.mark.parametrize("bad", ["", "   \n ", "Brussels", "12345", "x" * 390 + " 1 Street y" * 3])
def test_a_bad_address_is_refused_and_changes_nothing(account, bad):
    with pytest.raises(services.SettingsError):
        services.set_postal_address(account, bad, by=None)
    assert SendingSettings.objects.get(account=account).postal_address == POSTAL_ADDRESS
