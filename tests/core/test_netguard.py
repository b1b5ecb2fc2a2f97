"""The guard on hosts a customer names (core.netguard): only public addresses, every
resolved address checked, and the connection made to the address checked."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator

import pytest

from tidings.core import netguard

REFUSED = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # the clouds' metadata service
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",  # noqa: S104 (refused, not bound)
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.0.192",  # Oracle Cloud's metadata
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS's metadata over IPv6
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
]
PUBLIC = ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", REFUSED)
def test_the_platforms_own_networks_are_not_public(address):
    assert not netguard.is_public(ipaddress.ip_address(address))
    with pytest.raises(netguard.ForbiddenHost):
        netguard.resolve_public(address, 25)
    with pytest.raises(netguard.ForbiddenHost):
        netguard.check_host(f"[{address}]" if ":" in address else address, 25)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert netguard.is_public(ipaddress.ip_address(address))
    assert netguard.resolve_public(address, 25) == [str(ipaddress.ip_address(address))]


@pytest.mark.parametrize("name", ["localhost", "LOCALHOST.", "mail.localhost"])
def test_localhost_is_refused_by_name(name):
    with pytest.raises(netguard.ForbiddenHost):
        netguard.check_host(name, 25)


def test_a_name_is_judged_by_every_address_it_resolves_to():
    # The machine's own name resolves to loopback here (/etc/hosts): refused as such.
    name = socket.gethostname()
    found = {info[4][0] for info in socket.getaddrinfo(name, 25, type=socket.SOCK_STREAM)}
    if not all(ipaddress.ip_address(a).is_loopback for a in found):
        pytest.skip("this machine's name does not resolve to loopback")
    with pytest.raises(netguard.ForbiddenHost, match="which is"):
        netguard.check_host(name, 25)
    # The operator may allow it, by name or by network.
    assert set(netguard.resolve_public(name, 25, allow=[name])) == found
    assert set(netguard.resolve_public(name, 25, allow=["127.0.0.0/8", "::1"])) == found


def test_a_name_that_does_not_resolve_passes_the_save_time_check_not_the_connection():
    netguard.check_host("relay.invalid", 25)
    with pytest.raises(OSError):
        netguard.resolve_public("relay.invalid", 25)


def test_the_operator_allows_networks_explicitly():
    allow = ["10.0.5.0/24", "relay.internal.example", "::1"]
    assert netguard.resolve_public("10.0.5.7", 25, allow=allow) == ["10.0.5.7"]
    assert netguard.resolve_public("::1", 25, allow=allow) == ["::1"]
    with pytest.raises(netguard.ForbiddenHost):
        netguard.resolve_public("10.0.6.7", 25, allow=allow)


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on 127.0.0.1 that records who connected."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            accepted.append(peer[0])
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def test_the_connection_goes_to_the_address_checked_not_to_a_second_answer(listener, monkeypatch):
    """DNS rebinding: a name that first answers an allowed address, then the platform's
    own. The guard resolves once and connects to what it checked; a guard that checks
    the name and then connects to the name again would reach 127.0.0.1."""
    port, accepted = listener
    answers = iter(["127.0.0.2", "127.0.0.1", "127.0.0.1"])
    calls: list[str] = []

    def rebinding(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    # The operator allows 127.0.0.2 (nothing listens there), never 127.0.0.1.
    with pytest.raises(ConnectionRefusedError):
        netguard.connect(
            "rebind.example", port, allow=["127.0.0.2/32"], connect_timeout=2, timeout=2
        )
    assert calls == ["rebind.example"]
    assert accepted == []
    # The same name, now answering loopback: refused before any connection.
    with pytest.raises(netguard.ForbiddenHost):
        netguard.connect("rebind.example", port, connect_timeout=2, timeout=2)
    assert accepted == []


def test_an_allowed_address_is_connected_to_with_the_command_timeout(listener):
    port, _ = listener
    sock = netguard.connect("127.0.0.1", port, allow=["127.0.0.1"], connect_timeout=2, timeout=7)
    try:
        assert sock.gettimeout() == 7
    finally:
        sock.close()


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port whose accept queue is full: the kernel drops further SYNs, so a
    connection to it hangs like one to a host that swallows packets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    yield port
    filler.close()
    server.close()


def test_a_host_that_swallows_packets_is_given_up_at_the_connect_timeout(blackhole):
    # No timeout for the commands (None: wait for ever): only the connect timeout ends it.
    with pytest.raises(TimeoutError):
        netguard.connect(
            "127.0.0.1", blackhole, allow=["127.0.0.1"], connect_timeout=0.5, timeout=None
        )
