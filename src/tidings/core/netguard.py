"""The guard on hosts a customer names (their SMTP relay; outgoing webhooks next): Tidings
connects only to public addresses, never to the platform's own network.

Refused: loopback, private (RFC 1918, unique-local fc00::/7), link-local (which holds
the clouds' metadata service, 169.254.169.254 and fd00:ec2::254), carrier-grade NAT,
multicast, reserved, unspecified, and the same inside IPv6 (IPv4-mapped ::ffff:a.b.c.d,
NAT64, 6to4). The operator may allow hosts or networks explicitly (a setting of names,
addresses and CIDRs, e.g. TIDINGS_ALLOWED_RELAY_HOSTS).

A name is checked by resolving it and checking *every* address it resolves to; the
caller then connects to one of those checked addresses, never to the name again, so a
second, different answer of the DNS (rebinding) cannot slip in between the check and
the connection. TLS still verifies the certificate against the name.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from functools import lru_cache

from django.utils.translation import gettext as _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Besides what the `ipaddress` flags cover: the metadata services of the clouds that are
# not in a link-local range, and the ranges whose flags vary between Python versions.
_ALSO_REFUSED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT (shared address space)
        "192.0.0.0/24",  # IETF protocol assignments (192.0.0.192: Oracle's metadata)
        "198.18.0.0/15",  # benchmarking
        "fd00:ec2::/32",  # AWS's IPv6 metadata service (within fc00::/7 already)
        "64:ff9b:1::/48",  # local-use NAT64
    )
)


class ForbiddenHost(ValueError):
    """A host Tidings will not connect to for a customer; the message says why."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to (mapped, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether `address` is on the public internet (and so not the platform's own)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None and not is_public(inner):
            return False
        if address.scope_id:
            return False
    flags = (
        address.is_loopback,
        address.is_private,
        address.is_link_local,
        address.is_multicast,
        address.is_reserved,
        address.is_unspecified,
        getattr(address, "is_site_local", False),
    )
    if any(flags):
        return False
    return not any(
        address in network for network in _ALSO_REFUSED if network.version == address.version
    )


@lru_cache(maxsize=32)
def _allowance(
    entries: tuple[str, ...],
) -> tuple[frozenset[str], tuple[ipaddress._BaseNetwork, ...]]:
    names: set[str] = set()
    networks: list[ipaddress._BaseNetwork] = []
    for raw in entries:
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(entry)
    return frozenset(names), tuple(networks)


def _allowed(host: str, address: IPAddress | None, allow: Iterable[str]) -> bool:
    names, networks = _allowance(tuple(allow))
    if host.lower().rstrip(".") in names:
        return True
    return address is not None and any(
        address.version == n.version and address in n for n in networks
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _refusal(host: str, address: IPAddress) -> ForbiddenHost:
    if str(address) == host.strip("[]"):
        said = host
    else:
        said = _("%(host)s (which is %(address)s)") % {"host": host, "address": address}
    return ForbiddenHost(
        _(
            "%(host)s is a loopback, private, link-local or otherwise non-public address: "
            "Tidings does not connect there. Give the public name of your server."
        )
        % {"host": said}
    )


def _check_name(host: str) -> str:
    name = host.strip().rstrip(".")
    if not name or len(name) > 253 or any(c.isspace() or c in "/\\@" for c in name):
        raise ForbiddenHost(_("“%(host)s” is not a host name.") % {"host": host[:80]})
    lowered = name.lower()
    if lowered == "localhost" or lowered.endswith(".localhost"):
        raise ForbiddenHost(_("localhost is this machine: Tidings does not connect there."))
    return name


def resolve_public(host: str, port: int, *, allow: Iterable[str] = ()) -> list[str]:
    """The addresses of `host` to connect to, every one of them checked: ForbiddenHost
    when any is not public (and not allowed), OSError when the name does not resolve.
    Connect to these addresses, not to the name again."""
    allow = tuple(allow)
    if _allowed(host, None, allow):
        # Allowed by name: the operator vouches for it, whatever it resolves to.
        return _resolve(host.strip("[]"), port)
    literal = _literal(host)
    if literal is not None:
        if not is_public(literal) and not _allowed(host, literal, allow):
            raise _refusal(host, literal)
        return [str(literal)]
    name = _check_name(host)
    found = _resolve(name, port)
    for text in found:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not is_public(address) and not _allowed(name, address, allow):
            raise _refusal(name, address)
    return found


def check_host(host: str, port: int, *, allow: Iterable[str] = ()) -> None:
    """At save time: ForbiddenHost when `host` is, or resolves to, an address Tidings
    would refuse. A name that does not resolve (yet) passes: it is checked again, and
    resolved, at every connection."""
    with contextlib.suppress(OSError):
        resolve_public(host, port, allow=allow)


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        if sockaddr[0] not in seen:
            seen.append(str(sockaddr[0]))
    if not seen:
        raise OSError(f"{host} has no address")
    return seen


def connect(
    host: str,
    port: int,
    *,
    allow: Iterable[str] = (),
    connect_timeout: float,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """A TCP connection to a checked address of `host` (each tried in turn, each within
    `connect_timeout` seconds, so a host that swallows packets cannot hold a worker);
    the socket then uses `timeout` for every read and write."""
    last: OSError | None = None
    for address in resolve_public(host, port, allow=allow):
        try:
            sock = socket.create_connection(
                (address, port), timeout=connect_timeout, source_address=source_address
            )
        except OSError as error:
            last = error
            continue
        sock.settimeout(timeout)
        return sock
    raise last or OSError(f"cannot connect to {host}:{port}")
