"""A relay that misbehaves: it answers 421 at the greeting, hangs without a word, drops
the connection before the message, or drops it after the whole message was handed over
but before its answer. A raw TCP server plays each part. In every case the batch ends
(no worker held beyond the timeout), nobody is marked sent who was not, and only the
last case (the message may have gone) is "unknown", never retried by itself."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.sending.conftest import add_contacts
from tidings.campaigns.models import Campaign
from tidings.sending import engine, lifecycle
from tidings.sending.models import Delivery, Relay

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("customer_relays_on_loopback"),
]

D = Delivery.Status


class Misbehaving(socketserver.BaseRequestHandler):
    mode = "hang"

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(10)
        if self.mode == "hang":
            with contextlib.suppress(OSError):
                conn.recv(1)  # says nothing; waits for the client to give up
            return
        if self.mode == "421":
            conn.sendall(b"421 4.3.2 busy, try again later\r\n")
            return
        conn.sendall(b"220 relay ESMTP\r\n")
        reader = conn.makefile("rb")
        while line := reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250 relay\r\n")
            elif verb == b"MAIL" and self.mode == "drop-before-data":
                return  # gone before the message
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                conn.sendall(b"250 OK\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                while (body := reader.readline()) and body != b".\r\n":
                    pass
                return  # the whole message was handed over; no answer comes
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return


@pytest.fixture
def relay_that(account) -> Iterator[object]:  # type: ignore[no-untyped-def]
    servers = []

    def start(mode: str) -> Relay:
        handler = type("Handler", (Misbehaving,), {"mode": mode})
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Relay.objects.create(
            account=account, name=mode, host="127.0.0.1", port=server.server_address[1],
            security=Relay.Security.NONE,
        )  # fmt: skip

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("421", "421"),
        ("hang", "timed out"),
        ("drop-before-data", "closed"),
    ],
)
def test_a_relay_that_fails_before_the_message_is_a_retry_later(
    account, newsletter, campaign, relay_that, settings, mode, words
):
    settings.SENDING = {**settings.SENDING, "smtp_timeout": 1}
    relay_that(mode)
    add_contacts(account, newsletter, 3)
    lifecycle.start_campaign(campaign)  # the batch runs eagerly here, and returns
    deliveries = list(Delivery.objects.filter(campaign=campaign))
    assert len(deliveries) == 3
    for delivery in deliveries:
        assert delivery.status == D.QUEUED and delivery.not_before is not None, delivery
        assert words in delivery.last_error.lower(), delivery.last_error
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING  # waiting for the retries


def test_a_relay_that_drops_after_the_whole_message_leaves_it_unknown_never_retried(
    account, newsletter, campaign, relay_that, settings
):
    settings.SENDING = {**settings.SENDING, "smtp_timeout": 1}
    relay_that("drop-after-data")
    add_contacts(account, newsletter, 2)
    lifecycle.start_campaign(campaign)
    statuses = list(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert D.SENT not in statuses
    assert D.UNKNOWN in statuses
    unknown = Delivery.objects.filter(campaign=campaign, status=D.UNKNOWN).count()
    # The page lists them for the customer to decide (test_unknown_outcome.py).
    assert len(engine.unknown_recipients(campaign, limit=50)) == unknown
