"""P10: card numbers never touch Tidings. Every ordering flow runs with the gateways
posting back payloads that carry known test card numbers (spaced, dashed, bare, in JSON
and in text); then the whole database (every table, every column, encrypted ones
decrypted), the logs and the outbox are searched for them, and scanned for any
Luhn-valid 13-19 digit run with a card network's prefix (billing.cards), but for the
allow-listed columns documented in docs/billing.md (hashes and random keys)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator

import pytest
from django.apps import apps
from django.core import mail
from django.db import connection

from tests.billing import stripe_fake
from tests.billing.conftest import BILLING_IDENTITY, checkout, place, post_test_webhook
from tests.billing.test_stripe import SECRET, stripe_signature
from tidings.billing import cards, credits, recharge, services
from tidings.billing.models import AutoRecharge, Order

CARDS = {
    "4242424242424242": "4242 4242 4242 4242",
    "5555555555554444": "5555-5555-5555-4444",
    "378282246310005": "378282246310005",
    "6011111111111117": "6011 1111 1111 1117",
    "4000056655665556": "4000056655665556",
}
# Columns whose values are hashes or random keys: hex or base64 text in which a run of
# digits may pass the Luhn check by chance. They never hold anything a person typed or
# a gateway sent (docs/billing.md, "Card numbers").
ALLOWED = {
    ("staff.AuditEvent", "hash"),
    ("staff.AuditEvent", "prev_hash"),
    ("billing.Order", "idempotency_key"),
    ("accounts.User", "password"),
    ("sessions.Session", "session_key"),
    ("sessions.Session", "session_data"),
}


def carrying_cards(obj: dict) -> dict:  # type: ignore[type-arg]
    """A gateway object with card numbers where a careless gateway might put them."""
    spaced, dashed, bare = CARDS["4242424242424242"], CARDS["5555555555554444"], "378282246310005"
    return {
        **obj,
        "card": {"number": spaced, "last4": "4242"},
        "description": f"paid with {dashed}",
        "metadata": {"note": bare, "n": 6011111111111117},
        "customer_details": {"name": "Card 4000056655665556 Holder"},
    }


def texts() -> Iterator[tuple[str, str, str]]:
    """(model, field, text) for every value of every row of every table."""
    for model in apps.get_models(include_auto_created=True):
        label = model._meta.label
        fields = [f for f in model._meta.concrete_fields]
        for row in model._base_manager.all().iterator():
            for f in fields:
                value = getattr(row, f.attname)
                if value is not None:
                    yield (
                        label,
                        f.name,
                        value if isinstance(value, str) else json.dumps(value, default=str),
                    )
        with connection.cursor() as cursor:  # the stored bytes, before any decryption
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608  (a model's own table)
            for values in cursor.fetchall():
                for column, value in zip(cursor.description, values, strict=True):
                    if value is not None:
                        yield label, column[0], str(value)


def digits_only(text: str) -> str:
    return re.sub(r"[ -]", "", text)


@pytest.fixture
def stripe(settings) -> Iterator[stripe_fake.FakeStripe]:  # type: ignore[no-untyped-def]
    for fake in stripe_fake.serve():
        settings.BILLING = {
            **settings.BILLING,
            "stripe_api_key": stripe_fake.API_KEY,
            "stripe_api_base": fake.url,
            "stripe_webhook_secrets": [SECRET],
        }
        yield fake


@pytest.mark.promise("P10")
def test_no_card_number_reaches_the_database_the_logs_or_the_outbox(
    client, customer, pack, plan, stripe, caplog, settings, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    client.force_login(customer)
    with django_capture_on_commit_callbacks(execute=True):
        # 1. A customer types a card number where the billing identity goes: refused.
        for number in CARDS.values():
            form = {**BILLING_IDENTITY, "currency": "EUR", "method": "test"}
            form["billing_address"] = f"card {number}"
            page = client.post(f"/account/billing/order/{pack.pk}/", form)
            assert "Never type a card number here" in page.content.decode()

        # 2. The test gateway, and a webhook of it carrying card numbers (JSON).
        paid = place(customer, pack)
        checkout(paid)
        body = json.dumps(
            {
                "id": "evt_cards", "type": "checkout.session.completed",
                "created": int(time.time()),
                "data": {"object": carrying_cards({
                    "object": "checkout.session", "id": paid.gateway_ref,
                    "payment_status": "paid", "amount_total": int(paid.amount * 100),
                    "currency": "eur",
                    "payment_intent": "pi_cards",
                })},
            }
        ).encode()  # fmt: skip
        assert post_test_webhook(client, body).status_code == 200
        paid.refresh_from_db()
        assert paid.status == Order.Status.PAID
        services.refund_on_test_gateway(paid)

        # 3. A forged one and a text one, with card numbers in the body and the headers.
        client.post(
            "/billing/webhooks/test/",
            f"card={CARDS['6011111111111117']}&cvc=123".encode(),
            content_type="text/plain",
            headers={"Tidings-Test-Signature": "t=1,v1=00", "X-Card": CARDS["5555555555554444"]},
        )

        # 3b. Automatic recharge on the test gateway: a pack paid keeping the card, the
        # recharge charged off-session, and a payment event carrying card numbers.
        kept = place(customer, pack, save_payment_method=True)
        services.pay_on_test_gateway(checkout(kept), "pay")
        kept.refresh_from_db()
        recharge.turn_on(
            customer.account, by=customer, payment_order=str(kept.uuid), offer_id=pack.pk,
            threshold=100, agreed=True,
        )  # fmt: skip
        credits.reserve_for_campaign(
            customer.account, 1, credits.balance_of(customer.account).available - 10
        )
        services.run_recharge(customer.account_id)  # the job the spending queued
        made = Order.objects.get(recharge=True)
        assert made.status == Order.Status.PAID
        body = json.dumps(
            {
                "id": "evt_pi_cards", "type": "payment_intent.succeeded",
                "created": int(time.time()),
                "data": {"object": carrying_cards({
                    "object": "payment_intent", "id": made.gateway_ref,
                    "amount": int(made.amount * 100), "currency": "eur",
                    "customer": made.gateway_customer, "payment_method": "pm_x",
                    "metadata": {"tidings_order": str(made.uuid), "note": "378282246310005"},
                })},
            }
        ).encode()  # fmt: skip
        assert post_test_webhook(client, body).status_code == 200

        # 4. Stripe Checkout, its webhook carrying card numbers.
        settings.BILLING = {**settings.BILLING, "gateway": "stripe"}
        form = {**BILLING_IDENTITY, "currency": "EUR", "method": "stripe"}
        response = client.post(f"/account/billing/order/{plan.pk}/", form)
        assert response.status_code == 302
        order = Order.objects.get(gateway="stripe")
        session = carrying_cards({**stripe.sessions[order.gateway_ref], "payment_status": "paid"})
        event = json.dumps(
            {"id": "evt_s", "type": "checkout.session.completed", "created": int(time.time()),
             "data": {"object": session}}
        ).encode()  # fmt: skip
        response = client.post(
            "/billing/webhooks/stripe/", event, content_type="application/json",
            headers={"Stripe-Signature": stripe_signature(event)},
        )  # fmt: skip
        assert response.status_code == 200

        # 5. A pack on Stripe keeping the card, its payment's event carrying card numbers
        # beside the payment method's id; then a recharge charged off-session at Stripe.
        stripe_kept = place(customer, pack, method="stripe", save_payment_method=True)
        checkout(stripe_kept)
        session = stripe.sessions[stripe_kept.gateway_ref]
        for kind, obj in (
            ("checkout.session.completed", {**session, "payment_status": "paid",
                                            "payment_intent": "pi_kept"}),
            ("payment_intent.succeeded", {"object": "payment_intent", "id": "pi_kept",
                                          "amount": session["amount_total"], "currency": "eur",
                                          "customer": session["customer"],
                                          "payment_method": "pm_card_visa",
                                          "metadata": {"tidings_order": str(stripe_kept.uuid)}}),
        ):  # fmt: skip
            event = json.dumps(
                {"id": f"evt_{kind}", "type": kind, "created": int(time.time()),
                 "data": {"object": carrying_cards(obj)}}
            ).encode()  # fmt: skip
            response = client.post(
                "/billing/webhooks/stripe/", event, content_type="application/json",
                headers={"Stripe-Signature": stripe_signature(event)},
            )  # fmt: skip
            assert response.status_code == 200
        stripe_kept.refresh_from_db()
        assert stripe_kept.gateway_payment_method == "pm_card_visa"
        AutoRecharge.objects.filter(account=customer.account).update(
            payment_order=stripe_kept, enabled=True
        )
        left = credits.balance_of(customer.account).available
        credits.reserve_for_campaign(customer.account, 2, left - 10)  # below: recharged
        services.run_recharge(customer.account_id)  # the job the spending queued
        assert stripe.payment_intents  # charged off-session at the fake
        client.get("/account/billing/")

    # The new columns were written, and are searched like every other.
    assert Order.objects.exclude(gateway_customer="").exclude(gateway_payment_method="").exists()
    assert AutoRecharge.objects.exclude(consent_text="").exists()
    found = []
    for model, field, text in texts():
        for digits, shown in CARDS.items():
            if digits in digits_only(text) or shown in text:
                found.append((model, field, digits))
        if (model, field) not in ALLOWED and cards.find_card_numbers(text):
            found.append((model, field, "Luhn"))
    assert found == []
    logs = caplog.text + "".join(m.subject + m.body for m in mail.outbox)
    assert mail.outbox  # the flows did write mail, and none of it carries a card number
    for digits, shown in CARDS.items():
        assert digits not in digits_only(logs) and shown not in logs
    assert not cards.find_card_numbers(logs)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("paid with 4242 4242 4242 4242", ["4242424242424242"]),
        ("card 4242-4242-4242-4242.", ["4242424242424242"]),
        # The decimals of a duration a worker logged (seen once in a full run): no card.
        ("succeeded in 0.22412489499947696s", []),
        ("order 12345678901234567890123", []),  # inside a longer number
        # Inside a gateway's random identifier (seen once in a full run): no card.
        ("session cs_test_2eb01c3455803393019accb2", []),
        ("ref 3455803393019accb2", []),
        ('{"number": "4242424242424242"}', ["4242424242424242"]),
        ("card=4242424242424242&cvc=123", ["4242424242424242"]),
    ],
)
def test_the_scan_finds_card_numbers_and_not_the_decimals_of_a_number(text, found):
    assert cards.find_card_numbers(text) == found
    assert (cards.redact(text) != text) is bool(found)
