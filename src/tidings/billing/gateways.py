"""Payment gateways behind one interface (P10): Tidings sends the customer to the
gateway's hosted page and learns the outcome from the gateway's signed webhook. No card
field is ever served by Tidings (PCI DSS SAQ A: a full redirect).

- `TestGateway`: served by Tidings itself (`billing.views.test_gateway`), for the
  embedded default and demonstrations: its page says that no money moves, and paying
  there hands a webhook, signed like Stripe's, to the same receiver real webhooks reach.
- `StripeGateway`: Stripe Checkout through the official `stripe` library.
- Bank transfer is no gateway: the order waits for billing staff (services).

Renewals (billing.renewals): Stripe renews its subscriptions itself and tells Tidings by
`invoice.paid` / `invoice.payment_failed`; the test gateway does not (`renews_itself`):
Tidings's renewal job opens the renewal there, and its page (or the test hook
`services.renew_on_test_gateway`) makes it succeed or fail by the same signed events.

Events of both are Stripe-shaped JSON; `parse_event` reads them into a `GatewayEvent`.
Signatures: `t=<unix time>,v1=<hex HMAC-SHA256(secret, "t.body")>`; any of the
configured secrets (two during a rotation), within BILLING["webhook_tolerance"].
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import stripe
from django.conf import settings
from django.urls import reverse

from tidings.billing.models import Order
from tidings.core import baseurl


class WebhookRejected(ValueError):
    """A webhook that is not the gateway's: bad or stale signature, unreadable body."""


class GatewayError(ValueError):
    """The gateway refused or could not be reached; nothing was charged."""


