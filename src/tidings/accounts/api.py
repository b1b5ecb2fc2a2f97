"""How the HTTP API knows whose request it is: an account's API key
(`Authorization: Bearer tid_...`); `account_of(request)` is that key's account. Every
app's router uses them; `tidings.api` mounts the routers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from tidings.accounts import apikeys
from tidings.accounts.models import Account, ApiKey


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return apikeys.authenticate(token)


def account_of(request: HttpRequest) -> Account:
    api_key: Any = getattr(request, "auth", None)
    assert isinstance(api_key, ApiKey), "route without API key authentication"
    return api_key.account
