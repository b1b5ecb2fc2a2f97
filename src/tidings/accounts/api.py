"""How the HTTP API knows whose request it is: an account's API key
(`Authorization: Bearer tid_...`); `account_of(request)` is that key's account. Every
app's router uses them; `tidings.api` mounts the routers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import Throttled
from ninja.security import HttpBearer

from tidings.accounts import apikeys
from tidings.accounts.models import Account, ApiKey
from tidings.core import ratelimit

# The API's brakes count requests per minute.
API_WINDOW_SECONDS = 60


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        api_key = apikeys.authenticate(token)
        if api_key is not None:
            throttle(api_key)
        return api_key


def throttle(api_key: ApiKey) -> None:
    """Count one request of `api_key` against its own limit and its account's (all its
    keys together; TIDINGS_API_RATE_PER_KEY, _PER_ACCOUNT a minute): Throttled (429,
    with the seconds until the window ends) when either is used up."""
    for name, subject, limit in (
        ("api-key", str(api_key.pk), settings.API_RATE_PER_KEY),
        ("api-account", str(api_key.account_id), settings.API_RATE_PER_ACCOUNT),
    ):
        if limit and not ratelimit.allow(name, subject, limit=limit, seconds=API_WINDOW_SECONDS):
            raise Throttled(
                ratelimit.seconds_left(name, subject, limit=limit, seconds=API_WINDOW_SECONDS)
            )


def account_of(request: HttpRequest) -> Account:
    api_key: Any = getattr(request, "auth", None)
    assert isinstance(api_key, ApiKey), "route without API key authentication"
    return api_key.account
