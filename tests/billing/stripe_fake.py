"""A local fake of the few Stripe endpoints Tidings uses (Checkout Sessions, cancelling a
subscription, and PaymentIntents charged off-session for automatic recharges), served on
loopback so the real `stripe` library talks HTTP to it (its API base pointed here). It
keeps Stripe's documented rules that matter to Tidings: the secret key in a Bearer
header, form-encoded nested parameters, idempotency keys that replay the first answer,
errors included (and refuse the same key with other parameters), a Customer made by a
Checkout with `customer_creation=always`, and Stripe's test payment methods that decline
(`pm_card_chargeDeclined`) or need the customer to authenticate
(`pm_card_authenticationRequired`) with a 402 card error."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_KEY = "sk_test_tidings_fake"


@dataclass
class FakeStripe:
    url: str = ""
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Answers by idempotency key: (the request's body, the status, the answer).
    by_key: dict[str, tuple[str, int, bytes]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Subscriptions by id ({"status": "active" | "canceled", ...}), and the ids actually
    # cancelled, in order (a replayed request cancels nothing more).
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    # Down: every request gets Stripe's 503 "unavailable" (the library retries, then fails).
    down: bool = False

    def add_subscription(self, sub_id: str) -> None:
        self.subscriptions[sub_id] = {"id": sub_id, "object": "subscription", "status": "active"}


# Stripe's test payment methods that fail off-session: the error code each gives.
DECLINING = {
    "pm_card_chargeDeclined": ("card_declined", "Your card was declined."),
    "pm_card_authenticationRequired": (
        "authentication_required",
        "This payment requires the customer to authenticate.",
    ),
}


def _error(kind: str, message: str, **more: Any) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message, **more}}).encode()


def _payment_intent(fake: FakeStripe, params: dict[str, str]) -> tuple[int, bytes]:
    """POST /v1/payment_intents, confirmed off-session at once (what Tidings sends)."""
    for needed in ("amount", "currency", "customer", "payment_method"):
        if needed not in params:
            return 400, _error("invalid_request_error", f"Missing {needed}")
    if params.get("confirm") != "true" or params.get("off_session") != "true":
        return 400, _error("invalid_request_error", "Tidings charges off-session, confirmed")
    intent_id = f"pi_test_{secrets.token_hex(12)}"
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": int(params["amount"]),
        "currency": params["currency"],
        "customer": params["customer"],
        "payment_method": params["payment_method"],
        "metadata": {
            k[len("metadata[") : -1]: v for k, v in params.items() if k.startswith("metadata[")
        },
    }
    declined = DECLINING.get(params["payment_method"])
    if declined is not None:
        intent["status"] = "requires_payment_method"
        fake.payment_intents[intent_id] = intent
        code, message = declined
        return 402, _error("card_error", message, code=code, payment_intent=intent)
    intent["status"] = "succeeded"
    fake.payment_intents[intent_id] = intent
    return 200, json.dumps(intent).encode()


def handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_DELETE(self) -> None:
            # DELETE /v1/subscriptions/<id>: cancel now. Stripe says "No such
            # subscription" (404, resource_missing) of one cancelled already.
            key = self.headers.get("Idempotency-Key", "")
            fake.requests.append({"path": self.path, "method": "DELETE", "idempotency_key": key})
            if fake.down:
                return self._answer(503, _error("api_error", "Service unavailable"))
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                return self._answer(401, _error("invalid_request_error", "Invalid API Key"))
            prefix = "/v1/subscriptions/"
            if not self.path.startswith(prefix):
                return self._answer(404, _error("invalid_request_error", "Unrecognized URL"))
            if key and key in fake.by_key:
                return self._answer(200, fake.by_key[key][2])
            sub_id = self.path[len(prefix) :]
            sub = fake.subscriptions.get(sub_id)
            if sub is None or sub["status"] == "canceled":
                body = json.dumps(
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_missing",
                            "message": f"No such subscription: '{sub_id}'",
                        }
                    }
                ).encode()
                return self._answer(404, body)
            sub["status"] = "canceled"
            fake.cancelled.append(sub_id)
            answer = json.dumps(sub).encode()
            if key:
                fake.by_key[key] = ("", 200, answer)
            return self._answer(200, answer)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            params = dict(parse_qsl(raw, keep_blank_values=True))
            key = self.headers.get("Idempotency-Key", "")
            fake.requests.append({"path": self.path, "params": params, "idempotency_key": key})
            if fake.down:
                return self._answer(503, _error("api_error", "Service unavailable"))
            if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                return self._answer(401, _error("invalid_request_error", "Invalid API Key"))
            if self.path not in ("/v1/checkout/sessions", "/v1/payment_intents"):
                return self._answer(404, _error("invalid_request_error", "Unrecognized URL"))
            with fake.lock:  # two requests with one key at once: one is made
                if key and key in fake.by_key:
                    first_raw, first_status, first_answer = fake.by_key[key]
                    if first_raw != raw:
                        return self._answer(
                            400,
                            _error(
                                "idempotency_error",
                                "Keys for idempotent requests can only be used with the same "
                                "parameters",
                            ),
                        )
                    return self._answer(first_status, first_answer)
                if self.path == "/v1/payment_intents":
                    status, answer = _payment_intent(fake, params)
                    if key:
                        fake.by_key[key] = (raw, status, answer)
                    return self._answer(status, answer)
            for needed in ("mode", "success_url", "line_items[0][price_data][currency]"):
                if needed not in params:
                    return self._answer(400, _error("invalid_request_error", f"Missing {needed}"))
            session_id = f"cs_test_{secrets.token_hex(12)}"
            session = {
                "id": session_id,
                "object": "checkout.session",
                "mode": params["mode"],
                "status": "open",
                "payment_status": "unpaid",
                "url": f"{fake.url}/pay/{session_id}",
                "amount_total": int(params["line_items[0][price_data][unit_amount]"]),
                "currency": params["line_items[0][price_data][currency]"],
                "client_reference_id": params.get("client_reference_id"),
                "customer": (
                    f"cus_test_{secrets.token_hex(8)}"
                    if params.get("customer_creation") == "always"
                    else None
                ),
                "metadata": {
                    k[len("metadata[") : -1]: v
                    for k, v in params.items()
                    if k.startswith("metadata[")
                },
            }
            with fake.lock:
                fake.sessions[session_id] = session
                answer = json.dumps(session).encode()
                if key:
                    fake.by_key[key] = (raw, 200, answer)
            return self._answer(200, answer)

    return Handler


def serve() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
