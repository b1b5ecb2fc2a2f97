"""RFC 8058 one-click unsubscribe: a provider's POST unsubscribes at once with no login
or confirmation; a GET (a link scanner) only shows a button (P21)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.sending.conftest import add_contacts
from tidings.audience.models import Contact, Subscription
from tidings.sending import tokens, tracking
from tidings.sending.models import CampaignStat

pytestmark = pytest.mark.django_db


def url_for(contact: Contact, campaign_id: int | None = None) -> str:
    return tracking.unsubscribe_url(contact, campaign_id).removeprefix("http://127.0.0.1:8000")


@pytest.mark.promise("P21")
def test_the_one_click_post_unsubscribes_at_once_without_login(account, newsletter, campaign):
    contact, other = add_contacts(account, newsletter, 2)
    provider = Client(enforce_csrf_checks=True)
    response = provider.post(
        url_for(contact, campaign.pk),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED
    assert not Subscription.objects.filter(contact=contact, status="confirmed").exists()
    other.refresh_from_db()
    assert other.status == Contact.Status.ACTIVE
    assert CampaignStat.objects.get(campaign=campaign, kind="unsubscribe").count == 1
    # Again: still unsubscribed, counted once.
    provider.post(url_for(contact, campaign.pk), data={"List-Unsubscribe": "One-Click"})
    assert CampaignStat.objects.get(campaign=campaign, kind="unsubscribe").count == 1


@pytest.mark.promise("P21")
def test_a_link_scanner_opening_the_link_unsubscribes_nobody(client, account, newsletter):
    (contact,) = add_contacts(account, newsletter, 1)
    response = client.get(url_for(contact))
    assert response.status_code == 200
    assert (
        b'<form method="post"' in response.content
        and b"r\xe2\x80\xa6@example.net" in response.content
    )
    contact.refresh_from_db()
    assert contact.status == Contact.Status.ACTIVE


@pytest.mark.parametrize(
    "token",
    ["nonsense", tokens.open_token(1, 1), "x" * 5000],
)
def test_a_forged_or_foreign_token_changes_nothing(client, account, newsletter, token):
    (contact,) = add_contacts(account, newsletter, 1)
    response = client.post(f"/oneclick/{token}/", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    contact.refresh_from_db()
    assert contact.status == Contact.Status.ACTIVE


def test_an_altered_token_changes_nothing(client, account, newsletter):
    (contact,) = add_contacts(account, newsletter, 1)
    url = url_for(contact)
    forged = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    assert client.post(forged, data={"List-Unsubscribe": "One-Click"}).status_code == 400
    contact.refresh_from_db()
    assert contact.status == Contact.Status.ACTIVE


def test_the_unsubscribe_pages_are_the_contacts_not_the_platforms_site(
    client, account, newsletter, campaign
):
    """The pages say whose mail it is (the sender's name), like the preference page, and
    carry none of the platform's own site: no menu to log in or sign up, no cookie
    banner, no tag of the operator's third parties."""
    (contact,) = add_contacts(account, newsletter, 1)
    pages = {
        "the button": client.get(url_for(contact, campaign.pk)),
        "the answer": client.post(url_for(contact, campaign.pk), {"List-Unsubscribe": "One-Click"}),
        "a link cut short": client.get("/oneclick/nonsense/"),
    }
    for name, response in pages.items():
        html = response.content.decode()
        assert 'class="public-card"' in html, name
        assert "/login/" not in html and "/register/" not in html, name
        assert "consent-banner" not in html and "<script" not in html, name
    for name in ("the button", "the answer"):
        assert account.name in pages[name].content.decode(), name
