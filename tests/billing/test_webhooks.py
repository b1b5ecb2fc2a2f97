"""The gateway's webhooks: stored as they came before anything else; a forged, stale or
unknown event changes nothing; each event applies once (five deliveries, two at once);
late events never undo a later state; every outcome ends in the right state."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import close_old_connections, connection
from django.test import Client

from tests.billing.conftest import checkout, place, post_test_webhook, session_event
from tidings.accounts import services as accounts
from tidings.billing import credits, services
from tidings.billing.models import CreditEntry, Order, ProcessedEvent, Subscription, WebhookEvent
from tidings.sending.models import OutboundMail

S = Order.Status


@pytest.fixture
def order(customer, pack):  # type: ignore[no-untyped-def]
    made = place(customer, pack)
    checkout(made)
    return made


def state(order: Order) -> str:
    order.refresh_from_db()
    return order.status


@pytest.mark.promise("P4")
def test_a_signed_payment_event_fulfils_the_order_once(client, order):
    response = post_test_webhook(client, session_event(order))
    assert response.status_code == 200
    assert state(order) == S.PAID
    assert credits.balance_of(order.account).available == 5 + 1000
    raw = WebhookEvent.objects.get()
    assert raw.valid and raw.processed and raw.account_id == order.account_id


def test_a_forged_signature_is_stored_refused_and_changes_nothing(client, order):
    response = post_test_webhook(client, session_event(order), secret="not-the-secret")
    assert response.status_code == 400
    assert state(order) == S.CREATED
    raw = WebhookEvent.objects.get()  # kept, as it came, for audit
    assert not raw.valid and raw.outcome.startswith("refused")
    assert not ProcessedEvent.objects.exists()


def test_a_stale_signature_is_a_replay_and_is_refused(client, order):
    old = int(time.time()) - 301
    response = post_test_webhook(client, session_event(order, created=old), at=old)
    assert response.status_code == 400
    assert state(order) == S.CREATED


def test_both_secrets_are_valid_during_a_rotation(client, order, settings):
    settings.BILLING = {**settings.BILLING, "test_secrets": ["new-secret", "old-secret"]}
    assert post_test_webhook(client, session_event(order), secret="old-secret").status_code == 200
    assert state(order) == S.PAID


def test_an_unreadable_body_is_refused(client, order):
    assert post_test_webhook(client, b"not json").status_code == 400
    assert post_test_webhook(client, b'{"id": "x"}').status_code == 400
    for bad in (
        {"id": "e" * 256, "type": "x", "created": 1, "data": {"object": {}}},
        {"id": "e", "type": "x", "created": 10**20, "data": {"object": {}}},
        {"id": "e", "type": "x", "created": 1, "data": {"object": []}},
        {"id": "", "type": "x", "created": 1, "data": {"object": {}}},
    ):
        assert post_test_webhook(client, json.dumps(bad).encode()).status_code == 400
    assert state(order) == S.CREATED


def test_an_unknown_event_type_changes_nothing(client, order):
    response = post_test_webhook(client, session_event(order, "payment_link.created"))
    assert response.status_code == 200
    assert state(order) == S.CREATED


@pytest.mark.promise("P4")
def test_the_same_event_five_times_credits_once(client, order):
    body = session_event(order, event_id="evt_again")
    answers = [post_test_webhook(client, body).status_code for _ in range(5)]
    assert answers == [200] * 5
    assert CreditEntry.objects.filter(order=order, kind="purchase").count() == 1
    assert credits.balance_of(order.account).available == 1005
    assert WebhookEvent.objects.count() == 5  # every delivery stored
    assert ProcessedEvent.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_event_twice_at_once_credits_once(customer, pack):
    order = place(customer, pack)
    checkout(order)
    body = session_event(order, event_id="evt_race")
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def deliver() -> None:
        try:
            barrier.wait()
            codes.append(post_test_webhook(Client(), body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()
    assert codes == [200, 200]
    assert CreditEntry.objects.filter(order=order, kind="purchase").count() == 1
    assert credits.balance_of(order.account).available == 1005


def test_an_amount_or_currency_other_than_the_orders_is_refused(client, order):
    assert post_test_webhook(client, session_event(order, amount=1)).status_code == 400
    assert (
        post_test_webhook(client, session_event(order, event_id="e2", currency="USD")).status_code
        == 400
    )
    assert state(order) == S.CREATED
    assert credits.balance_of(order.account).available == 5


def test_an_asynchronous_payment_waits_then_succeeds(client, order):
    post_test_webhook(client, session_event(order, payment_status="unpaid"))
    assert state(order) == S.PROCESSING
    assert credits.balance_of(order.account).available == 5
    post_test_webhook(
        client, session_event(order, "checkout.session.async_payment_succeeded", event_id="e2")
    )
    assert state(order) == S.PAID
    assert credits.balance_of(order.account).available == 1005


def test_an_asynchronous_payment_that_fails_fulfils_nothing(client, order):
    post_test_webhook(client, session_event(order, payment_status="unpaid"))
    post_test_webhook(
        client, session_event(order, "checkout.session.async_payment_failed", event_id="e2")
    )
    assert state(order) == S.FAILED
    assert credits.balance_of(order.account).available == 5


def test_an_expired_session_ends_the_order_and_a_late_expiry_undoes_no_payment(client, order):
    post_test_webhook(client, session_event(order))
    post_test_webhook(client, session_event(order, "checkout.session.expired", event_id="e2"))
    assert state(order) == S.PAID  # out of order: the expiry comes too late to matter
    other = place(order.created_by, order.offer)
    checkout(other)
    post_test_webhook(client, session_event(other, "checkout.session.expired", event_id="e3"))
    assert state(other) == S.EXPIRED


def test_a_refund_takes_back_the_credits_left(client, order):
    post_test_webhook(client, session_event(order))
    order.refresh_from_db()
    status, _outcome = services.refund_on_test_gateway(order)
    assert status == 200
    assert state(order) == S.REFUNDED
    assert credits.balance_of(order.account).available == 5


def test_a_cancelled_subscription_is_never_revived_by_a_late_event(client, customer, plan):
    order = place(customer, plan)
    checkout(order)
    post_test_webhook(client, session_event(order))
    sub = Subscription.objects.get(order=order)
    Subscription.objects.filter(pk=sub.pk).update(gateway_ref="sub_1")
    now = int(time.time())

    def sub_event(event_id: str, kind: str, status: str, created: int) -> bytes:
        return json.dumps(
            {
                "id": event_id, "type": kind, "created": created,
                "data": {"object": {"object": "subscription", "id": "sub_1", "status": status}},
            }
        ).encode()  # fmt: skip

    post_test_webhook(client, sub_event("s2", "customer.subscription.deleted", "canceled", now))
    # An "active" update written before the cancellation arrives after it.
    post_test_webhook(client, sub_event("s1", "customer.subscription.updated", "active", now - 60))
    post_test_webhook(client, sub_event("s3", "customer.subscription.updated", "active", now + 60))
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELLED
    assert credits.active_plan(customer.account) is None


def test_an_event_for_an_order_of_another_gateway_is_ignored(client, order):
    Order.objects.filter(pk=order.pk).update(gateway="stripe")
    post_test_webhook(client, session_event(order))
    assert state(order) == S.CREATED


def test_an_unknown_gateway_has_no_webhook(client, db):
    assert (
        client.post("/billing/webhooks/paypal/", b"{}", content_type="application/json").status_code
        == 404
    )


@pytest.mark.promise("P18")
@pytest.mark.promise("P21")
@pytest.mark.parametrize("stopped", ["closed", "restricted"])
def test_the_order_mail_goes_to_users_of_open_accounts_only(
    client, customer, other_customer, pack, mailbox, stopped
):
    """An order's news is service mail (accounts.mailability): a user of a closed or
    restricted account is not even posted one; a user of an open account gets it."""
    mine, theirs = place(customer, pack), place(other_customer, pack)
    checkout(mine)
    checkout(theirs)
    if stopped == "closed":
        accounts.close_account(other_customer.account, by=other_customer)
    else:
        accounts.restrict_account(other_customer.account, by=other_customer, reason="a dispute")
    post_test_webhook(client, session_event(mine, event_id="evt_mine"))
    post_test_webhook(client, session_event(theirs, event_id="evt_theirs"))
    assert state(mine) == state(theirs) == S.PAID
    orders = [m for m in mailbox if m.subject.startswith("Order ")]
    assert [m.to for m in orders] == [[customer.email]]
    assert not OutboundMail.objects.filter(
        to_email=other_customer.email, subject__startswith="Order "
    )
