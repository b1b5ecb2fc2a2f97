"""The HTTP API's edge, shared by every app's router (`tidings.api` mounts them).

Whose request it is: an account's API key (`Authorization: Bearer tid_...`);
`account_of(request)` is that key's account. What input may enter: `Input` is the base of
every request body's schema and `ApiParser` reads every query string; both refuse what the
database cannot store (a NUL character) with a 422 before a route runs. `UtcDatetime`
and `MAX_ID` bound times and integers to what PostgreSQL holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from django.conf import settings
from django.http import HttpRequest
from django.utils.datastructures import MultiValueDict
from ninja import Schema
from ninja.errors import Throttled, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import AfterValidator, AwareDatetime, model_validator

from tidings.accounts import apikeys
from tidings.accounts.models import Account, ApiKey
from tidings.core import ratelimit
from tidings.core.text import NUL_REFUSED, nul_at

# The API's brakes count requests per minute.
API_WINDOW_SECONDS = 60

# The largest id or offset the API takes: PostgreSQL's bigint. A larger one could name
# no row, and the database refuses to compare with it.
MAX_ID = 2**63 - 1


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


def _readable(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)


class Input(Schema):
    """The base of every request body: a NUL character anywhere in it (a key or a value,
    however deep) is a 422 naming where it is."""

    @model_validator(mode="after")
    def _storable(self) -> Self:
        # After the fields: Ninja hands a "before" validator its own wrapper, not the data.
        where = nul_at(self.model_dump())
        if where is not None:
            raise ValueError(f"{_readable(where) or 'body'}: {NUL_REFUSED}")
        return self


class ApiParser(Parser):
    """Query strings with a NUL character are a 422, as bodies are (`Input`)."""

    def parse_querydict(
        self, data: MultiValueDict, list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        values = super().parse_querydict(data, list_fields, request)
        where = nul_at(values)
        if where is not None:
            raise ValidationError(
                [{"type": "value_error", "loc": ["query", *where], "msg": str(NUL_REFUSED)}]
            )
        return values


def _in_utc(value: datetime) -> datetime:
    # Stored in UTC: PostgreSQL refuses an offset beyond ±15:59 (ISO 8601 allows ±23:59),
    # and a time near year 1 or 9999 may leave the calendar once moved to UTC.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("The time is out of range once converted to UTC.") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A time with its UTC offset (a time without one is refused), kept in UTC."""
