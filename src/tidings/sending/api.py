"""HTTP API of the sending engine: transactional messages and campaign sending actions,
mounted by tidings.api under /api/v1/."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from tidings.accounts.api import Input, UtcDatetime, account_of
from tidings.campaigns.models import Campaign
from tidings.core.mail import Kind
from tidings.sending import engine, lifecycle, transactional
from tidings.sending.models import OutboundMail

router = Router(tags=["sending"])


class TransactionalIn(Input):
    to: str
    template: uuid.UUID | None = None
    subject: str = ""
    body: str = ""
    from_email: str = ""
    from_name: str = ""
    data: dict[str, Any] = {}


class TransactionalOut(Schema):
    id: uuid.UUID
    status: str = Field(..., description="queued, sending, sent, failed, skipped or unknown")
    to: str
    error: str = Field("", description="What the relay answered, when it failed")


CONFIRM = (
    "The campaign's exact number of recipients: required when it goes to more than "
    "TIDINGS_CONFIRM_SEND_OVER contacts (1,000 unless the operator says otherwise); a "
    "missing or different number is refused with 409, which says the number."
)


class ScheduleIn(Input):
    at: UtcDatetime = Field(..., description="With its UTC offset, e.g. 2026-12-01T09:00:00+01:00.")
    timezone: str = Field(
        "", max_length=64, description="The time zone to show it in again, e.g. Europe/Paris."
    )
    confirm_recipients: int | None = Field(None, ge=0, le=10**12, description=CONFIRM)


class SendIn(Input):
    confirm_recipients: int | None = Field(None, ge=0, le=10**12, description=CONFIRM)


class ProgressOut(Schema):
    status: str
    total: int
    sent: int
    failed: int
    skipped: int
    unknown: int = Field(..., description="Outcome unknown after a crash: resend or not.")
    remaining: int
    recipients_fixed: bool = Field(
        ..., description="False while a large audience's deliveries are still being written."
    )
    rate_per_minute: int
    stalled_minutes: int = Field(
        ..., description="Minutes with messages due and none claimed or sent (0: not stalled)."
    )
    started_at: datetime | None
    finished_at: datetime | None


class Error(Schema):
    detail: str


ACTION = {200: ProgressOut, 404: Error, 409: Error}


@router.post(
    "/tx",
    response={202: TransactionalOut, 404: Error, 422: Error},
    summary="Send one transactional message now",
    description="Renders a template (a campaign's uuid) or an inline subject and body with "
    "`contact` and `data`, and sends it to one recipient through the account's relays. "
    "A suppressed, bounced or complained address is refused with 422.",
)
def send_transactional(request: HttpRequest, payload: TransactionalIn) -> Any:
    try:
        message = transactional.create(
            account_of(request),
            to=payload.to,
            template=payload.template,
            subject=payload.subject,
            body=payload.body,
            from_email=payload.from_email,
            from_name=payload.from_name,
            data=payload.data,
        )
    except transactional.UnknownTemplate as error:
        raise HttpError(404, str(error)) from None
    except transactional.Rejected as error:
        raise HttpError(422, str(error)) from None
    message.refresh_from_db()
    return Status(202, _tx_out(message))


def _tx_out(message: OutboundMail) -> dict[str, Any]:
    return {
        "id": message.uuid,
        "status": message.status,
        "to": message.to_email,
        "error": message.last_error,
    }


@router.get(
    "/tx/{message_id}",
    response={200: TransactionalOut, 404: Error},
    summary="The outcome of a transactional message",
)
def transactional_outcome(request: HttpRequest, message_id: uuid.UUID) -> Any:
    message = get_object_or_404(
        OutboundMail, account=account_of(request), uuid=message_id, kind=Kind.TRANSACTIONAL
    )
    return _tx_out(message)


def _campaign(request: HttpRequest, campaign_uuid: uuid.UUID) -> Campaign:
    return get_object_or_404(Campaign, account=account_of(request), uuid=campaign_uuid)


def _act(request: HttpRequest, campaign_uuid: uuid.UUID, action: Any) -> dict[str, Any]:
    campaign = _campaign(request, campaign_uuid)
    try:
        action(campaign)
    except lifecycle.SendingError as error:
        raise HttpError(409, str(error)) from None
    campaign.refresh_from_db()
    return engine.progress(campaign)


@router.post(
    "/campaigns/{campaign_uuid}/send",
    response=ACTION,
    summary="Send a campaign now",
    description="Refused with 409, saying why, while the send page's checklist has a "
    "blocking item (no recipients, no subject, the starter text left, no unsubscribe "
    "link, no postal address), or when a large send lacks its confirmation.",
)
def send_now(
    request: HttpRequest, campaign_uuid: uuid.UUID, payload: SendIn | None = None
) -> dict[str, Any]:
    confirmed = payload.confirm_recipients if payload is not None else None
    return _act(
        request,
        campaign_uuid,
        lambda c: lifecycle.start_campaign(c, confirmed_recipients=confirmed),
    )


@router.post("/campaigns/{campaign_uuid}/schedule", response=ACTION, summary="Schedule a campaign")
def schedule(request: HttpRequest, campaign_uuid: uuid.UUID, payload: ScheduleIn) -> dict[str, Any]:
    _campaign(request, campaign_uuid)  # another account's campaign: 404 before anything
    at = payload.at
    if at <= timezone.now():
        raise HttpError(422, "That time has passed: choose a time in the future, or send now.")
    if payload.timezone:
        try:
            at = at.astimezone(ZoneInfo(payload.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise HttpError(422, f"“{payload.timezone[:64]}” is not a time zone.") from None
    confirmed = payload.confirm_recipients
    return _act(
        request,
        campaign_uuid,
        lambda c: lifecycle.schedule_campaign(c, at, confirmed_recipients=confirmed),
    )


@router.post(
    "/campaigns/{campaign_uuid}/pause", response=ACTION, summary="Pause a sending campaign"
)
def pause(request: HttpRequest, campaign_uuid: uuid.UUID) -> dict[str, Any]:
    return _act(request, campaign_uuid, lifecycle.pause_campaign)


@router.post(
    "/campaigns/{campaign_uuid}/resume", response=ACTION, summary="Resume a paused campaign"
)
def resume(request: HttpRequest, campaign_uuid: uuid.UUID) -> dict[str, Any]:
    return _act(request, campaign_uuid, lifecycle.resume_campaign)


@router.post("/campaigns/{campaign_uuid}/cancel", response=ACTION, summary="Cancel a campaign")
def cancel(request: HttpRequest, campaign_uuid: uuid.UUID) -> dict[str, Any]:
    return _act(request, campaign_uuid, lifecycle.cancel_campaign)


@router.post(
    "/campaigns/{campaign_uuid}/resend-unknown",
    response=ACTION,
    summary="Send again the messages whose outcome is unknown (a worker was lost mid-send)",
)
def resend_unknown(request: HttpRequest, campaign_uuid: uuid.UUID) -> dict[str, Any]:
    return _act(request, campaign_uuid, lifecycle.resend_unknown)


@router.get(
    "/campaigns/{campaign_uuid}/progress",
    response={200: ProgressOut, 404: Error},
    summary="Sending progress of a campaign",
)
def progress(request: HttpRequest, campaign_uuid: uuid.UUID) -> dict[str, Any]:
    return engine.progress(_campaign(request, campaign_uuid))
