"""HTTP API routes: outgoing webhook endpoints (docs/automations.md, docs/api.md).

List, add, read, change and delete the account's endpoints (the signing secret is shown
when one is added and when it is read; a new one replaces it), read an endpoint's
delivery log, turn a disabled endpoint on again, send it a test event. The address is
checked as the web form checks it (`webhooks.check_url`: https, never the platform's
own network). Another account's endpoint is a 404; bad input a 422 with `detail`, and
nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from tidings.accounts.api import Input, account_of
from tidings.accounts.models import Account, User
from tidings.automations import webhooks
from tidings.automations.models import WebhookEndpoint, WebhookMessage

router = Router(tags=["webhooks"])

EVENTS = ", ".join(WebhookEndpoint.Event.values)
MAX_LOG = 200


# --- schemas -------------------------------------------------------------------------


class Error(Schema):
    detail: str


class EndpointSummary(Schema):
    uuid: UUID
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str
    created_at: datetime


class EndpointOut(EndpointSummary):
    secret: str = Field(
        ...,
        description="The signing secret (Standard Webhooks: `whsec_` and base64): verify "
        "`webhook-signature` with it.",
    )


class EndpointList(Schema):
    items: list[EndpointSummary]


class EndpointIn(Input):
    url: str = Field(
        ...,
        max_length=webhooks.URL_MAX,
        description="https, on a public address (not the platform's own network).",
    )
    events: list[str] = Field(..., min_length=1, max_length=20, description=f"Of: {EVENTS}.")


class EndpointPatch(Input):
    url: str | None = Field(None, max_length=webhooks.URL_MAX)
    events: list[str] | None = Field(
        None, min_length=1, max_length=20, description=f"Replaces the events; of: {EVENTS}."
    )


class MessageOut(Schema):
    id: str = Field(..., description="The `webhook-id` header: the same on every retry.")
    event: str
    status: str = Field(..., description="pending, sending, delivered or failed.")
    waiting: bool = Field(
        False, description="Held: an earlier message about the same contact is still to go."
    )
    attempts: int
    response_code: int | None
    next_attempt_at: datetime | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class MessageList(Schema):
    items: list[MessageOut]


class LogFilter(Input):
    limit: int = Field(50, ge=1, le=MAX_LOG)


# --- helpers -------------------------------------------------------------------------


@contextmanager
def _refusals() -> Iterator[None]:
    """The service's refusals (nothing written) as a 422 that says why."""
    try:
        yield
    except webhooks.WebhookError as error:
        raise HttpError(422, str(error)) from None


def _actor(request: HttpRequest) -> User | None:
    return getattr(getattr(request, "auth", None), "created_by", None)


def _endpoint(account: Account, key: UUID) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(account=account, uuid=key).first()
    if endpoint is None:
        raise HttpError(404, "No such webhook endpoint.")
    return endpoint


def _out(endpoint: WebhookEndpoint, *, secret: bool = True) -> dict[str, Any]:
    names = ("uuid", "url", "events", "enabled", "disabled_reason", "created_at")
    out = {n: getattr(endpoint, n) for n in names}
    return out | {"secret": endpoint.secret} if secret else out


def _message(message: WebhookMessage) -> dict[str, Any]:
    names = (
        "event", "status", "attempts", "response_code", "last_error", "created_at",
        "delivered_at",
    )  # fmt: skip
    return {n: getattr(message, n) for n in names} | {
        "id": message.msg_id,
        "waiting": bool(getattr(message, "waiting", False)),
        "next_attempt_at": message.next_attempt_at if message.status == "pending" else None,
    }


# --- routes --------------------------------------------------------------------------


@router.get("/webhooks", response=EndpointList, summary="The account's webhook endpoints")
def list_endpoints(request: HttpRequest) -> dict[str, Any]:
    rows = WebhookEndpoint.objects.filter(account=account_of(request)).order_by("-created_at")
    return {"items": [_out(e, secret=False) for e in rows]}


@router.post(
    "/webhooks",
    response={201: EndpointOut, 422: Error},
    summary="Add a webhook endpoint",
    description="Events are told from now on; the answer holds the signing secret.",
)
def create_endpoint(request: HttpRequest, payload: EndpointIn) -> Any:
    with _refusals():
        endpoint = webhooks.create_endpoint(
            account_of(request), url=payload.url, events=payload.events, by=_actor(request)
        )
    return Status(201, _out(endpoint))


@router.get("/webhooks/{endpoint_uuid}", response={200: EndpointOut, 404: Error})
def get_endpoint(request: HttpRequest, endpoint_uuid: UUID) -> Any:
    return _out(_endpoint(account_of(request), endpoint_uuid))


@router.patch(
    "/webhooks/{endpoint_uuid}",
    response={200: EndpointOut, 404: Error, 422: Error},
    summary="Change an endpoint's address or events",
)
def update_endpoint(request: HttpRequest, endpoint_uuid: UUID, payload: EndpointPatch) -> Any:
    endpoint = _endpoint(account_of(request), endpoint_uuid)
    with _refusals():
        webhooks.update_endpoint(
            endpoint, url=payload.url, events=payload.events, by=_actor(request)
        )
    return _out(endpoint)


@router.delete(
    "/webhooks/{endpoint_uuid}",
    response={204: None, 404: Error},
    summary="Delete an endpoint and its delivery log",
)
def delete_endpoint(request: HttpRequest, endpoint_uuid: UUID) -> Any:
    endpoint = _endpoint(account_of(request), endpoint_uuid)
    webhooks.delete_endpoint(endpoint, by=_actor(request))
    return Status(204, None)


@router.post(
    "/webhooks/{endpoint_uuid}/secret",
    response={200: EndpointOut, 404: Error},
    summary="Replace the signing secret",
    description="Every attempt from now on, retries included, is signed with the new one.",
)
def rotate_secret(request: HttpRequest, endpoint_uuid: UUID) -> Any:
    endpoint = _endpoint(account_of(request), endpoint_uuid)
    return _out(webhooks.rotate_secret(endpoint, by=_actor(request)))


@router.post(
    "/webhooks/{endpoint_uuid}/enable",
    response={200: EndpointOut, 404: Error},
    summary="Turn a disabled endpoint on again",
    description="It is told of events from now on; its failed messages stay failed.",
)
def enable_endpoint(request: HttpRequest, endpoint_uuid: UUID) -> Any:
    endpoint = _endpoint(account_of(request), endpoint_uuid)
    webhooks.enable(endpoint, by=_actor(request))
    return _out(_endpoint(endpoint.account, endpoint_uuid))


@router.post(
    "/webhooks/{endpoint_uuid}/test",
    response={202: MessageOut, 404: Error},
    summary="Send a `webhook.test` event to the endpoint",
    description="Sent by the worker at once; its outcome is in the delivery log.",
)
def send_test(request: HttpRequest, endpoint_uuid: UUID) -> Any:
    endpoint = _endpoint(account_of(request), endpoint_uuid)
    message = webhooks.send_test(endpoint, by=_actor(request))
    message.refresh_from_db()
    return Status(202, _message(message))


@router.get(
    "/webhooks/{endpoint_uuid}/messages",
    response={200: MessageList, 404: Error},
    summary="The endpoint's delivery log, newest first",
)
def delivery_log(request: HttpRequest, endpoint_uuid: UUID, filters: Query[LogFilter]) -> Any:
    endpoint = _endpoint(account_of(request), endpoint_uuid)
    return {"items": [_message(m) for m in webhooks.delivery_log(endpoint, filters.limit)]}
