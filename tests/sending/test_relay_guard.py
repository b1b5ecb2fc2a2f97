"""A customer's SMTP relay cannot point at the platform's own network (issue 13,
finding 4): 127.0.0.1:6379, :5432 and 169.254.169.254 were accepted and a worker
connected to them. Refused when saved and at every connection, unless the operator
allows the host (TIDINGS_ALLOWED_RELAY_HOSTS); the operator's own relays are not a
customer's and keep working on loopback."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from tests.certificates import self_signed
from tests.conftest import SMTPSink, free_port
from tests.sending.conftest import add_contacts
from tidings.campaigns.models import Campaign
from tidings.core.mail import Kind, OutboundMessage, Purpose, post
from tidings.sending import lifecycle
from tidings.sending.models import Delivery, OutboundMail, Relay
from tidings.sending.relays import RelayConfig
from tidings.sending.transport import SMTPTransport, TemporaryFailure

pytestmark = pytest.mark.django_db
# The connection tests send from threads (streams), which see only committed rows.
connecting = pytest.mark.django_db(transaction=True)


def relay_form(host: str, port: int = 587) -> dict[str, str]:
    return {
        "form": "relay", "relay-name": "Mine", "relay-host": host, "relay-port": str(port),
        "relay-security": "none", "relay-username": "", "relay-password": "", "relay-esp": "",
        "relay-max_connections": "4", "relay-rate_per_second": "0", "relay-rate_per_hour": "0",
        "relay-active": "on",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("127.0.0.1", 6379),  # the platform's Redis
        ("127.0.0.1", 5432),  # its PostgreSQL
        ("169.254.169.254", 80),  # the cloud's metadata service
        ("10.0.0.8", 25),
        ("::1", 25),
        ("::ffff:127.0.0.1", 25),
        ("localhost", 25),
        ("0.0.0.0", 25),  # noqa: S104 (refused, not bound)
    ],
)
def test_the_settings_page_refuses_a_relay_on_the_platforms_network(
    client, customer, account, host, port
):
    client.force_login(customer)
    response = client.post("/sending/", relay_form(host, port))
    assert response.status_code == 200
    assert "non-public address" in response.content.decode() or "this machine" in (
        response.content.decode()
    )
    assert not Relay.objects.exists()  # nothing saved


def test_a_name_resolving_to_loopback_is_refused_too(client, customer, account):
    name = socket.gethostname()  # /etc/hosts: 127.0.0.1 on these machines
    if socket.getaddrinfo(name, 25)[0][4][0] != "127.0.0.1":
        pytest.skip("this machine's name does not resolve to loopback")
    client.force_login(customer)
    response = client.post("/sending/", relay_form(name))
    assert "non-public address" in response.content.decode()
    assert not Relay.objects.exists()


def test_the_operator_may_allow_a_host_explicitly(client, customer, account, settings):
    settings.ALLOWED_RELAY_HOSTS = ["10.0.0.0/8"]
    client.force_login(customer)
    response = client.post("/sending/", relay_form("10.0.0.8", 25), follow=True)
    assert b"Relay added." in response.content
    assert Relay.objects.get().host == "10.0.0.8"


class Listener:
    """A TCP port on loopback that counts the connections made to it (the platform's
    Redis, say): the test proves nobody connects."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.server.close()


@pytest.fixture
def platform_port() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture
def sneaked_relay(account, platform_port):  # type: ignore[no-untyped-def]
    """A relay saved before the guard existed (or written around the form)."""
    return Relay.objects.create(
        account=account, name="sneaky", host="127.0.0.1", port=platform_port.port,
        security="none",
    )  # fmt: skip


@connecting
def test_a_campaign_through_a_relay_on_loopback_never_connects_and_pauses_saying_why(
    account, newsletter, campaign, sneaked_relay, platform_port
):
    add_contacts(account, newsletter, 3)
    lifecycle.start_campaign(campaign)
    assert platform_port.connections == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "non-public address" in campaign.pause_reason
    assert not Delivery.objects.filter(status__in=["sent", "failed"]).exists()


@connecting
def test_a_transactional_message_through_it_never_connects(account, sneaked_relay, platform_port):
    post(
        OutboundMessage(
            to="buyer@example.net", subject="s", text="t", purpose=Purpose.SERVICE,
            kind=Kind.TRANSACTIONAL, account_id=account.pk, from_email="shop@example.org",
        )
    )  # fmt: skip
    assert platform_port.connections == 0
    mail = OutboundMail.objects.get()
    assert mail.status in ("queued", "failed") and "non-public address" in mail.last_error


@connecting
def test_with_the_operators_allowance_the_same_relay_is_used(
    account, newsletter, campaign, relay, smtp_server
):
    # `relay` is aiosmtpd on 127.0.0.1 with TIDINGS_ALLOWED_RELAY_HOSTS=127.0.0.1.
    add_contacts(account, newsletter, 2)
    lifecycle.start_campaign(campaign)
    assert len(smtp_server.messages) == 2


@connecting
def test_the_operators_own_relay_on_loopback_is_not_a_customers(
    account, newsletter, campaign, smtp_server
):
    Relay.objects.create(
        account=None, name="operator", host="127.0.0.1", port=smtp_server.port, security="none"
    )
    add_contacts(account, newsletter, 2)
    lifecycle.start_campaign(campaign)
    assert len(smtp_server.messages) == 2


@pytest.mark.parametrize("certified", ["the relay's name", "another name"])
def test_tls_is_verified_against_the_name_while_connecting_to_the_checked_address(
    tmp_path, settings, monkeypatch, certified
):
    """The connection goes to the address the guard checked, yet STARTTLS still checks
    the certificate against the relay's name (not the address): a certificate for
    another name is refused."""
    name = socket.gethostname()  # resolves to 127.0.0.1 here (/etc/hosts)
    if socket.getaddrinfo(name, 25)[0][4][0] != "127.0.0.1":
        pytest.skip("this machine's name does not resolve to loopback")
    cert, key = self_signed(
        tmp_path,
        name if certified == "the relay's name" else "other.example",
        cert_file="relay.pem",
        key_file="relay.key",
    )
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # the client trusts this certificate alone
    settings.ALLOWED_RELAY_HOSTS = [name]  # the operator allows it by name
    sink = SMTPSink("127.0.0.1", free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, tls_context=server_tls)
    controller.start()
    relay = RelayConfig(
        key="tls", id=None, name="tls", host=name, port=sink.port, security="starttls",
        username="", password="", max_connections=1, rate_per_second=0, rate_per_hour=0,
        guarded=True,
    )  # fmt: skip
    transport = SMTPTransport(relay)
    try:
        if certified == "the relay's name":
            transport.send("a@example.org", "b@example.net", b"Subject: hi\r\n\r\nhello\r\n")
            assert len(sink.messages) == 1
        else:
            with pytest.raises(TemporaryFailure, match="certificate"):
                transport.send("a@example.org", "b@example.net", b"Subject: hi\r\n\r\nhello\r\n")
            assert sink.messages == []
    finally:
        transport.close()
        controller.stop()
