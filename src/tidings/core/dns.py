"""The one DNS resolver of Tidings (TIDINGS_DNS_RESOLVER, else the system's): sending
domains' proofs (sending.domains) and inbound mail's DKIM keys (desk.authentication)
read TXT records through it."""

from __future__ import annotations

import dns.exception
import dns.resolver
from django.conf import settings


class DnsUnavailable(Exception):
    """The resolver did not answer: nothing can be concluded."""


def resolver() -> dns.resolver.Resolver:
    """The resolver of TIDINGS_DNS_RESOLVER ("host" or "host:port"), else the system's."""
    configured = settings.DNS_RESOLVER.strip()
    found = dns.resolver.Resolver(configure=not configured)
    if configured:
        if configured.startswith("["):  # [IPv6]:port
            host, _, port = configured[1:].partition("]")
            port = port.lstrip(":")
        elif configured.count(":") == 1:
            host, _, port = configured.partition(":")
        else:
            host, port = configured, ""
        found.nameservers = [host]
        if port:
            found.port = int(port)
    found.lifetime = found.timeout = float(settings.DNS_TIMEOUT_SECONDS)
    return found


def txt(name: str, *, using: dns.resolver.Resolver | None = None) -> list[str]:
    """The TXT records at `name`, each as one string (its parts joined); [] when the
    name or the record does not exist; DnsUnavailable when DNS does not say."""
    try:
        answer = (using or resolver()).resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout, OSError) as error:
        raise DnsUnavailable(str(error)) from None
    return [b"".join(record.strings).decode(errors="replace") for record in answer]


def aligned(domain: str, other: str) -> bool:
    """Relaxed alignment (RFC 7489), approximated: one domain is the other, or a parent
    or a child of it (without the public suffix list, `example.org` and `mail.example.org`
    align, and so would two names under one public suffix's child)."""
    domain, other = domain.lower().rstrip("."), other.lower().rstrip(".")
    if not domain or not other:
        return False
    return domain == other or domain.endswith("." + other) or other.endswith("." + domain)
