"""Brakes on guessing passwords (P9), on top of django-axes.

- **One identity per person.** Axes counts failures per (address, client IP); the
  address is counted in its stored form (`core.addresses.canonical`), so `ADA@example.org`,
  ` ada@EXAMPLE.org` and `ada@example.org` share one counter instead of giving five more
  guesses each.
- **One limit per client across accounts.** Trying one password on many accounts (a
  spray) never reaches any one account's limit: failed logins from one client IP are
  counted across all addresses, and past `TIDINGS_LOGIN_IP_FAILURE_LIMIT` in an hour that
  client may not try again until the hour is over, whatever the address.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from tidings.core import ratelimit
from tidings.core.addresses import canonical
from tidings.core.clientip import client_ip

SPRAY = "login-failures-per-client"
WINDOW_SECONDS = 3600


def login_identity(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The address axes counts failures for (AXES_USERNAME_CALLABLE)."""
    typed = (credentials or {}).get("username")
    if typed is None and request is not None:
        typed = request.POST.get("username", "")
    return canonical(str(typed or ""))


def _client(request: HttpRequest) -> str:
    # A request without an address (a test client, a broken proxy) counts as one client.
    return client_ip(request) or "unknown"


def client_blocked(request: HttpRequest) -> bool:
    """This client has failed too many logins in the last hour, across all addresses."""
    return ratelimit.exceeded(
        SPRAY, _client(request), limit=settings.LOGIN_IP_FAILURE_LIMIT, seconds=WINDOW_SECONDS
    )


def count_failure(sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any) -> None:
    """A failed login (django's `user_login_failed`): one more for this client."""
    if request is not None:
        ratelimit.allow(
            SPRAY,
            _client(request),
            limit=settings.LOGIN_IP_FAILURE_LIMIT,
            seconds=WINDOW_SECONDS,
        )
