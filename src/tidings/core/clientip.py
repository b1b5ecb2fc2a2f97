"""The visitor's IP address and the request's scheme, read one way everywhere: sign-up
brakes and proofs of consent, the contact's requests, cookie choices, and login
throttling (django-axes, through AXES_CLIENT_IP_CALLABLE).

What a proxy reports (X-Forwarded-For, X-Forwarded-Proto) is believed only from a
connection that comes from one of TIDINGS_TRUSTED_PROXIES (addresses or networks):
anyone else could write those headers themselves, to dodge a rate limit, forge the
address in a proof of consent, or pass a plain-http request off as https.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the connection comes from one of the configured proxies."""
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    return bool(networks) and _trusted(request.META.get("REMOTE_ADDR", ""), networks)


def client_ip(request: HttpRequest) -> str | None:
    """The connection's address; behind a trusted proxy, the address the proxies report:
    X-Forwarded-For read from the right, past every trusted proxy (each proxy appends
    the address it saw)."""
    remote = request.META.get("REMOTE_ADDR") or None
    if not from_trusted_proxy(request):
        return remote
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for address in reversed([a for a in forwarded if a]):
        if not _trusted(address, networks):
            try:
                return str(ipaddress.ip_address(address))
            except ValueError:
                return remote  # a proxy passed on something that is no address
    return remote


class TrustedProxyMiddleware:
    """First in the chain: a request not from a trusted proxy loses the proxy headers,
    so SECURE_PROXY_SSL_HEADER and everything after see only what the client's own
    connection says."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not from_trusted_proxy(request):
            for header in ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR"):
                request.META.pop(header, None)
        return self.get_response(request)
