"""Billing data in the data map: My Account shows it, the archive holds it, erasure
leaves nothing of it (the invoices keep what the law needs), raw webhooks expire."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.billing.conftest import checkout, place, post_test_webhook, session_event
from tidings.accounts import services as accounts
from tidings.billing.models import (
    CreditBalance,
    CreditEntry,
    Order,
    ProcessedEvent,
    Subscription,
    WebhookEvent,
)
from tidings.core import retention


@pytest.fixture
def paid(client, customer, plan):  # type: ignore[no-untyped-def]
    order = place(customer, plan)
    checkout(order)
    assert post_test_webhook(client, session_event(order)).status_code == 200
    return order


@pytest.mark.promise("P15")
def test_my_account_shows_the_orders_billing_identity(client, customer, paid):
    client.force_login(customer)
    page = client.get("/account/").content.decode()
    assert "Analytical Engines Ltd" in page and "GB123456789" in page


@pytest.mark.promise("P17", "P14")
def test_erasing_the_account_leaves_no_order_webhook_or_credit(customer, paid, mailbox):
    account_id = customer.account_id
    accounts.close_account(customer.account, by=customer, erase_now=True)
    for model in (Order, WebhookEvent, CreditEntry, CreditBalance, Subscription, ProcessedEvent):
        assert not model.objects.filter(account_id=account_id).exists(), model
    assert not WebhookEvent.objects.exists()


@pytest.mark.promise("P12")
def test_raw_webhooks_are_deleted_after_their_period(customer, paid, settings):
    settings.BILLING = {**settings.BILLING, "raw_webhook_days": 30}
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(days=31))
    assert WebhookEvent.objects.count() == 1
    assert retention.run("raw payment webhooks") == 1
    assert not WebhookEvent.objects.exists()
    assert Order.objects.filter(pk=paid.pk).exists()  # the order itself stays
