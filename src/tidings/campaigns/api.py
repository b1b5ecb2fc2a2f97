"""HTTP API routes of the campaigns app, mounted by tidings.api under /api/v1/.

Write, preview, test and report on campaigns; sending itself (send now, schedule,
pause, resume, cancel, progress) is in `tidings.sending.api`. Every route starts from
the key's account: another account's campaign, list, segment, layout or contact is a
404. Bad input is a 422 (a 409 when the campaign's status does not allow the change)
with a `detail` that says what is wrong, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from tidings.accounts.api import MAX_ID, Input, account_of
from tidings.accounts.models import Account, User
from tidings.audience.models import Contact, MailingList, Segment
from tidings.campaigns import rendering, services
from tidings.campaigns.models import Campaign, Layout
from tidings.sending import engine, proofs, tracking

router = Router(tags=["campaigns"])

MAX_LIMIT = 200
Format = Literal["richtext", "markdown", "html"]


# --- schemas -------------------------------------------------------------------------


class Error(Schema):
    detail: str


class CampaignOut(Schema):
    uuid: UUID
    name: str
    subject: str
    preheader: str
    from_name: str
    from_email: str
    reply_to: str
    content_format: str
    body: str
    layout: int | None = Field(None, description="A layout's id; null: the default layout.")
    lists: list[UUID]
    segments: list[UUID]
    track_opens: bool
    track_clicks: bool
    archived: bool
    status: str
    scheduled_at: datetime | None
    schedule_timezone: str
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CampaignPage(Schema):
    items: list[CampaignOut]
    next: str | None = Field(None, description="Pass as `after` for the next page.")


class CampaignFilter(Input):
    status: Literal["", "draft", "scheduled", "sending", "paused", "cancelled", "sent"] = ""
    after: str = Field("", description="The `next` of the previous page.")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


class CampaignIn(Input):
    name: str = Field(..., min_length=1, max_length=200)
    subject: str = Field(..., min_length=1, max_length=300)
    from_email: str = Field(..., max_length=254)
    from_name: str = Field("", max_length=200)
    reply_to: str = Field("", max_length=254)
    preheader: str = Field("", max_length=300)
    content_format: Format = "markdown"
    body: str = ""
    layout: int | None = Field(None, ge=1, le=MAX_ID)
    lists: list[UUID] = []
    segments: list[UUID] = []
    track_opens: bool = False
    track_clicks: bool = False
    archived: bool = False


class CampaignPatch(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    subject: str | None = Field(None, min_length=1, max_length=300)
    from_email: str | None = Field(None, max_length=254)
    from_name: str | None = Field(None, max_length=200)
    reply_to: str | None = Field(None, max_length=254)
    preheader: str | None = Field(None, max_length=300)
    content_format: Format | None = None
    body: str | None = None
    layout: int | None = Field(
        None, ge=1, le=MAX_ID, description="Set `default_layout` to go back to it."
    )
    default_layout: bool = False
    lists: list[UUID] | None = Field(None, description="Replaces the lists.")
    segments: list[UUID] | None = Field(None, description="Replaces the segments.")
    track_opens: bool | None = None
    track_clicks: bool | None = None
    archived: bool | None = None


class PreviewOut(Schema):
    contact: str = Field(..., description="The address it was rendered for.")
    subject: str
    preheader: str
    html: str
    text: str


class TestIn(Input):
    to: list[str] = Field(..., min_length=1, max_length=services.TEST_RECIPIENTS_MAX)
    contact: UUID | None = Field(None, description="Personalise for this contact.")


class TestOut(Schema):
    sent: int


class ReportOut(Schema):
    status: str
    total: int
    sent: int
    failed: int
    skipped: int
    remaining: int
    delivered: int
    bounced: int
    opened: int
    opens: int
    clicked: int
    clicks: int
    unsubscribed: int
    complained: int


# --- helpers -------------------------------------------------------------------------


@contextmanager
def _refusals() -> Iterator[None]:
    """The services' refusals as HTTP answers (the services write nothing when they
    refuse)."""
    try:
        yield
    except services.InvalidTemplates as error:
        raise HttpError(422, str(error)) from None
    except services.CampaignError as error:
        raise HttpError(422, str(error)) from None
    except ValidationError as error:
        problems = "; ".join(
            f"{field}: {' '.join(texts)}" for field, texts in error.message_dict.items()
        )
        raise HttpError(422, problems) from None


def _actor(request: HttpRequest) -> User | None:
    return getattr(getattr(request, "auth", None), "created_by", None)


def _campaign(account: Account, key: UUID) -> Campaign:
    campaign = Campaign.objects.filter(account=account, uuid=key).first()
    if campaign is None:
        raise HttpError(404, "No such campaign.")
    return campaign


def _owned(model: Any, account: Account, keys: list[UUID], what: str) -> list[Any]:
    found = {o.uuid: o for o in model.objects.filter(account=account, uuid__in=keys)}
    missing = [str(k) for k in keys if k not in found]
    if missing:
        raise HttpError(404, f"No such {what}: {', '.join(missing)}.")
    return [found[k] for k in dict.fromkeys(keys)]


def _layout(account: Account, pk: int | None) -> Layout | None:
    if pk is None:
        return None
    layout = Layout.objects.filter(account=account, pk=pk).first()
    if layout is None:
        raise HttpError(404, "No such layout.")
    return layout


def _out(campaign: Campaign) -> dict[str, Any]:
    names = (
        "uuid", "name", "subject", "preheader", "from_name", "from_email", "reply_to",
        "content_format", "body", "track_opens", "track_clicks", "archived", "status",
        "scheduled_at", "schedule_timezone", "started_at", "finished_at", "created_at",
        "updated_at",
    )  # fmt: skip
    return {n: getattr(campaign, n) for n in names} | {
        "layout": campaign.layout_id,
        "lists": [m.uuid for m in campaign.lists.all()],
        "segments": [s.uuid for s in campaign.segments.all()],
    }


def _with_audience(qs: QuerySet[Campaign]) -> QuerySet[Campaign]:
    return qs.prefetch_related("lists", "segments")


# --- routes --------------------------------------------------------------------------


@router.get("/campaigns", response=CampaignPage, summary="The account's campaigns, newest first")
def list_campaigns(request: HttpRequest, filters: Query[CampaignFilter]) -> dict[str, Any]:
    qs = Campaign.objects.filter(account=account_of(request))
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.after:
        try:
            qs = qs.filter(pk__lt=int(filters.after))
        except ValueError:
            raise HttpError(422, "`after` must be the `next` of a previous page.") from None
    rows = list(_with_audience(qs.order_by("-pk"))[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {
        "items": [_out(c) for c in rows],
        "next": str(rows[-1].pk) if more and rows else None,
    }


@router.post(
    "/campaigns",
    response={201: CampaignOut, 404: Error, 422: Error},
    summary="Write a new draft campaign",
    description="Templates are checked now: an error names the field and the line.",
)
def create_campaign(request: HttpRequest, payload: CampaignIn) -> Any:
    account = account_of(request)
    values = payload.dict(exclude={"lists", "segments", "layout"})
    values["layout"] = _layout(account, payload.layout)
    lists = _owned(MailingList, account, payload.lists, "list")
    segments = _owned(Segment, account, payload.segments, "segment")
    with _refusals():
        campaign = services.create_campaign(
            account, by=_actor(request), lists=lists, segments=segments, **values
        )
    return Status(201, _out(campaign))


@router.get("/campaigns/{campaign_uuid}", response={200: CampaignOut, 404: Error})
def get_campaign(request: HttpRequest, campaign_uuid: UUID) -> Any:
    return _out(_campaign(account_of(request), campaign_uuid))


@router.patch(
    "/campaigns/{campaign_uuid}",
    response={200: CampaignOut, 404: Error, 409: Error, 422: Error},
    summary="Change a draft campaign",
    description="Only a draft can change (unschedule a scheduled one first); the fields "
    "given are replaced, the others kept.",
)
def update_campaign(request: HttpRequest, campaign_uuid: UUID, payload: CampaignPatch) -> Any:
    account = account_of(request)
    campaign = _campaign(account, campaign_uuid)
    if campaign.status != Campaign.Status.DRAFT:
        raise HttpError(
            409,
            f"This campaign is {campaign.get_status_display()}: only a draft can change"
            + (" (unschedule it first)." if campaign.status == Campaign.Status.SCHEDULED else "."),
        )
    given = payload.dict(exclude_unset=True)
    values = {
        k: v
        for k, v in given.items()
        if k not in ("lists", "segments", "layout", "default_layout") and v is not None
    }
    if given.get("default_layout"):
        values["layout"] = None
    elif "layout" in given:
        values["layout"] = _layout(account, payload.layout)
    lists = None if payload.lists is None else _owned(MailingList, account, payload.lists, "list")
    segments = (
        None if payload.segments is None else _owned(Segment, account, payload.segments, "segment")
    )
    with _refusals():
        services.update_campaign(
            campaign, by=_actor(request), lists=lists, segments=segments, **values
        )
    return _out(_campaign(account, campaign_uuid))


@router.get(
    "/campaigns/{campaign_uuid}/preview",
    response={200: PreviewOut, 404: Error, 422: Error},
    summary="The campaign as one contact would see it",
    description="For `contact` (a contact's uuid) or, without it, a made-up contact. "
    "Unsubscribe and preference links are `#` until the campaign is sent.",
)
def preview(request: HttpRequest, campaign_uuid: UUID, contact: UUID | None = None) -> Any:
    account = account_of(request)
    campaign = _campaign(account, campaign_uuid)
    shown = rendering.sample_contact(account)
    if contact is not None:
        shown = _owned(Contact, account, [contact], "contact")[0]
    try:
        rendered = rendering.render(campaign, shown)
    except rendering.TemplateError as error:
        raise HttpError(422, f"The campaign cannot be rendered: {error}") from None
    return {
        "contact": shown.email,
        "subject": rendered.subject,
        "preheader": rendered.preheader,
        "html": rendered.html,
        "text": rendered.text,
    }


@router.post(
    "/campaigns/{campaign_uuid}/test",
    response={200: TestOut, 404: Error, 422: Error},
    summary="Send a test of the campaign to up to five addresses",
)
def send_test(request: HttpRequest, campaign_uuid: UUID, payload: TestIn) -> Any:
    account = account_of(request)
    campaign = _campaign(account, campaign_uuid)
    contact = None
    if payload.contact is not None:
        contact = _owned(Contact, account, [payload.contact], "contact")[0]
    with _refusals():
        to = services.parse_test_recipients(" ".join(payload.to))
        sent = proofs.send_test(campaign, to=to, contact=contact, by=_actor(request))
    return {"sent": sent}


@router.get(
    "/campaigns/{campaign_uuid}/report",
    response={200: ReportOut, 404: Error},
    summary="The campaign's figures: sent, delivered, bounced, opened, clicked, ...",
)
def report(request: HttpRequest, campaign_uuid: UUID) -> Any:
    campaign = _campaign(account_of(request), campaign_uuid)
    progress = engine.progress(campaign)
    figures = {k: progress[k] for k in ("status", "total", "failed", "skipped", "remaining")}
    return figures | tracking.report(campaign)["summary"]
