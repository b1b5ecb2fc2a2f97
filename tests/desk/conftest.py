"""The staff console's fixtures (verified staff with a stated reason), for the desk; and
mail signed with DKIM by a test key published in the loopback DNS server."""

from __future__ import annotations

import base64
from collections.abc import Callable

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.dnsserver import DnsServer
from tests.imapserver import dovecot, dovecot_tls  # noqa: F401  (fixtures: a real IMAP server)
from tests.staff.conftest import billing_staff, console  # noqa: F401

SELECTOR = "test"


@pytest.fixture(scope="session")
def dkim_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def publish_key(server: DnsServer, key: rsa.RSAPrivateKey, domain: str) -> None:
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    server.set_txt(
        f"{SELECTOR}._domainkey.{domain}", "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()
    )


@pytest.fixture
def sign(dns_server: DnsServer, dkim_key: rsa.RSAPrivateKey) -> Callable[..., bytes]:
    """sign(raw, domain="example.org", length=False): the message with a DKIM-Signature
    of `domain` (with l= when `length`), whose key the loopback DNS server publishes (as
    the sender's domain would)."""
    pem = dkim_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    published: set[str] = set()

    def signed(raw: bytes, domain: str = "example.org", *, length: bool = False) -> bytes:
        if domain not in published:
            publish_key(dns_server, dkim_key, domain)
            published.add(domain)
        linesep = b"\r\n" if b"\r\n" in raw else b"\n"
        header = dkim.sign(
            raw,
            SELECTOR.encode(),
            domain.encode(),
            pem,
            canonicalize=(b"relaxed", b"relaxed"),
            linesep=linesep,
            length=length,
        )
        return header + raw

    return signed


@pytest.fixture
def arc_seal(dns_server: DnsServer, dkim_key: rsa.RSAPrivateKey) -> Callable[..., bytes]:
    """arc_seal(raw, sealer="lists.example.net", results=...): the message as a forwarder
    `sealer` passes it on: its Authentication-Results (`results`, what it saw) and an ARC
    set (RFC 8617) sealed with the test key, which the loopback DNS server publishes for
    `sealer`. Sealing a sealed message adds the next instance."""
    pem = dkim_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )

    def sealed(
        raw: bytes,
        sealer: str = "lists.example.net",
        results: str = "dkim=pass header.d=example.org; dmarc=pass header.from=example.org",
    ) -> bytes:
        publish_key(dns_server, dkim_key, sealer)
        linesep = b"\r\n" if b"\r\n" in raw else b"\n"
        raw = f"Authentication-Results: {sealer}; {results}".encode() + linesep + raw
        headers = dkim.arc_sign(
            raw, SELECTOR.encode(), sealer.encode(), pem, sealer.encode(), linesep=linesep
        )
        assert headers, "not sealed"
        return b"".join(headers) + raw

    return sealed


# The authserv-id of "our MTA" in the tests that need a customer's mail verified without
# caring how (test_authentication.py proves both ways).
OUR_MTA = "mx.tests.invalid"


@pytest.fixture
def trusted_mta(settings):  # type: ignore[no-untyped-def]
    settings.DESK_INBOUND_AUTHSERV_ID = OUR_MTA


def verified(raw: bytes, domain: str = "example.org") -> bytes:
    """The message as our MTA hands it on after checking DMARC for `domain` (with the
    `trusted_mta` fixture)."""
    linesep = b"\r\n" if b"\r\n" in raw else b"\n"
    header = f"Authentication-Results: {OUR_MTA}; dmarc=pass header.from={domain}"
    return header.encode() + linesep + raw
