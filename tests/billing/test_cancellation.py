"""Closing an account ends its plans here and at the gateway (billing.cancellation): the
real Stripe adapter cancels the subscription on the local fake, once, asked again later
while Stripe does not answer; a renewal told after the close never revives the plan."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.billing.conftest import checkout, place, post_test_webhook, session_event
from tests.billing.test_stripe import post, stripe_signature
from tests.billing.test_stripe import stripe as stripe  # the fixture
from tests.factories import PASSWORD
from tidings.accounts import services as accounts
from tidings.billing import cancellation, credits, renewals, services
from tidings.billing.models import GatewayCancellation, Order, Subscription
from tidings.billing.tasks import cancel_at_gateways
from tidings.celery import app
from tidings.privacy import services as privacy
from tidings.staff.models import AuditEvent

SUB = "sub_stripe_close"


@pytest.fixture
def stripe_sub(client, customer, plan, stripe):  # type: ignore[no-untyped-def]
    """A monthly plan bought on Stripe Checkout: a subscription at the fake Stripe."""
    order = place(customer, plan, method="stripe")
    services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    order.refresh_from_db()
    stripe.add_subscription(SUB)
    session = {**stripe.sessions[order.gateway_ref], "status": "complete"}
    body = json.dumps(
        {
            "id": "evt_checkout",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {"object": {**session, "payment_status": "paid", "subscription": SUB}},
        }
    ).encode()
    assert post(client, body, stripe_signature(body)).status_code == 200
    return Subscription.objects.get(order=order)


def deletes(stripe) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return [r for r in stripe.requests if r.get("method") == "DELETE"]


def close(customer, **kwargs) -> None:  # type: ignore[no-untyped-def]
    accounts.close_account(customer.account, by=customer, **kwargs)


def asked() -> GatewayCancellation:
    return GatewayCancellation.objects.get()


@pytest.mark.promise("P4")
def test_closing_the_account_cancels_its_stripe_subscription(
    client, customer, stripe_sub, stripe, mailbox
):
    client.force_login(customer)
    assert "nothing more is charged" in client.get("/account/close/").content.decode()
    answer = client.post("/account/close/", {"password": PASSWORD})
    assert answer.status_code == 302
    assert stripe.cancelled == [SUB]
    (request,) = deletes(stripe)
    assert request["path"] == f"/v1/subscriptions/{SUB}"
    assert request["idempotency_key"] == f"{stripe_sub.order.idempotency_key}-cancel"
    stripe_sub.refresh_from_db()
    assert stripe_sub.status == Subscription.Status.CANCELLED
    cancellation_ = asked()
    assert cancellation_.subscription == stripe_sub and cancellation_.gateway_ref == SUB
    assert cancellation_.done_at is not None and cancellation_.due_at is None
    assert cancellation_.outcome == "cancelled" and cancellation_.attempts == 1
    assert credits.active_plan(stripe_sub.account) is None
    reasons = set(AuditEvent.objects.values_list("reason", flat=True))
    assert "plan cancelled: account closed" in reasons
    assert "plan cancelled at the gateway stripe (cancelled)" in reasons
    # Later runs of the job ask nothing more.
    assert cancel_at_gateways() == 0
    assert len(deletes(stripe)) == 1


def test_stripe_down_at_the_close_is_asked_again_later_then_done_once(
    customer, stripe_sub, stripe, mailbox
):
    stripe.down = True
    close(customer)
    stripe_sub.refresh_from_db()
    assert stripe.cancelled == []
    assert stripe_sub.status == Subscription.Status.CANCELLED  # here at once
    first = asked()
    assert first.done_at is None and first.attempts == 1 and first.error
    retry_at = first.due_at
    assert retry_at is not None and retry_at > timezone.now()
    assert cancellation.cancel_due() == 0  # not due yet: nothing asked
    tried = len(deletes(stripe))
    with time_machine.travel(retry_at + timedelta(seconds=1), tick=False):
        assert cancellation.cancel_due() == 0  # still down: the wait doubles
    second = asked()
    assert second.attempts == 2 and len(deletes(stripe)) > tried
    assert second.due_at - retry_at >= timedelta(minutes=10)
    stripe.down = False
    with time_machine.travel(second.due_at + timedelta(seconds=1), tick=False):
        assert cancellation.cancel_due() == 1
        assert cancellation.cancel_due() == 0
    assert stripe.cancelled == [SUB]
    done = asked()
    assert done.done_at is not None and done.error == "" and done.attempts == 3


def test_an_account_erased_at_once_while_stripe_is_down_is_still_cancelled_there(
    customer, stripe_sub, stripe, mailbox
):
    stripe.down = True
    close(customer, erase_now=True)
    privacy.erase_account(stripe_sub.account_id)  # the erasure job, as queued by the close
    assert not Subscription.objects.filter(pk=stripe_sub.pk).exists()
    waiting = asked()
    assert waiting.subscription is None and waiting.done_at is None  # not lost
    stripe.down = False
    with time_machine.travel(waiting.due_at + timedelta(seconds=1), tick=False):
        assert cancel_at_gateways() == 1
    assert stripe.cancelled == [SUB]
    assert AuditEvent.objects.filter(reason__startswith="plan cancelled at the gateway").exists()


def test_a_try_repeated_after_a_crash_cancels_once_by_its_idempotency_key(
    customer, stripe_sub, stripe, mailbox
):
    close(customer)
    # As if the process died after Stripe answered and before it was recorded.
    GatewayCancellation.objects.update(done_at=None, due_at=timezone.now())
    assert cancellation.cancel_due() == 1
    assert stripe.cancelled == [SUB] and len(deletes(stripe)) == 2
    assert len({r["idempotency_key"] for r in deletes(stripe)}) == 1


def test_a_subscription_stripe_no_longer_knows_is_done_and_a_claimed_one_is_not_asked_twice(
    customer, stripe_sub, stripe, mailbox
):
    stripe.subscriptions[SUB]["status"] = "canceled"  # cancelled at Stripe already
    close(customer)
    assert asked().done_at is not None and asked().outcome == "gone"
    assert AuditEvent.objects.filter(reason__endswith="(gone)").count() == 1
    # A try claimed by another run (its lease not over) is not asked again.
    GatewayCancellation.objects.update(done_at=None, due_at=timezone.now() + cancellation.LEASE)
    before = len(deletes(stripe))
    assert cancellation.cancel_due() == 0 and len(deletes(stripe)) == before


def test_a_renewal_told_after_the_close_never_revives_the_plan(
    client, customer, stripe_sub, stripe, mailbox
):
    close(customer)
    body = json.dumps(
        {
            "id": "evt_late_renewal", "type": "invoice.paid", "created": int(time.time()),
            "data": {"object": {
                "object": "invoice", "id": "in_late", "subscription": SUB,
                "billing_reason": "subscription_cycle", "currency": "eur",
                "amount_due": int(stripe_sub.order.amount * 100),
            }},
        }
    ).encode()  # fmt: skip
    assert post(client, body, stripe_signature(body)).status_code == 200
    active = {
        "id": "evt_late_active", "type": "customer.subscription.updated",
        "created": int(time.time()) + 60,
        "data": {"object": {"object": "subscription", "id": SUB, "status": "active"}},
    }  # fmt: skip
    body = json.dumps(active).encode()
    assert post(client, body, stripe_signature(body)).status_code == 200
    stripe_sub.refresh_from_db()
    assert stripe_sub.status == Subscription.Status.CANCELLED
    assert not Order.objects.filter(renewal_of=stripe_sub).exists()


def test_closing_cancels_a_plan_in_dunning_and_one_on_the_test_gateway_without_asking(
    client, customer, plan, mailbox
):
    order = place(customer, plan)  # the test gateway: it renews nothing by itself
    checkout(order)
    assert post_test_webhook(client, session_event(order, event_id="evt_buy")).status_code == 200
    sub = Subscription.objects.get(order=order)
    Subscription.objects.filter(pk=sub.pk).update(
        payment_failed_at=timezone.now(), dunning_step=Subscription.DunningStep.TOLD
    )
    close(customer, erase_now=False)
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELLED and sub.payment_failed_at is None
    assert not GatewayCancellation.objects.exists()
    with time_machine.travel(sub.current_period_end + timedelta(minutes=5), tick=False):
        assert renewals.renew_due() == 0


def test_closing_twice_is_refused_and_asks_nothing_more(customer, stripe_sub, stripe, mailbox):
    close(customer)
    with pytest.raises(accounts.AccountError):
        close(customer)
    assert stripe.cancelled == [SUB] and len(deletes(stripe)) == 1
    assert GatewayCancellation.objects.count() == 1


def test_the_job_runs_every_ten_minutes():
    entry = app.conf.beat_schedule["cancel-at-gateways"]
    assert entry["task"] == cancel_at_gateways.name and entry["schedule"] == 600.0


def test_the_wait_doubles_up_to_six_hours():
    waits = [cancellation.retry_after(n) for n in range(1, 10)]
    assert waits[:3] == [timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20)]
    assert waits[-1] == timedelta(hours=6) and waits == sorted(waits)