class GatewayDeclined(GatewayError):
    """The gateway declined an off-session charge (the card was declined, or the bank
    asks the customer to authenticate): nothing was charged, and trying again would
    not help. `code` is the gateway's reason (card_declined, authentication_required)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Checkout:
    url: str
    session_id: str


@dataclass(frozen=True)
class GatewayEvent:
    id: str
    type: str
    created: datetime
    # The checkout session the event is about ("" for charge and subscription events).
    session_id: str = ""
    payment_status: str = ""
    amount_cents: int | None = None
    currency: str = ""
    payment_ref: str = ""
    subscription_ref: str = ""
    subscription_status: str = ""
    # Invoice events (renewals): the gateway's invoice, why it was made (only
    # "subscription_cycle" is a renewal), and the gateway's page where it is paid.
    invoice_ref: str = ""
    billing_reason: str = ""
    pay_url: str = ""
    # A payment kept for later (automatic recharge): the gateway's customer and payment
    # method ids, and the order the payment says it is for (its metadata).
    customer_ref: str = ""
    payment_method_ref: str = ""
    order_uuid: str = ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PaymentGateway(Protocol):
    name: str
    # Whether the gateway charges a plan's next period by itself (and tells Tidings by
    # invoice events), or Tidings opens each renewal there (`start_renewal`).
    renews_itself: bool

    def checkout_origins(self) -> list[str]:
        """Where the hosted page is: the pages whose forms lead there allow it in their
        Content-Security-Policy (form-action covers the redirect after a POST)."""

    def create_checkout(self, order: Order, *, success_url: str, cancel_url: str) -> Checkout:
        """A session on the hosted page for `order`; the same one again for a repeat
        (the order's idempotency key)."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        """The event of a webhook request, or WebhookRejected."""

    def start_renewal(self, order: Order) -> str:
        """Open the renewal `order` at the gateway (a gateway that does not renew by
        itself): its reference there, the renewal order's `gateway_ref`."""

    def renewal_payment_url(self, order: Order) -> str:
        """Where the customer pays the renewal `order` that failed ("" if nowhere)."""

    # Whether its checkout can keep the payment method for off-session charges.
    saves_payment_methods: bool

    def charge_saved(self, order: Order, *, customer: str, payment_method: str) -> str:
        """Charge the recharge `order` off-session to a saved payment method: the
        gateway's payment id. It confirms by its signed webhook, which alone fulfils;
        GatewayDeclined when declined, GatewayError when it could not be reached. A
        repeat (the order's idempotency key) makes no second charge."""

    def cancel_subscription(self, ref: str, *, idempotency_key: str) -> str:
        """Cancel the gateway's subscription `ref` now, so it charges nothing more (a
        gateway that renews by itself): what the gateway said ("cancelled", or "gone":
        it knows no such subscription any more). GatewayError when it does not answer
        or refuses: nothing changed there, ask again later with the same key."""


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def sign(body: bytes, secret: str, at: int | None = None) -> str:
    """The signature header of `body` in Stripe's documented scheme."""
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def verify_signature(
    body: bytes, header: str, secrets_: Sequence[str], *, tolerance: int, now: float | None = None
) -> None:
    """WebhookRejected unless `header` signs `body` with one of `secrets_`, recently."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _sep, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        at = int(parts["t"][0])
    except (KeyError, ValueError):
        raise WebhookRejected("no timestamp in the signature") from None
    now = time.time() if now is None else now
    if abs(now - at) > tolerance:
        raise WebhookRejected("signature outside the tolerance (a replay?)")
    signed = f"{at}.".encode() + body
    for secret in secrets_:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
            return
    raise WebhookRejected("bad signature")


def parse_event(body: bytes) -> GatewayEvent:
    """A Stripe-shaped event, read for the few fields orders need."""
    try:
        data = json.loads(body)
        obj: dict[str, Any] = data["data"]["object"]
        event_id, kind, created = str(data["id"]), str(data["type"]), int(data["created"])
        at = datetime.fromtimestamp(created, tz=UTC)
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise WebhookRejected("not an event") from None
    if not event_id or len(event_id) > 255 or not isinstance(obj, dict):
        raise WebhookRejected("not an event")
    obj_kind = obj.get("object")
    if obj_kind == "checkout.session":
        total = obj.get("amount_total")
        return GatewayEvent(
            id=event_id,
            type=kind,
            created=at,
            session_id=str(obj.get("id") or ""),
            payment_status=str(obj.get("payment_status") or ""),
            amount_cents=int(total) if isinstance(total, int) else None,
            currency=str(obj.get("currency") or "").upper(),
            payment_ref=str(obj.get("payment_intent") or ""),
            subscription_ref=str(obj.get("subscription") or ""),
            customer_ref=_ref(obj.get("customer")),
        )
    if obj_kind == "payment_intent":
        amount = obj.get("amount")
        metadata = obj.get("metadata")
        order_uuid = metadata.get("tidings_order") if isinstance(metadata, dict) else None
        return GatewayEvent(
            id=event_id,
            type=kind,
            created=at,
            payment_ref=str(obj.get("id") or ""),
            amount_cents=int(amount) if isinstance(amount, int) else None,
            currency=str(obj.get("currency") or "").upper(),
            customer_ref=_ref(obj.get("customer")),
            payment_method_ref=_ref(obj.get("payment_method")),
            order_uuid=order_uuid if isinstance(order_uuid, str) else "",
        )
    if obj_kind == "charge":
        refunded = obj.get("amount_refunded")
        return GatewayEvent(
            id=event_id,
            type=kind,
            created=at,
            payment_ref=str(obj.get("payment_intent") or ""),
            amount_cents=int(refunded) if isinstance(refunded, int) else None,
            currency=str(obj.get("currency") or "").upper(),
        )
    if obj_kind == "invoice":
        due = obj.get("amount_due")
        # Stripe names the subscription at the top (older API versions) or under
        # parent.subscription_details (newer ones); anything else is no subscription.
        parent = obj.get("parent")
        details = parent.get("subscription_details") if isinstance(parent, dict) else None
        subscription = obj.get("subscription") or (
            details.get("subscription") if isinstance(details, dict) else None
        )
        if not isinstance(subscription, str):
            subscription = ""
        pay_url = str(obj.get("hosted_invoice_url") or "")
        return GatewayEvent(
            id=event_id,
            type=kind,
            created=at,
            invoice_ref=str(obj.get("id") or ""),
            subscription_ref=str(subscription or ""),
            billing_reason=str(obj.get("billing_reason") or ""),
            amount_cents=int(due) if isinstance(due, int) else None,
            currency=str(obj.get("currency") or "").upper(),
            payment_ref=str(obj.get("payment_intent") or ""),
            pay_url=pay_url if pay_url.startswith("https://") and len(pay_url) <= 500 else "",
        )
    if obj_kind == "subscription":
        return GatewayEvent(
            id=event_id,
            type=kind,
            created=at,
            subscription_ref=str(obj.get("id") or ""),
            subscription_status=str(obj.get("status") or ""),
        )
    return GatewayEvent(id=event_id, type=kind, created=at)


def _ref(value: object) -> str:
    """A gateway's id as the event names it: a short string, else nothing (an expanded
    object, a number, anything odd is no id)."""
    return value if isinstance(value, str) and 0 < len(value) <= 255 else ""


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), "")


# The test gateway ----------------------------------------------------------------------------

TEST_SIGNATURE_HEADER = "Tidings-Test-Signature"


def test_secrets() -> list[str]:
    configured: list[str] = settings.BILLING["test_secrets"]
    if configured:
        return configured
    derived = hmac.new(settings.SECRET_KEY.encode(), b"test gateway", hashlib.sha256)
    return [derived.hexdigest()]


class TestGateway:
    """Tidings's own stand-in for a card gateway: no money moves."""

    name = "test"
    renews_itself = False
    saves_payment_methods = True
    # Payment methods the test gateway declines, as Stripe's test cards do: its page
    # saves a method ending so when asked to (tests, demonstrations).
    DECLINED = {"_declined": "card_declined", "_authenticate": "authentication_required"}

    def checkout_origins(self) -> list[str]:
        return [_origin(baseurl.base_url())]

    def create_checkout(self, order: Order, *, success_url: str, cancel_url: str) -> Checkout:
        session = order.gateway_ref or f"test_cs_{secrets.token_urlsafe(18)}"
        return Checkout(url=self._page(session), session_id=session)

    @staticmethod
    def _page(session: str) -> str:
        return baseurl.base_url() + reverse("billing:test_gateway", kwargs={"session": session})

    def start_renewal(self, order: Order) -> str:
        # Nothing is charged: the test gateway's page (or the test hook) says whether
        # the saved card pays.
        return f"test_in_{secrets.token_urlsafe(18)}"

    def renewal_payment_url(self, order: Order) -> str:
        return self._page(order.gateway_ref) if order.gateway_ref else ""

    def charge_saved(self, order: Order, *, customer: str, payment_method: str) -> str:
        # Nothing is charged; the payment confirms by its signed event
        # (services.confirm_on_test_gateway), as a card gateway's webhook would.
        for ending, code in self.DECLINED.items():
            if payment_method.endswith(ending):
                raise GatewayDeclined(code)
        if not customer or not payment_method:
            raise GatewayDeclined("no_payment_method")
        # One payment per order, whatever repeats the request (derived from its
        # idempotency key, which it does not show).
        digest = hashlib.sha256(f"payment:{order.idempotency_key}".encode()).hexdigest()
        return f"test_pi_{digest[:24]}"

    def cancel_subscription(self, ref: str, *, idempotency_key: str) -> str:
        # It charges nothing by itself: there is nothing to stop there.
        return "cancelled"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        verify_signature(
            body,
            _header(headers, TEST_SIGNATURE_HEADER),
            test_secrets(),
            tolerance=settings.BILLING["webhook_tolerance"],
        )
        return parse_event(body)

    @staticmethod
    def event(kind: str, obj: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """A signed webhook request, as the gateway posts it back."""
        body = json.dumps(
            {
                "id": f"evt_test_{secrets.token_urlsafe(12)}",
                "type": kind,
                "created": int(time.time()),
                "data": {"object": obj},
            }
        ).encode()
        return body, {TEST_SIGNATURE_HEADER: sign(body, test_secrets()[0])}


# Stripe Checkout -----------------------------------------------------------------------------


class StripeGateway:
    """Stripe Checkout (hosted page) with the official library; every request carries
    the order's idempotency key."""

    name = "stripe"
    renews_itself = True
    saves_payment_methods = True

    def checkout_origins(self) -> list[str]:
        base = settings.BILLING["stripe_api_base"]
        # Stripe's hosted Checkout page and its hosted invoice page (a failed renewal);
        # a local fake serves its own (tests).
        return [
            "https://checkout.stripe.com",
            "https://invoice.stripe.com",
            *([_origin(base)] if base else []),
        ]

    def _client(self) -> stripe.StripeClient:
        base = settings.BILLING["stripe_api_base"]
        return stripe.StripeClient(
            settings.BILLING["stripe_api_key"],
            base_addresses={"api": base} if base else None,
            max_network_retries=2,
        )

    def create_checkout(self, order: Order, *, success_url: str, cancel_url: str) -> Checkout:
        offer = order.offer
        price_data: dict[str, Any] = {
            "currency": order.currency.lower(),
            "unit_amount": cents(order.amount),
            "product_data": {"name": offer.name},
        }
        if offer.kind == offer.Kind.PLAN:
            price_data["recurring"] = {"interval": offer.period}
        params: dict[str, Any] = {
            "mode": "subscription" if offer.kind == offer.Kind.PLAN else "payment",
            "line_items": [{"price_data": price_data, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": str(order.uuid),
            "metadata": {"tidings_order": str(order.uuid)},
        }
        if order.save_payment_method and offer.kind == offer.Kind.PACK:
            # The buyer asked to keep the card for automatic recharges: Stripe keeps it
            # on a Customer, for charges made while the customer is away.
            params["customer_creation"] = "always"
            params["payment_intent_data"] = {
                "setup_future_usage": "off_session",
                "metadata": {"tidings_order": str(order.uuid)},
            }
        try:
            session = self._client().v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": order.idempotency_key},
            )
        except stripe.StripeError as error:
            raise GatewayError(str(error.user_message or error.code or "stripe error")) from None
        return Checkout(url=str(session.url), session_id=str(session.id))

    def verify(self, body: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        header = _header(headers, "Stripe-Signature")
        tolerance = settings.BILLING["webhook_tolerance"]
        for secret in settings.BILLING["stripe_webhook_secrets"]:
            try:
                stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance)
            except (stripe.SignatureVerificationError, UnicodeDecodeError):
                continue
            return parse_event(body)
        raise WebhookRejected("bad or stale signature")

    def start_renewal(self, order: Order) -> str:
        raise GatewayError("Stripe renews its subscriptions itself")

    def charge_saved(self, order: Order, *, customer: str, payment_method: str) -> str:
        params: dict[str, Any] = {
            "amount": cents(order.amount),
            "currency": order.currency.lower(),
            "customer": customer,
            "payment_method": payment_method,
            "off_session": True,
            "confirm": True,
            "description": order.offer.name,
            "metadata": {"tidings_order": str(order.uuid)},
        }
        try:
            intent = self._client().v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": order.idempotency_key},
            )
        except stripe.CardError as error:
            raise GatewayDeclined(str(error.code or "card_declined")) from None
        except stripe.StripeError as error:
            raise GatewayError(str(error.user_message or error.code or "stripe error")) from None
        return str(intent.id)

    def renewal_payment_url(self, order: Order) -> str:
        # Stripe's hosted page of the subscription's invoice, from its event: paying
        # there pays the invoice Stripe would otherwise retry (a separate checkout
        # would charge the period twice).
        return order.pay_url

    def cancel_subscription(self, ref: str, *, idempotency_key: str) -> str:
        # DELETE /v1/subscriptions/<id>: cancelled at once, nothing more is charged.
        # Stripe answers "No such subscription" (resource_missing) for one cancelled
        # already: it charges nothing either.
        try:
            self._client().v1.subscriptions.cancel(
                ref, options={"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing":
                return "gone"
            raise GatewayError(str(error.user_message or error.code or "stripe error")) from None
        except stripe.StripeError as error:
            raise GatewayError(
                str(error.user_message or error.code or type(error).__name__)
            ) from None
        return "cancelled"


GATEWAYS: dict[str, PaymentGateway] = {"test": TestGateway(), "stripe": StripeGateway()}
BANK_TRANSFER = "transfer"


def gateway(name: str | None = None) -> PaymentGateway:
    """The configured gateway (BILLING["gateway"]), or the one named."""
    return GATEWAYS[name or settings.BILLING["gateway"]]
