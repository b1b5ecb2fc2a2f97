"""The HTTP API: Django Ninja, OpenAPI 3 at /api/v1/openapi.json, docs at /api/v1/docs.

Every route is authenticated by an account's API key (`Authorization: Bearer tid_...`)
and sees only that account's data: `request.auth` is the ApiKey, `account_of(request)`
its account.

Every error is JSON with a `detail` that says what is wrong. The answers any route can
give are documented once, here, on every operation: 401 without a valid key, 422 for
input that does not validate (with `errors`, one per problem, each with its `loc`), 400
for a body that is not JSON, 404 for an unknown id in the path, and 429 with
`Retry-After` when the key or the account makes too many requests a minute
(accounts.api). Schemathesis checks the whole schema against the routes
(tests/api/test_schemathesis.py).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import Throttled, ValidationError

from tidings.accounts.api import ApiKeyAuth, ApiParser, account_of
from tidings.audience.api import router as audience
from tidings.automations.api import router as automations
from tidings.campaigns.api import router as campaigns
from tidings.sending.api import router as sending
from tidings.transfer.api import router as transfer

_PROBLEM = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
_INVALID = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "Every problem, in words."},
        "errors": {
            "type": "array",
            "description": "One entry per problem, when the input did not validate.",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                        "description": 'Where: "body", "query" or "path", then the field.',
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
                "required": ["loc", "msg", "type"],
            },
        },
    },
    "required": ["detail"],
}


def _answer(description: str, ref: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        **extra,
    }


class TidingsAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        schema["components"].setdefault("schemas", {}).update(
            {"Problem": _PROBLEM, "ValidationProblem": _INVALID}
        )
        for operations in schema["paths"].values():
            for operation in operations.values():
                _common_answers(operation)
        return schema


def _common_answers(operation: dict[str, Any]) -> None:
    # Ninja keys its answers by int, openapi_extra by text: one key per status.
    answers = {str(code): answer for code, answer in operation.get("responses", {}).items()}
    operation["responses"] = answers
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        # A route's own 422 (a refusal of the service) has the same shape, without `errors`.
        answers["422"] = _answer(
            "The input is not valid (nothing was changed).", "ValidationProblem"
        )
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        answers.setdefault("400", _answer("The body is not JSON.", "Problem"))
    if any(p["in"] == "path" for p in parameters):
        answers.setdefault("404", _answer("No such object in this account.", "Problem"))
    answers.setdefault("401", _answer("No API key, or not a valid one.", "Problem"))
    answers.setdefault(
        "429",
        _answer(
            "Too many requests from this key or account: try again later.",
            "Problem",
            headers={
                "Retry-After": {
                    "description": "Seconds to wait.",
                    "schema": {"type": "integer"},
                }
            },
        ),
    )


api = TidingsAPI(
    title="Tidings API",
    version="1",
    description="Contacts, lists, imports, exports, campaigns and transactional mail of "
    "one account. Create a key in the app under Account → API keys.",
    auth=ApiKeyAuth(),
    parser=ApiParser(),
    urls_namespace="api",
)


@api.exception_handler(Throttled)
def throttled(request: HttpRequest, error: Throttled) -> HttpResponse:
    response = api.create_response(
        request, {"detail": "Too many requests: try again later."}, status=429
    )
    response["Retry-After"] = str(error.wait or 1)
    return response


@api.exception_handler(ValidationError)
def invalid_input(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """One shape for every 422: `detail` in words, as the routes' own refusals give it,
    and `errors` for a program."""
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors
    ]
    detail = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors)
    return api.create_response(request, {"detail": detail, "errors": errors}, status=422)


def _where(loc: list[Any]) -> str:
    # ["body", "payload", "email"] → "email": the parameter's own name means nothing to
    # the client.
    parts = loc[2:] if loc[:1] == ["body"] else loc[1:]
    return ".".join(str(p) for p in parts) or str(loc[0] if loc else "input")


api.add_router("/", audience)
api.add_router("/", transfer)
api.add_router("/", campaigns)
api.add_router("/", sending)
api.add_router("/", automations)


class AccountOut(Schema):
    account: str = Field(..., description="The account's name.")
    key: str = Field(..., description="The key's name.")
    key_prefix: str


@api.get(
    "/account", response=AccountOut, summary="The account this key belongs to", tags=["account"]
)
def whoami(request: HttpRequest) -> dict[str, Any]:
    api_key: Any = request.auth  # type: ignore[attr-defined]
    account = account_of(request)
    return {"account": account.name, "key": api_key.name, "key_prefix": api_key.prefix}
