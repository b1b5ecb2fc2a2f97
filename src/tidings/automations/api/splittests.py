"""HTTP API routes: A/B tests (docs/automations.md, "A/B tests").

Create a test from a draft campaign (variants of subject, sender name, content or send
time), read it with its variants and figures (rates with their 95 % intervals, the
best tested against the others), start it, and choose the winner. Every route starts
from the key's account: another account's test or campaign is a 404. Bad input is a
422 with a `detail` that says what is wrong, a test in no state for the action a 409,
and nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from tidings.accounts.api import Input, account_of
from tidings.accounts.models import Account, User
from tidings.automations import splittests
from tidings.automations.models import SplitTest
from tidings.campaigns.models import Campaign
from tidings.core.locales import is_time_zone

router = Router(tags=["a/b tests"])

Label = Literal["A", "B", "C", "D"]
Subject = Annotated[str, Field(max_length=300)]
SenderName = Annotated[str, Field(max_length=200)]


def _time_zone(name: str) -> str:
    """A zone the web form offers (`core.locales.time_zones`): the service would refuse
    another, in the form's words ("from the list"), which mean nothing to a program."""
    if not is_time_zone(name):
        raise PydanticCustomError(
            "time_zone",
            "“{name}” is not a time zone: give its IANA name, e.g. Europe/Paris.",
            {"name": name},
        )
    return name


TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_time_zone)]


# --- schemas -------------------------------------------------------------------------


class Error(Schema):
    detail: str


class SplitTestIn(Input):
    campaign: UUID = Field(..., description="A draft campaign of the account: variant A.")
    kind: Literal["subject", "from_name", "content", "send_time"] = "subject"
    subjects: list[Subject] = Field(
        [], max_length=3, description="kind `subject`: the subjects of B, C and D."
    )
    from_names: list[SenderName] = Field(
        [], max_length=3, description="kind `from_name`: the sender names of B, C and D."
    )
    variants: int | None = Field(
        None, ge=2, le=4, description="kind `content`: how many variants (A and copies of it)."
    )
    send_times: list[datetime] = Field(
        [],
        max_length=4,
        description="kind `send_time`: two to four times with their time zone, A's first.",
    )
    time_zone: TimeZone = Field(
        "UTC",
        description="kind `send_time`: the zone the times are shown in and the parts' "
        "campaigns scheduled in (an IANA name, e.g. Europe/Paris); other kinds keep UTC.",
    )
    test_percent: int = Field(
        20, ge=2, le=50, description="The sample's share; a test of send time goes to everyone."
    )
    metric: Literal["opens", "clicks", "manual"] = Field(
        "opens", description="How the winner is chosen (`manual`: by you)."
    )
    wait_hours: int = Field(4, ge=1, le=24 * 14, description="When the winner is chosen.")


class ChooseIn(Input):
    label: Label


class VariantOut(Schema):
    label: str
    campaign: UUID = Field(..., description="The variant's campaign (edit it while a draft).")
    subject: str
    from_name: str
    send_at: datetime | None
    recipients: int
    delivered: int
    counted: int = Field(..., description="The rate's base: messages whose opens may count.")
    opened: int = Field(..., description="Messages opened (events under aggregate tracking).")
    clicked: int = Field(..., description="Messages clicked (events under aggregate tracking).")
    rate: float | None = Field(
        None, description="By the measure: a share (0..1), or events per message (aggregate)."
    )
    interval_low: float | None = Field(None, description="95 % Wilson score interval.")
    interval_high: float | None = None
    p_value: float | None = Field(
        None, description="Two-proportion z-test against the best variant."
    )
    significant: bool | None = None
    best: bool


class SplitTestOut(Schema):
    uuid: UUID
    campaign: UUID
    kind: str
    status: str
    test_percent: int
    metric: str
    wait_hours: int
    time_zone: str = Field(
        ..., description="A test of send time's zone (its times are shown in it); else UTC."
    )
    created_at: datetime
    started_at: datetime | None
    decide_at: datetime | None
    decided_at: datetime | None
    winner: str | None = Field(None, description="The winning variant's label.")
    rest: UUID | None = Field(None, description="The campaign sending the winner to the rest.")
    note: str = Field(..., description="Why that winner (set when it was chosen).")
    measure: str = Field(..., description="`opens` or `clicks`: what the rates count.")
    per_contact: bool = Field(..., description="People counted (else counts of events).")
    tracking_note: str = Field(..., description="What may be counted (P26).")
    verdict: str = Field(..., description="What the figures say, significance included.")
    variants: list[VariantOut]


class SplitTestList(Schema):
    items: list[SplitTestOut]


# --- helpers -------------------------------------------------------------------------


