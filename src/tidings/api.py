"""The HTTP API: Django Ninja, OpenAPI 3 at /api/v1/openapi.json, docs at /api/v1/docs.

Every route is authenticated by an account's API key (`Authorization: Bearer tid_...`)
and sees only that account's data: `request.auth` is the ApiKey, `account_of(request)`
its account. Each key, and each account's keys together, may make so many requests a
minute (accounts.api.throttle); beyond, 429 with `Retry-After`, documented on every
operation of the schema.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import Throttled
from ninja.openapi.schema import OpenAPISchema

from tidings.accounts.api import ApiKeyAuth, account_of
from tidings.audience.api import router as audience
from tidings.campaigns.api import router as campaigns
from tidings.sending.api import router as sending
from tidings.transfer.api import router as transfer

THROTTLED = {
    "description": "Too many requests from this key or this account: wait the seconds "
    "`Retry-After` gives, then try again.",
    "headers": {
        "Retry-After": {
            "description": "Seconds until requests are accepted again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string"}},
                "required": ["detail"],
            }
        }
    },
}


class TidingsAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> OpenAPISchema:
        """Ninja's schema, and the 429 any authenticated operation may answer."""
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, dict) and operation.get("security"):
                    operation.setdefault("responses", {}).setdefault("429", THROTTLED)
        return schema


api = TidingsAPI(
    title="Tidings API",
    version="1",
    description="Contacts, lists, imports, exports, campaigns and transactional mail of "
    "one account. Create a key in the app under Account → API keys.",
    auth=ApiKeyAuth(),
    urls_namespace="api",
)


@api.exception_handler(Throttled)
def throttled(request: HttpRequest, error: Throttled) -> HttpResponse:
    response = api.create_response(
        request, {"detail": "Too many requests: try again later."}, status=429
    )
    response["Retry-After"] = str(error.wait or 1)
    return response


api.add_router("/", audience)
api.add_router("/", transfer)
api.add_router("/", campaigns)
api.add_router("/", sending)


@api.get("/account", summary="The account this key belongs to", tags=["account"])
def whoami(request: HttpRequest) -> dict[str, Any]:
    api_key: Any = request.auth  # type: ignore[attr-defined]
    account = account_of(request)
    return {"account": account.name, "key": api_key.name, "key_prefix": api_key.prefix}
