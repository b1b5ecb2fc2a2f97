"""Transactional mail through the API (one template, one recipient, at once, same
relays, never to a suppressed address), and the operator's product updates (P5)."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory
from tests.sending.conftest import proven
from tidings.accounts import apikeys
from tidings.accounts.models import User
from tidings.audience import services as audience
from tidings.campaigns.models import Campaign
from tidings.sending import services
from tidings.sending.models import OutboundMail, ProductUpdate
from tidings.sending.product_updates import deliver, post_update, send_product_update

# On-commit jobs run as in production, inside the test's transaction (tests/commits.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_commit_runs")]


@pytest.fixture
def key(customer):  # type: ignore[no-untyped-def]
    return apikeys.create_api_key(customer.account, name="shop", by=customer)[1]


def tx(client, key: str, **payload: object):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/tx",
        data=payload,
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_an_inline_transactional_message_is_sent_at_once(client, key, relay, smtp_server):
    response = tx(
        client,
        key,
        to="Buyer@Example.net",
        subject="Order {{ data.order }}",
        body="<p>Thanks for order {{ data.order }}, {{ contact.email }}</p>",
        from_email="shop@shop.example.org",
        data={"order": "A-17"},
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "sent"
    (message,) = smtp_server.to("buyer@example.net")
    assert message["Subject"] == "Order A-17"
    assert "Thanks for order A-17, buyer@example.net" in message.get_body(("html",)).get_content()
    assert message["List-Unsubscribe"] is None  # transactional, not marketing


def test_a_campaign_can_serve_as_the_template(client, key, relay, smtp_server, campaign):
    proven(services.add_sending_domain(campaign.account, "news.example.org"))
    response = tx(client, key, to="buyer@example.net", template=str(campaign.uuid))
    assert response.status_code == 202
    assert smtp_server.to("buyer@example.net")[0]["From"] == "Example News <news@news.example.org>"


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_a_suppressed_or_bounced_address_gets_a_clear_422(
    client, key, account, relay, smtp_server, status
):
    audience.suppress(account, "gone@example.net", "erased")
    response = tx(client, key, to="gone@example.net", subject="s", body="b", from_email="a@b.org")
    assert response.status_code == 422 and "suppression" in response.json()["detail"]
    contact = audience.add_contact(account, "bad@example.net")
    audience.set_status(contact, status)
    response = tx(client, key, to="bad@example.net", subject="s", body="b", from_email="a@b.org")
    assert response.status_code == 422
    assert smtp_server.messages == []
    assert not OutboundMail.objects.filter(kind="transactional").exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"to": "not an address", "subject": "s", "body": "b", "from_email": "a@b.org"},
        {"to": "x@example.net", "subject": "s", "body": "{% if %}", "from_email": "a@b.org"},
        {
            "to": "x@example.net",
            "subject": "s",
            "body": "{{ ''.__class__.__mro__ }}",
            "from_email": "a@b.org",
        },
        {"to": "x@example.net", "body": "no subject", "from_email": "a@b.org"},
    ],
)
def test_bad_input_is_refused_and_sends_nothing(client, key, relay, smtp_server, payload):
    response = tx(client, key, **payload)
    assert response.status_code in (422, 200, 202)
    if response.status_code != 422:  # the sandbox rendered it harmlessly
        body = smtp_server.messages[0].get_body(("html",)).get_content()
        assert "class" not in body
    else:
        assert smtp_server.messages == []


def test_another_accounts_template_is_not_found(client, key, other_customer, relay):

    theirs = Campaign.objects.create(
        account=other_customer.account, name="x", subject="Theirs", body="b", from_email="t@x.org"
    )
    assert tx(client, key, to="a@example.net", template=str(theirs.uuid)).status_code == 404


@pytest.mark.promise("P5", "P18")
def test_product_updates_go_only_to_users_who_did_not_opt_out(customer, mailbox):
    opted_out = UserFactory(email="quiet@example.org", allow_product_updates=False)
    unconfirmed = UserFactory(email="new@example.org", email_confirmed_at=None)
    UserFactory(email="staffer@operator.example", account=None, is_staff=True)
    update = send_product_update("What is new in Tidings", "Segments are here.")
    recipients = [to for m in mailbox for to in m.to]
    assert recipients == [customer.email]
    assert "Switch them off" in mailbox[0].body
    assert not OutboundMail.objects.filter(user__in=[opted_out, unconfirmed]).exists()
    # Running the delivery again sends nothing twice.

    assert deliver(update.pk) == 0
    assert len(mailbox) == 1


@pytest.mark.promise("P18")
def test_opting_out_after_the_update_was_queued_still_stops_it(customer, mailbox):
    from django.db import transaction

    update = ProductUpdate.objects.create(subject="s", body="b")
    with transaction.atomic():  # queued; the postman runs after the commit
        assert post_update(update) == 1
        User.objects.filter(pk=customer.pk).update(allow_product_updates=False)
    assert mailbox == []
    assert OutboundMail.objects.get().status == "skipped"


def test_an_erased_contact_leaves_nothing_in_the_ledger(client, key, account, relay, smtp_server):

    # A receipt to an address that is no contact yet, then it becomes one and is erased.
    assert tx(client, key, to="later@example.net", subject="s", body="b", from_email="a@b.org")
    contact = audience.add_contact(account, "later@example.net")
    assert tx(client, key, to="later@example.net", subject="s", body="b", from_email="a@b.org")
    assert OutboundMail.objects.filter(to_email="later@example.net").count() == 2
    audience.erase_contact(contact)
    assert not OutboundMail.objects.filter(to_email="later@example.net").exists()
