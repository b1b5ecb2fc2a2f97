"""The visitor's IP address, read one way everywhere: sign-up brakes and proofs of
consent, the contact's requests, cookie choices, and login throttling (django-axes,
through AXES_CLIENT_IP_CALLABLE)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The connection's address, or the one the trusted proxies report: with
    TIDINGS_TRUSTED_PROXIES = n, the n-th address from the right of X-Forwarded-For
    (each proxy appends the address it saw; only those are trusted)."""
    hops = settings.TRUSTED_PROXIES
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.META.get("REMOTE_ADDR") or None
