"""A local fake of the few Stripe endpoints Tidings uses (Checkout Sessions, cancelling a
subscription), served on
loopback so the real `stripe` library talks HTTP to it (its API base pointed here).
It keeps Stripe's documented rules that matter to Tidings: the secret key in a Bearer
header, form-encoded nested parameters, and idempotency keys that replay the first
answer (and refuse the same key with other parameters)."""

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
    by_key: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    # Subscriptions by id ({"status": "active" | "canceled", ...}), and the ids actually
    # cancelled, in order (a replayed request cancels nothing more).
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    # Down: every request gets Stripe's 503 "unavailable" (the library retries, then fails).
    down: bool = False

    def add_subscription(self, sub_id: str) -> None:
        self.subscriptions[sub_id] = {"id": sub_id, "object": "subscription", "status": "active"}


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


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
                return self._answer(200, fake.by_key[key][1])
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
                fake.by_key[key] = ("", answer)
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
            if self.path != "/v1/checkout/sessions":
                return self._answer(404, _error("invalid_request_error", "Unrecognized URL"))
            if key and key in fake.by_key:
                first_raw, first_answer = fake.by_key[key]
                if first_raw != raw:
                    return self._answer(
                        400,
                        _error(
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters",
                        ),
                    )
                return self._answer(200, first_answer)
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
                "metadata": {
                    k[len("metadata[") : -1]: v
                    for k, v in params.items()
                    if k.startswith("metadata[")
                },
            }
            fake.sessions[session_id] = session
            answer = json.dumps(session).encode()
            if key:
                fake.by_key[key] = (raw, answer)
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