@contextmanager
def _refusals() -> Iterator[None]:
    """The service's refusals as HTTP answers (it writes nothing when it refuses)."""
    try:
        yield
    except splittests.SplitTestConflict as error:
        raise HttpError(409, str(error)) from None
    except splittests.SplitTestError as error:
        raise HttpError(422, str(error)) from None


def _actor(request: HttpRequest) -> User | None:
    return getattr(getattr(request, "auth", None), "created_by", None)


def _test(account: Account, key: UUID) -> SplitTest:
    test = (
        SplitTest.objects.select_related("campaign", "winner", "rest")
        .filter(account=account, uuid=key)
        .first()
    )
    if test is None:
        raise HttpError(404, "No such A/B test.")
    return test


def _out(test: SplitTest) -> dict[str, Any]:
    report = splittests.report(test)
    winner = next((f.label for f in report.variants if f.campaign.pk == test.winner_id), None)
    names = (
        "uuid", "kind", "status", "test_percent", "metric", "wait_hours", "time_zone", "created_at",
        "started_at", "decide_at", "decided_at", "note",
    )  # fmt: skip
    return {n: getattr(test, n) for n in names} | {
        "campaign": test.campaign.uuid,
        "winner": winner,
        "rest": test.rest.uuid if test.rest else None,
        "measure": report.measure,
        "per_contact": report.per_contact,
        "tracking_note": report.note,
        "verdict": report.verdict,
        "variants": [
            {
                "label": f.label,
                "campaign": f.campaign.uuid,
                "subject": f.campaign.subject,
                "from_name": f.campaign.from_name,
                "send_at": f.send_at,
                "recipients": f.recipients,
                "delivered": f.delivered,
                "counted": f.counted,
                "opened": f.opened,
                "clicked": f.clicked,
                "rate": f.rate,
                "interval_low": f.low,
                "interval_high": f.high,
                "p_value": f.p_value,
                "significant": None if f.p_value is None else f.significant,
                "best": f.best,
            }
            for f in report.variants
        ],
    }


# --- routes --------------------------------------------------------------------------


@router.get("/ab-tests", response=SplitTestList, summary="The account's A/B tests, newest first")
def list_tests(request: HttpRequest) -> dict[str, Any]:
    tests = SplitTest.objects.filter(account=account_of(request)).select_related(
        "campaign", "winner", "rest"
    )
    return {"items": [_out(t) for t in tests.order_by("-pk")[:100]]}


@router.post(
    "/ab-tests",
    response={201: SplitTestOut, 404: Error, 422: Error},
    summary="Make an A/B test of a draft campaign",
    description="Variant A is the campaign; B to D are made as draft copies (with the "
    "other subjects or sender names given; for content, copies to edit). A test of send "
    "time splits everyone evenly between its times, with no winner.",
)
def create_test(request: HttpRequest, payload: SplitTestIn) -> Any:
    account = account_of(request)
    campaign = Campaign.objects.filter(account=account, uuid=payload.campaign).first()
    if campaign is None:
        raise HttpError(404, "No such campaign.")
    with _refusals():
        test = splittests.create_test(
            campaign, by=_actor(request), **payload.dict(exclude={"campaign"})
        )
    return Status(201, _out(_test(account, test.uuid)))


@router.get(
    "/ab-tests/{test_uuid}",
    response={200: SplitTestOut, 404: Error},
    summary="An A/B test with its variants and figures",
)
def get_test(request: HttpRequest, test_uuid: UUID) -> Any:
    return _out(_test(account_of(request), test_uuid))


@router.post(
    "/ab-tests/{test_uuid}/start",
    response={200: SplitTestOut, 404: Error, 409: Error, 422: Error},
    summary="Send the variants to the sample (or schedule each send time)",
)
def start_test(request: HttpRequest, test_uuid: UUID) -> Any:
    account = account_of(request)
    test = _test(account, test_uuid)
    with _refusals():
        splittests.start_test(test, by=_actor(request))
    return _out(_test(account, test_uuid))


@router.post(
    "/ab-tests/{test_uuid}/winner",
    response={200: SplitTestOut, 404: Error, 409: Error, 422: Error},
    summary="Choose the winner: it is sent to everyone the sample left out",
)
def choose_winner(request: HttpRequest, test_uuid: UUID, payload: ChooseIn) -> Any:
    account = account_of(request)
    test = _test(account, test_uuid)
    if test.status != SplitTest.Status.TESTING:
        raise HttpError(409, f"This A/B test is {test.get_status_display()}: no winner to choose.")
    with _refusals():
        splittests.decide(test, label=payload.label, by=_actor(request))
    return _out(_test(account, test_uuid))
