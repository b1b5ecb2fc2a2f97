"""The real Stripe Checkout adapter (the official `stripe` library) against a local fake
of the endpoints it uses, with webhooks signed as Stripe documents:
`Stripe-Signature: t=<time>,v1=<hex HMAC-SHA256(secret, "<time>.<body>")>`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest

from tests.billing import stripe_fake
from tests.billing.conftest import BILLING_IDENTITY, place
from tidings.billing import credits, services
from tidings.billing.models import Order

SECRET = "whsec_tidings_test"
OLD_SECRET = "whsec_before_rotation"


@pytest.fixture
def stripe(settings) -> Iterator[stripe_fake.FakeStripe]:  # type: ignore[no-untyped-def]
    for fake in stripe_fake.serve():
        settings.BILLING = {
            **settings.BILLING,
            "gateway": "stripe",
            "stripe_api_key": stripe_fake.API_KEY,
            "stripe_api_base": fake.url,
            "stripe_webhook_secrets": [SECRET, OLD_SECRET],
        }
        yield fake


def stripe_signature(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.{body.decode()}".encode(), hashlib.sha256)
    return f"t={at},v1={mac.hexdigest()}"


def completed(session: dict, event_id: str = "evt_stripe_1", **changes: object) -> bytes:  # type: ignore[type-arg]
    obj = {**session, "status": "complete", "payment_status": "paid", "payment_intent": "pi_1"}
    obj.update(changes)
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()


def post(client, body: bytes, signature: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/billing/webhooks/stripe/",
        body,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )


@pytest.mark.promise("P4", "P10")
def test_an_order_paid_on_stripe_checkout_is_fulfilled_by_its_signed_webhook(
    client, customer, pack, stripe
):
    client.force_login(customer)
    form = {**BILLING_IDENTITY, "currency": "EUR", "method": "stripe"}
    response = client.post(f"/account/billing/order/{pack.pk}/", form)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{stripe.url}/pay/cs_test_")
    (request,) = stripe.requests
    order = Order.objects.get()
    assert request["idempotency_key"] == order.idempotency_key
    assert request["params"]["mode"] == "payment"
    # The pack's 9.90 with its 21 % VAT added: what the invoice will say was paid.
    assert request["params"]["line_items[0][price_data][unit_amount]"] == "1198"
    assert not any("card" in name for name in request["params"])  # a redirect, no card field
    session = stripe.sessions[order.gateway_ref]

    assert credits.balance_of(customer.account).available == 5  # not before the webhook
    body = completed(session)
    assert post(client, body, stripe_signature(body)).status_code == 200
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.payment_ref == "pi_1"
    assert credits.balance_of(customer.account).available == 1005


def test_a_repeated_checkout_request_replays_by_its_idempotency_key(customer, pack, stripe):
    order = place(customer, pack, method="stripe")
    first = services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    second = services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    assert first == second and len(stripe.sessions) == 1
    assert {r["idempotency_key"] for r in stripe.requests} == {order.idempotency_key}


def test_a_plan_is_a_subscription_checkout(customer, plan, stripe):
    order = place(customer, plan, method="stripe")
    services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    params = stripe.requests[0]["params"]
    assert params["mode"] == "subscription"
    assert params["line_items[0][price_data][recurring][interval]"] == "month"


def test_the_previous_secret_is_valid_during_a_rotation(client, customer, pack, stripe):
    order = place(customer, pack, method="stripe")
    services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    body = completed(stripe.sessions[Order.objects.get().gateway_ref])
    assert post(client, body, stripe_signature(body, OLD_SECRET)).status_code == 200


@pytest.mark.parametrize(
    "signature",
    [
        lambda body: stripe_signature(body, "whsec_forged"),
        lambda body: stripe_signature(body, at=int(time.time()) - 301),
        lambda body: "",
    ],
    ids=["forged", "stale", "missing"],
)
def test_a_forged_stale_or_unsigned_stripe_webhook_changes_nothing(
    client, customer, pack, stripe, signature
):
    order = place(customer, pack, method="stripe")
    services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    order.refresh_from_db()
    body = completed(stripe.sessions[order.gateway_ref])
    assert post(client, body, signature(body)).status_code == 400
    order.refresh_from_db()
    assert order.status == Order.Status.CREATED


def test_a_stripe_session_paid_for_another_amount_is_refused(client, customer, pack, stripe):
    order = place(customer, pack, method="stripe")
    services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    order.refresh_from_db()
    body = completed(stripe.sessions[order.gateway_ref], amount_total=1)
    assert post(client, body, stripe_signature(body)).status_code == 400
    assert credits.balance_of(customer.account).available == 5


def test_a_gateway_refusal_is_a_clear_error_and_charges_nothing(customer, pack, stripe):
    # The same idempotency key with other parameters: Stripe (and the fake) refuse it.
    order = place(customer, pack, method="stripe")
    services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    Order.objects.filter(pk=order.pk).update(gateway_ref="")
    order.refresh_from_db()
    with pytest.raises(services.OrderRefused, match="nothing was charged"):
        services.start_checkout(order, success_url="http://t/other", cancel_url="http://t/no")
    assert credits.balance_of(customer.account).available == 5


def test_stripe_unreachable_is_a_clear_error(client, customer, pack, stripe, settings):
    settings.BILLING = {**settings.BILLING, "stripe_api_base": "http://127.0.0.1:9"}
    client.force_login(customer)
    form = {**BILLING_IDENTITY, "currency": "EUR", "method": "stripe"}
    response = client.post(f"/account/billing/order/{pack.pk}/", form)
    assert response.status_code == 200
    assert "nothing was charged" in response.content.decode()
    # The order waits, unpaid; once Stripe answers, "Pay" takes the customer there.
    order = Order.objects.get()
    settings.BILLING = {**settings.BILLING, "stripe_api_base": stripe.url}
    again = client.post(f"/account/billing/orders/{order.uuid}/pay/")
    assert again.status_code == 302 and again["Location"].startswith(stripe.url)


def test_the_order_page_lets_its_form_lead_to_stripes_hosted_page(client, customer, pack, stripe):
    # A form's POST answered by a redirect elsewhere is held to form-action too.
    client.force_login(customer)
    policy = client.get(f"/account/billing/order/{pack.pk}/")["Content-Security-Policy"]
    form_action = next(d for d in policy.split("; ") if d.startswith("form-action"))
    assert "https://checkout.stripe.com" in form_action and "'self'" in form_action
