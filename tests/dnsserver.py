"""A tiny authoritative DNS server for the tests: UDP on a free loopback port, in a
thread, answering TXT queries from records the test sets (dnspython's message API).
Names it does not know get NXDOMAIN; a known name without TXT gets an empty answer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest


class DnsServer:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        """As TIDINGS_DNS_RESOLVER takes it."""
        return f"{self.host}:{self.port}"

    def set_txt(self, name: str, *values: str) -> None:
        """Publish TXT records at `name` (replacing what was there)."""
        self.records[name.lower().rstrip(".")] = list(values)

    def remove(self, name: str) -> None:
        self.records.pop(name.lower().rstrip("."), None)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue
            self.sock.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append(name)
        values = self.records.get(name)
        if values is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            texts = [_quoted(v) for v in values]
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, "TXT", texts)
            )
        return response


def _quoted(value: str) -> str:
    """A TXT value in zone-file form, split in strings of at most 255 characters (as a
    DKIM key of 2048 bits must be)."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


@pytest.fixture
def dns_server(settings) -> Iterator[DnsServer]:  # type: ignore[no-untyped-def]
    """A real DNS server on loopback, the one Tidings asks (TIDINGS_DNS_RESOLVER)."""
    server = DnsServer()
    server.start()
    settings.DNS_RESOLVER = server.address
    settings.DNS_TIMEOUT_SECONDS = 2
    try:
        yield server
    finally:
        server.stop()
