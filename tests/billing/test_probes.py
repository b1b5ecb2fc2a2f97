"""Billing probed as a hostile customer would: other accounts' orders, webhooks that
pay the wrong amount, twice, late or for someone else, tampered forms, partial
refunds and credits spent twice. Each probe that found a hole is the test of its fix."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import close_old_connections, connection
from django.test import Client

from tests.billing.conftest import (
    BILLING_IDENTITY,
    checkout,
    place,
    post_test_webhook,
    session_event,
)
from tidings.billing import credits, gateways, services
from tidings.billing.gateways import TEST_SIGNATURE_HEADER, cents, sign
from tidings.billing.models import CreditEntry, Order, WebhookEvent

S = Order.Status
FORM = {**BILLING_IDENTITY, "currency": "EUR", "method": "test"}


@pytest.fixture
def order(customer, pack):  # type: ignore[no-untyped-def]
    made = place(customer, pack)
    checkout(made)
    return made


def refund_event(order: Order, amount: int, currency: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": f"evt_refund_{amount}",
            "type": "charge.refunded",
            "created": int(time.time()),
            "data": {
                "object": {
                    "object": "charge",
                    "payment_intent": order.payment_ref,
                    "amount_refunded": amount,
                    "currency": (currency or order.currency).lower(),
                }
            },
        }
    ).encode()


def paid(client, order: Order) -> Order:  # type: ignore[no-untyped-def]
    assert post_test_webhook(client, session_event(order)).status_code == 200
    order.refresh_from_db()
    assert order.status == S.PAID
    return order


# Someone else's order ------------------------------------------------------------------


def test_another_account_can_neither_see_nor_pay_an_order(client, other_customer, customer, pack):
    mine = place(customer, pack)
    client.force_login(other_customer)
    assert client.get(f"/account/billing/orders/{mine.uuid}/").status_code == 404
    assert client.post(f"/account/billing/orders/{mine.uuid}/pay/").status_code == 404
    mine.refresh_from_db()
    assert mine.gateway_ref == ""  # no session was opened for them
    assert mine.billing_name not in client.get("/account/billing/").content.decode()


def test_a_paid_event_for_another_accounts_session_pays_only_that_order(
    client, customer, other_customer, pack
):
    mine, theirs = place(customer, pack), place(other_customer, pack)
    checkout(mine), checkout(theirs)
    post_test_webhook(client, session_event(theirs))
    mine.refresh_from_db()
    assert mine.status == S.CREATED
    assert credits.balance_of(customer.account).available == 5
    assert credits.balance_of(other_customer.account).available == 1005


# Amount, currency, replay ----------------------------------------------------------------


@pytest.mark.parametrize(
    "change", [{"amount": 1}, {"amount": 0}, {"amount": -990}, {"currency": "usd"}]
)
def test_a_payment_of_another_amount_or_currency_pays_nothing(client, order, change):
    assert post_test_webhook(client, session_event(order, **change)).status_code == 400
    order.refresh_from_db()
    assert order.status == S.CREATED
    assert credits.balance_of(order.account).available == 5


def test_a_second_completed_event_with_a_new_id_credits_nothing_more(client, order):
    paid(client, order)
    again = session_event(order, event_id="evt_2")
    assert post_test_webhook(client, again).status_code == 200
    assert credits.balance_of(order.account).available == 1005
    assert CreditEntry.objects.filter(kind=CreditEntry.Kind.PURCHASE).count() == 1


def test_a_webhook_signed_an_hour_ago_is_refused(client, order):
    old = int(time.time()) - 3600
    response = post_test_webhook(client, session_event(order, created=old), at=old)
    assert response.status_code == 400
    assert state_of(order) == S.CREATED


def test_the_test_gateways_signature_does_not_open_the_stripe_receiver(client, order, settings):
    settings.BILLING = {**settings.BILLING, "stripe_webhook_secrets": [gateways.test_secrets()[0]]}
    body = session_event(order)
    response = client.post(
        "/billing/webhooks/stripe/",
        body,
        content_type="application/json",
        headers={TEST_SIGNATURE_HEADER: sign(body, gateways.test_secrets()[0])},
    )
    assert response.status_code == 400
    assert state_of(order) == S.CREATED


@pytest.mark.parametrize("body", [b"\x00" * 10, b'{"id": "\x00"}', b"[]", b"x" * 100_000])
def test_a_garbage_webhook_is_kept_refused_and_changes_nothing(client, order, body):
    assert post_test_webhook(client, body).status_code == 400
    assert state_of(order) == S.CREATED
    assert "\x00" not in WebhookEvent.objects.get().body


def test_paying_twice_on_the_test_gateways_page_credits_once(client, customer, order):
    page = f"/pay/test/{order.gateway_ref}/"
    client.post(page, {"outcome": "pay"})
    second = client.post(page, {"outcome": "pay"})
    assert second.status_code == 302
    assert credits.balance_of(customer.account).available == 1005


def state_of(order: Order) -> str:
    order.refresh_from_db()
    return order.status


# Refunds ----------------------------------------------------------------------------------


def test_a_partial_refund_neither_ends_the_order_nor_takes_every_credit(client, order):
    paid(client, order)
    post_test_webhook(client, refund_event(order, 100))
    assert state_of(order) == S.PAID
    assert credits.balance_of(order.account).available == 1005
    # The full refund then ends it.
    post_test_webhook(client, refund_event(order, cents(order.amount)))
    assert state_of(order) == S.REFUNDED
    assert credits.balance_of(order.account).available == 5


def test_a_refund_in_another_currency_changes_nothing(client, order):
    paid(client, order)
    post_test_webhook(client, refund_event(order, cents(order.amount), currency="JPY"))
    assert state_of(order) == S.PAID


def test_a_late_payment_event_does_not_revive_a_refunded_order(client, order):
    paid(client, order)
    post_test_webhook(client, refund_event(order, cents(order.amount)))
    post_test_webhook(client, session_event(order, event_id="evt_late"))
    assert state_of(order) == S.REFUNDED
    assert credits.balance_of(order.account).available == 5


# Tampered forms and the service's own checks ---------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"method": "stripe"},  # a gateway not configured
        {"method": "bogus"},
        {"currency": "GBP"},
        {"billing_address": "x" * 5000},
        {"billing_country": "G\x00"},
        {"vat_number": "4242 4242 4242 4242"},
    ],
)
def test_a_tampered_order_form_writes_nothing(client, customer, pack, change):
    client.force_login(customer)
    response = client.post(f"/account/billing/order/{pack.pk}/", {**FORM, **change})
    assert response.status_code == 200
    assert not Order.objects.exists()


@pytest.mark.parametrize("method", ["bogus", "stripe"])
def test_the_service_refuses_a_payment_method_not_offered(customer, pack, method):
    with pytest.raises(services.OrderRefused):
        place(customer, pack, method=method)
    assert not Order.objects.exists()


def test_an_order_of_an_offer_that_does_not_exist_is_404(client, customer):
    client.force_login(customer)
    assert client.get("/account/billing/order/999999/").status_code == 404


# Credits ----------------------------------------------------------------------------------


def test_credits_cannot_be_reserved_twice_nor_below_zero(customer):
    credits.reserve_for_campaign(customer.account, 1, 5)
    with pytest.raises(credits.NotEnoughCredits):
        credits.reserve_for_campaign(customer.account, 2, 1)
    with pytest.raises(ValueError, match="cannot reserve -5"):
        credits.reserve_for_campaign(customer.account, 3, -5)  # would mint credits
    assert credits.balance_of(customer.account).available == 0


def test_a_step_asking_for_a_negative_number_of_messages_gets_nothing(customer):
    assert credits.spend_for_step(customer.account, 1, -5) == 0
    assert credits.balance_of(customer.account).available == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_paying_one_order_in_two_tabs_at_once_opens_one_session(customer, pack):
    order = place(customer, pack)
    barrier = threading.Barrier(2)
    answers: list[str] = []

    def pay() -> None:
        try:
            tab = Client()
            tab.force_login(customer)
            barrier.wait()
            answers.append(tab.post(f"/account/billing/orders/{order.uuid}/pay/")["Location"])
        finally:
            connection.close()

    tabs = [threading.Thread(target=pay) for _ in range(2)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join()
    close_old_connections()
    order.refresh_from_db()
    # Each tab lands on the one session, or is told the order is being paid elsewhere.
    to_gateway = [a for a in answers if "/pay/test/" in a]
    assert to_gateway and all(order.gateway_ref in a for a in to_gateway)
    assert len(answers) == 2
