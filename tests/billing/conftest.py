"""Billing fixtures: what is sold, a small free allowance, and helpers that post
webhooks signed as the gateways sign them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tidings.billing import services
from tidings.billing.gateways import TEST_SIGNATURE_HEADER, sign, test_secrets
from tidings.billing.models import Offer, Order, Price, VatTreatment

BILLING_IDENTITY = {
    "buyer_kind": "company",
    "billing_name": "Analytical Engines Ltd",
    "billing_address": "12 St James's Square\nLondon SW1Y 4JH",
    "billing_country": "GB",
    "vat_number": "GB123456789",
}


VIES_REPLIES = Path(__file__).with_name("vies")


class FakeVies:
    """The EU's VIES REST service as it answers, from replies recorded in tests/billing/vies
    (`reply` names the one to give: valid, invalid, ms_unavailable; None: hang up)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply: str | None = "valid"

    def answer(self, request: dict[str, Any]) -> bytes | None:
        self.requests.append(request)
        if self.reply is None:
            return None
        data = json.loads((VIES_REPLIES / f"{self.reply}.json").read_text())
        if "valid" in data:
            data["countryCode"], data["vatNumber"] = request["countryCode"], request["vatNumber"]
            if "requesterNumber" not in request:
                data["requestIdentifier"] = ""  # VIES gives it to a requester only
        return json.dumps(data).encode()


@pytest.fixture(scope="session")
def _vies_server() -> Iterator[tuple[ThreadingHTTPServer, list[FakeVies]]]:
    current: list[FakeVies] = [FakeVies()]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not self.path.endswith("/rest-api/check-vat-number"):
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length", "0"))
            body = current[0].answer(json.loads(self.rfile.read(length)))
            if body is None:
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, current
    server.shutdown()


@pytest.fixture(autouse=True)
def vies(settings, _vies_server) -> FakeVies:  # type: ignore[no-untyped-def]
    server, current = _vies_server
    current[0] = FakeVies()
    settings.BILLING = {
        **settings.BILLING,
        "vies_url": f"http://127.0.0.1:{server.server_address[1]}/taxation_customs/vies/rest-api",
        "vies_timeout": 5,
    }
    return current[0]


@pytest.fixture(autouse=True)
def _small_allowance(settings, vies):  # type: ignore[no-untyped-def]
    settings.BILLING = {**settings.BILLING, "free_credits": 5, "gateway": "test"}


@pytest.fixture
def pack(db) -> Offer:  # type: ignore[no-untyped-def]
    offer = Offer.objects.create(
        kind=Offer.Kind.PACK,
        name="1,000 credits",
        credits=1000,
        vat_treatment=VatTreatment.STANDARD,
        vat_rate=Decimal("21.00"),
    )
    Price.objects.create(offer=offer, currency="EUR", amount=Decimal("9.90"))
    Price.objects.create(offer=offer, currency="USD", amount=Decimal("10.90"))
    return offer


@pytest.fixture
def plan(db) -> Offer:  # type: ignore[no-untyped-def]
    offer = Offer.objects.create(
        kind=Offer.Kind.PLAN, name="Starter", period=Offer.Period.MONTH, contact_limit=3,
        vat_treatment=VatTreatment.REVERSE_CHARGE,
    )  # fmt: skip
    Price.objects.create(offer=offer, currency="EUR", amount=Decimal("29.00"))
    return offer


def place(customer: Any, offer: Offer, currency: str = "EUR", **kwargs: Any) -> Order:
    return services.place_order(
        account_id=customer.account_id,
        offer_id=offer.pk,
        currency=currency,
        by=customer,
        **{**BILLING_IDENTITY, **kwargs},
    )


def checkout(order: Order) -> str:
    """Send the order to the hosted page (as the order page does); its session id."""
    services.start_checkout(order, success_url="http://t/ok", cancel_url="http://t/no")
    order.refresh_from_db()
    return order.gateway_ref


def session_event(
    order: Order,
    kind: str = "checkout.session.completed",
    *,
    event_id: str = "evt_1",
    payment_status: str = "paid",
    amount: int | None = None,
    currency: str | None = None,
    created: int | None = None,
) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": kind,
            "created": created or int(time.time()),
            "data": {
                "object": {
                    "object": "checkout.session",
                    "id": order.gateway_ref,
                    "payment_status": payment_status,
                    "amount_total": int(order.amount * 100) if amount is None else amount,
                    "currency": (currency or order.currency).lower(),
                    "payment_intent": f"pi_{order.pk}",
                }
            },
        }
    ).encode()


def post_test_webhook(
    client: Client, body: bytes, *, secret: str | None = None, at: int | None = None
) -> Any:
    signature = sign(body, secret or test_secrets()[0], at)
    return client.post(
        "/billing/webhooks/test/",
        body,
        content_type="application/json",
        headers={TEST_SIGNATURE_HEADER: signature},
    )
