"""What each public endpoint a big campaign hits costs in database statements (issue 13,
bench/web_load.py): a change that adds one fails here. With Redis (the suite's), opens and
clicks go to the stream, page views to a Redis hash (written by a worker task), the
hosted form's page is kept a short time, and so are the cookie banner's third parties and
an account's editable attribute names; the one-click unsubscription is written before the
answer."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tidings.audience import links
from tidings.audience.models import Contact, MailingList, Subscription, SubscriptionForm
from tidings.campaigns.models import Campaign
from tidings.consent.services import flush_page_views
from tidings.core import headers
from tidings.sending import services, tokens, tracking
from tidings.sending.limits import shared_redis
from tidings.sending.models import CampaignStat, Delivery

pytestmark = pytest.mark.django_db

URL = "https://example.org/article"


@pytest.fixture
def sent(customer, settings):  # type: ignore[no-untyped-def]
    """As the web benchmark sets it up: a public single opt-in list on a hosted form, and
    a campaign sent to its contacts, tracked in aggregate; the tracking stream and the
    page views' buffer on, as with Redis in production."""
    settings.SENDING = {**settings.SENDING, "tracking_stream": True}
    settings.PAGE_VIEW_BUFFER = True
    shared_redis().delete(tracking.STREAM)  # type: ignore[union-attr]
    account = customer.account
    services.set_postal_address(account, "1 Bench Street, 1000 City", by=customer)
    newsletter = MailingList.objects.create(
        account=account, name="Newsletter", visibility="public", optin="single"
    )
    form = SubscriptionForm.objects.create(
        account=account, name="Sign up", consent_text="Yes, send me the newsletter."
    )
    form.lists.add(newsletter)
    now = timezone.now()
    campaign = Campaign.objects.create(
        account=account,
        name="Bench",
        subject="Bench",
        from_email="news@example.org",
        body=f'<p>Read <a href="{URL}">the article</a>.</p>',
        status=Campaign.Status.SENT,
        track_opens=True,
        track_clicks=True,
        started_at=now,
        finished_at=now,
    )
    campaign.lists.add(newsletter)
    contacts = [
        Contact.objects.create(account=account, email=f"reader{i}@example.org") for i in range(3)
    ]
    for contact in contacts:
        Subscription.objects.create(contact=contact, mailing_list=newsletter, confirmed_at=now)
        Delivery.objects.create(campaign=campaign, contact=contact, status="sent", sent_at=now)
    return {"campaign": campaign, "form": form, "contacts": contacts}


def statements(django_assert_num_queries: Any, n: int, call: Any) -> Any:
    with django_assert_num_queries(n):
        return call()


def test_the_open_pixel_and_the_click_cost_no_statement(client, sent, django_assert_num_queries):
    campaign = sent["campaign"]
    pixel = reverse("sending:open", args=[tokens.open_token(campaign.pk, None)])
    click = reverse("sending:click", args=[tokens.click_token(campaign.pk, None, URL)])
    # The first click reads its campaign (the check), then it is kept in Redis.
    assert statements(django_assert_num_queries, 1, lambda: client.get(click)).status_code == 302
    assert statements(django_assert_num_queries, 0, lambda: client.get(pixel)).status_code == 200
    assert statements(django_assert_num_queries, 0, lambda: client.get(click)).status_code == 302
    assert tracking.drain() == 3
    assert dict(CampaignStat.objects.values_list("kind", "count")) == {"open": 1, "click": 2}


def test_the_one_click_unsubscribe_writes_in_one_transaction_without_savepoint(
    client, sent, django_assert_num_queries
):
    """Read the contact (with its account's name: the page is the sender's); end the
    subscriptions and the contact's status in a transaction (BEGIN and COMMIT: in a test,
    a savepoint and its release). The contact's page has no cookie banner, so nothing
    else is read, even the first time; the campaign's count goes to the stream."""
    contacts = sent["contacts"]

    def link(contact: Contact) -> str:
        token = tokens.unsubscribe_token(contact.uuid.hex, sent["campaign"].pk)
        return reverse("sending:unsubscribe", args=[token])

    def post(contact: Contact) -> Any:
        return client.post(link(contact), {"List-Unsubscribe": "One-Click"})

    assert statements(django_assert_num_queries, 5, lambda: post(contacts[0])).status_code == 200
    assert statements(django_assert_num_queries, 5, lambda: post(contacts[1])).status_code == 200
    assert Contact.objects.get(pk=contacts[1].pk).status == Contact.Status.UNSUBSCRIBED


def test_the_preference_page_reads_the_contact_and_theirs_only(
    client, sent, django_assert_num_queries
):
    """The contact with its account, the contact's subscriptions and open requests; the
    account's editable attribute names are read once, then kept; the page view is a
    HINCRBY (no identity, P26)."""

    def page(contact: Contact) -> str:
        return links.preference_url(contact).removeprefix("http://127.0.0.1:8000")

    first = statements(django_assert_num_queries, 4, lambda: client.get(page(sent["contacts"][0])))
    response = statements(
        django_assert_num_queries, 3, lambda: client.get(page(sent["contacts"][1]))
    )
    assert first.status_code == response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert flush_page_views() == 2


def test_the_hosted_form_page_is_kept_a_short_time_with_its_policy(
    client, sent, django_assert_num_queries
):
    form = sent["form"]
    form.thank_you_url = "https://shop.example.org/thanks"
    form.save()
    page = reverse("audience:subscribe", args=[form.uuid])
    # The form and its lists; the page view is a HINCRBY.
    first = statements(django_assert_num_queries, 2, lambda: client.get(page))
    # Then kept: no statement; the same page and the same policy.
    again = statements(django_assert_num_queries, 0, lambda: client.get(page))
    assert first.status_code == again.status_code == 200
    assert first.content == again.content and b"Newsletter" in again.content
    policy = again["Content-Security-Policy"]
    assert policy == first["Content-Security-Policy"]
    assert "form-action 'self' https://shop.example.org" in policy
    assert headers.CSP_DIRECTIVES  # the policy is the product's, extended
    assert flush_page_views() == 2


def test_the_hosted_form_post_of_a_new_address_opens_no_savepoint(
    client, sent, django_assert_num_queries
):
    """The form and its lists (read once); in a transaction: the address's contact (none),
    the suppression list, the contact, its subscriptions (one statement, no savepoint) and
    its proof of consent."""
    page = reverse("audience:subscribe", args=[sent["form"].uuid])
    body = {"email": "new@example.org", "name": "New", "consent": "on"}
    response = statements(django_assert_num_queries, 9, lambda: client.post(page, body))
    assert response.status_code == 200
    contact = Contact.objects.get(email="new@example.org")
    assert contact.status == Contact.Status.ACTIVE
    assert list(contact.subscriptions.values_list("status", flat=True)) == ["confirmed"]
    assert contact.consent_proofs.count() == 1
