"""Messages whose outcome is unknown (a worker was lost between the claim and the relay's
answer) are never retried by Tidings: the campaign lists them, and the customer decides
to send them again, from the page or the API. Each is checked again as every message is."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import campaign_status
from tests.sending.conftest import add_contacts
from tidings.accounts import apikeys
from tidings.audience import services as audience
from tidings.campaigns.models import Campaign
from tidings.sending import lifecycle, recipients
from tidings.sending.models import Delivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]

S = Campaign.Status
D = Delivery.Status


def lost_mid_send(campaign, contacts, unknown: int) -> list[Delivery]:  # type: ignore[no-untyped-def]
    """A finished campaign as a killed worker leaves it: the first `unknown` deliveries
    of unknown outcome, the rest sent."""
    recipients.materialise(campaign)
    deliveries = list(Delivery.objects.filter(campaign=campaign).order_by("id"))
    now = timezone.now()
    for delivery in deliveries[:unknown]:
        delivery.status, delivery.last_error = D.UNKNOWN, "worker lost"
        delivery.claimed_by, delivery.claimed_at, delivery.attempts = "gone", now, 1
    for delivery in deliveries[unknown:]:
        delivery.status, delivery.sent_at = D.SENT, now
    Delivery.objects.bulk_update(
        deliveries, ["status", "last_error", "claimed_by", "claimed_at", "attempts", "sent_at"]
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        status=S.SENT, started_at=now, finished_at=now, recipients_fixed_at=now
    )
    campaign.refresh_from_db()
    return deliveries[:unknown]


def test_the_page_lists_them_and_sending_again_reaches_exactly_them(
    client, customer, account, newsletter, campaign, relay, smtp_server
):
    contacts = add_contacts(account, newsletter, 5)
    unknown = lost_mid_send(campaign, contacts, unknown=3)
    # One of them left the list since: sending again must leave them out.
    gone = unknown[2].contact
    audience.unsubscribe(gone, newsletter)
    client.force_login(customer)

    page = client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()
    assert "3 messages of unknown outcome" in page
    for delivery in unknown:
        assert f"<li>{delivery.contact.email}</li>" in page
    assert 'value="resend_unknown"' in page

    response = client.post(
        f"/campaigns/{campaign.uuid}/send/", {"action": "resend_unknown"}, follow=True
    )
    assert b"The messages of unknown outcome are queued again." in response.content
    delivered = sorted(str(m["X-Envelope-To"]) for m in smtp_server.messages)
    assert delivered == sorted(d.contact.email for d in unknown[:2])
    campaign.refresh_from_db()
    assert campaign.status == S.SENT and campaign.finished_at is not None
    statuses = dict(Delivery.objects.filter(campaign=campaign).values_list("contact", "status"))
    assert statuses[gone.pk] == D.SKIPPED
    assert list(statuses.values()).count(D.SENT) == 4
    assert "unknown outcome" not in client.get(f"/campaigns/{campaign.uuid}/send/").content.decode()


@pytest.mark.parametrize("status", [S.DRAFT, S.SCHEDULED, S.PAUSED, S.CANCELLED])
def test_a_campaign_in_another_state_sends_nothing_again(
    client, customer, account, newsletter, campaign, status
):
    lost_mid_send(campaign, add_contacts(account, newsletter, 2), unknown=1)
    Campaign.objects.filter(pk=campaign.pk).update(**campaign_status(status))
    client.force_login(customer)
    response = client.post(
        f"/campaigns/{campaign.uuid}/send/", {"action": "resend_unknown"}, follow=True
    )
    assert b"Only a sending or sent campaign can send" in response.content
    assert Delivery.objects.filter(campaign=campaign, status=D.UNKNOWN).count() == 1
    campaign.refresh_from_db()
    assert campaign.status == status


def test_with_nothing_unknown_there_is_nothing_to_send_again(account, newsletter, campaign):
    lost_mid_send(campaign, add_contacts(account, newsletter, 2), unknown=0)
    with pytest.raises(lifecycle.SendingError, match="No message of this campaign"):
        lifecycle.resend_unknown(campaign)
    campaign.refresh_from_db()
    assert campaign.status == S.SENT and campaign.finished_at is not None


def test_the_api_sends_them_again_for_its_own_account_only(
    client, customer, other_customer, account, newsletter, campaign, relay, smtp_server
):
    lost_mid_send(campaign, add_contacts(account, newsletter, 3), unknown=2)
    path = f"/api/v1/campaigns/{campaign.uuid}/resend-unknown"
    other = apikeys.create_api_key(other_customer.account, name="x", by=other_customer)[1]
    refused = client.post(path, headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 404
    assert Delivery.objects.filter(campaign=campaign, status=D.UNKNOWN).count() == 2

    key = apikeys.create_api_key(account, name="ci", by=customer)[1]
    response = client.post(path, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.content
    assert response.json()["unknown"] == 0 and response.json()["sent"] == 3
    assert len(smtp_server.messages) == 2
    again = client.post(path, headers={"Authorization": f"Bearer {key}"})
    assert again.status_code == 409 and "No message" in again.json()["detail"]
