"""The HTTP API: Django Ninja, OpenAPI 3 at /api/v1/openapi.json, docs at /api/v1/docs.

Every route is authenticated by an account's API key (`Authorization: Bearer tid_...`)
and sees only that account's data: `request.auth` is the ApiKey, `account_of(request)`
its account.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI

from tidings.accounts.api import ApiKeyAuth, account_of
from tidings.audience.api import router as audience
from tidings.campaigns.api import router as campaigns
from tidings.sending.api import router as sending
from tidings.transfer.api import router as transfer

api = NinjaAPI(
    title="Tidings API",
    version="1",
    description="Contacts, lists, imports, exports, campaigns and transactional mail of "
    "one account. Create a key in the app under Account → API keys.",
    auth=ApiKeyAuth(),
    urls_namespace="api",
)


api.add_router("/", audience)
api.add_router("/", transfer)
api.add_router("/", campaigns)
api.add_router("/", sending)


@api.get("/account", summary="The account this key belongs to", tags=["account"])
def whoami(request: HttpRequest) -> dict[str, Any]:
    api_key: Any = request.auth  # type: ignore[attr-defined]
    account = account_of(request)
    return {"account": account.name, "key": api_key.name, "key_prefix": api_key.prefix}
