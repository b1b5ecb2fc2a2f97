"""HTTP API routes: automations (docs/automations.md, docs/api.md).

List, create, read and change automations and their steps, start, pause and resume
them, post events that start them, and see how many contacts wait at each step and how
many passed it. Every route starts from the key's account: another account's
automation, step, list, campaign or contact is a 404. Bad input is a 422 with a
`detail` that says what is wrong, and nothing is written."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal
from uuid import UUID

from django.db.models import Count
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from tidings.accounts.api import MAX_ID, Input, account_of
from tidings.accounts.models import Account, User
from tidings.audience.models import Contact, MailingList
from tidings.automations import engine, services
from tidings.automations.models import Automation, Enrolment, Step
from tidings.campaigns.models import Campaign

router = Router(tags=["automations"])

TriggerName = Literal["joined_list", "tag_added", "date", "clicked", "event"]
KindName = Literal[
    "send", "wait", "condition", "add_tag", "remove_tag", "add_to_list", "remove_from_list",
    "leave",
]  # fmt: skip
TestName = Literal["", "equals", "contains", "is_set", "has_tag", "opened", "clicked"]
UnitName = Literal["minutes", "hours", "days"]


# --- schemas -------------------------------------------------------------------------


class Error(Schema):
    detail: str


class StepOut(Schema):
    id: int
    position: int = Field(..., description="0 for the first step.")
    kind: str
    wait_days: int = Field(..., description="Send steps: days to wait before sending.")
    wait_amount: int
    wait_unit: str
    wait_weekday: int | None = Field(None, description="0 is Monday; set: wait until that day.")
    wait_time: str | None = Field(None, description="HH:MM, in the account's time zone.")
    test: str
    key: str = Field(..., description="The attribute or the tag a condition checks.")
    value: str
    about: int | None = Field(None, description="The earlier send step an open or click is of.")
    otherwise: int | None = Field(
        None, description="Where a condition not met goes; null: the contact leaves."
    )
    tag: str
    list: UUID | None
    message: UUID | None = Field(None, description="A send step's campaign.")
    subject: str
    waiting: int = Field(..., description="Contacts waiting at this step now.")
    passed: int = Field(..., description="Times the step was done (every round).")
    met: int | None = Field(
        None,
        description="Conditions: times it was met (runs from before outcomes were recorded"
        " are in neither count); null for other steps.",
    )
    not_met: int | None = Field(None, description="Conditions: times it was not met.")


class CountsOut(Schema):
    entered: int
    active: int
    done: int
    left: int
    exited: int


class AutomationOut(Schema):
    uuid: UUID
    name: str
    status: str
    trigger: str
    list: UUID = Field(
        ...,
        description="The list its messages go to (and, for joined_list, whose subscribers enter).",
    )
    tag: str
    date_attribute: str
    date_yearly: bool
    date_time: str
    campaign: UUID | None
    url: str
    event_name: str
    reentry: bool
    activated_at: dt.datetime | None
    created_at: dt.datetime
    steps: builtins.list[StepOut]
    counts: CountsOut


class AutomationPage(Schema):
    items: list[AutomationOut]


class TriggerFields(Input):
    tag: str = Field("", max_length=100, description="tag_added: the tag.")
    date_attribute: str = Field("", max_length=64, description="date: the attribute.")
    date_yearly: bool = True
    date_time: str = Field("09:00", max_length=8, description="date: HH:MM.")
    campaign: UUID | None = Field(None, description="clicked: the campaign.")
    url: str = Field("", max_length=2000, description="clicked: the link; empty: any.")
    event_name: str = Field("", max_length=100, description="event: the event's name.")
    reentry: bool = False


class AutomationIn(TriggerFields):
    name: str = Field(..., min_length=1, max_length=200)
    list: UUID
    trigger: TriggerName = "joined_list"


class AutomationPatch(TriggerFields):
    name: str | None = Field(None, min_length=1, max_length=200)
    trigger: TriggerName


class StepSettings(Input):
    wait_days: int | None = Field(None, ge=0, le=services.MAX_WAIT_DAYS)
    wait_amount: int | None = Field(None, ge=0, le=10**6)
    wait_unit: UnitName | None = None
    wait_weekday: int | None = Field(None, ge=0, le=6)
    wait_time: str | None = Field(None, max_length=8)
    test: TestName | None = None
    key: str | None = Field(None, max_length=100)
    value: str | None = Field(None, max_length=200)
    about: int | None = Field(None, ge=1, le=MAX_ID)
    otherwise: int | None = Field(None, ge=1, le=MAX_ID)
    tag: str | None = Field(None, max_length=100)
    list: UUID | None = None


class StepIn(StepSettings):
    kind: KindName
    before: int | None = Field(None, ge=1, le=MAX_ID, description="Insert before this step.")
    subject: str = Field("", max_length=300)
    from_email: str = Field("", max_length=254)
    from_name: str = Field("", max_length=200)
    body: str = ""


class EventIn(Input):
    id: str = Field(
        ..., min_length=1, max_length=100, description="Yours: the same id again is ignored."
    )
    contact: UUID | None = None
    email: str | None = Field(None, max_length=320)


class NamedEventIn(EventIn):
    name: str = Field(..., min_length=1, max_length=100)


class EventOut(Schema):
    accepted: bool = Field(..., description="False: an event with this id came before.")
    automations: int = Field(
        ...,
        description=(
            "Automations the contact enters at the scheduler's next pass, as things stand: "
            "none for a contact who may not be mailed, is not on the automation's list, or "
            "is in it already."
        ),
    )


# --- helpers -------------------------------------------------------------------------


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except services.AutomationError as error:
        raise HttpError(422, str(error)) from None


def _actor(request: HttpRequest) -> User | None:
    return getattr(getattr(request, "auth", None), "created_by", None)


def _automation(account: Account, key: UUID) -> Automation:
    found = Automation.objects.filter(account=account, uuid=key).select_related(
        "mailing_list", "trigger_campaign"
    )
    automation = found.first()
    if automation is None:
        raise HttpError(404, "No such automation.")
    return automation


def _step(automation: Automation, pk: int | None) -> Step | None:
    if pk is None:
        return None
    step = Step.objects.filter(automation=automation, pk=pk).first()
    if step is None:
        raise HttpError(404, "No such step in this automation.")
    return step


def _list(account: Account, key: UUID | None) -> MailingList | None:
    if key is None:
        return None
    found = MailingList.objects.filter(account=account, uuid=key).first()
    if found is None:
        raise HttpError(404, "No such list.")
    return found


def _trigger_settings(account: Account, payload: TriggerFields) -> dict[str, Any]:
    campaign = None
    if payload.campaign is not None:
        campaign = Campaign.objects.filter(account=account, uuid=payload.campaign).first()
        if campaign is None:
            raise HttpError(404, "No such campaign.")
    return {
        "trigger_tag": payload.tag,
        "date_attribute": payload.date_attribute,
        "date_yearly": payload.date_yearly,
        "date_time": payload.date_time,
        "trigger_campaign": campaign,
        "trigger_url": payload.url,
        "event_name": payload.event_name,
        "reentry": payload.reentry,
    }


def _step_settings(automation: Automation, payload: StepSettings) -> dict[str, Any]:
    values = payload.dict(include=set(StepSettings.model_fields) - {"list", "about", "otherwise"})
    values = {k: v for k, v in values.items() if v is not None}
    if payload.list is not None:
        values["target_list"] = _list(automation.account, payload.list)
    if payload.about is not None:
        values["about"] = _step(automation, payload.about)
    if "otherwise" in payload.model_fields_set:
        values["otherwise"] = _step(automation, payload.otherwise)
    return values


def _out(automation: Automation) -> dict[str, Any]:
    totals = dict(
        Enrolment.objects.filter(automation=automation)
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    steps = []
    for step, waiting, passed in engine.step_counts(automation):
        steps.append(
            {
                "id": step.pk,
                "position": step.position,
                "kind": step.kind,
                "wait_days": step.wait_days,
                "wait_amount": step.wait_amount,
                "wait_unit": step.wait_unit,
                "wait_weekday": step.wait_weekday,
                "wait_time": step.wait_time.strftime("%H:%M") if step.wait_time else None,
                "test": step.test,
                "key": step.key,
                "value": step.value,
                "about": step.about_id,
                "otherwise": step.otherwise_id,
                "tag": step.tag,
                "list": step.target_list.uuid if step.target_list else None,
                "message": step.campaign.uuid if step.campaign else None,
                "subject": step.campaign.subject if step.campaign else "",
                "waiting": waiting,
                "passed": passed,
                # Annotated by engine.step_counts.
                "met": step.met if step.kind == Step.Kind.CONDITION else None,  # type: ignore[attr-defined]
                "not_met": step.not_met if step.kind == Step.Kind.CONDITION else None,  # type: ignore[attr-defined]
            }
        )
    return {
        "uuid": automation.uuid,
        "name": automation.name,
        "status": automation.status,
        "trigger": automation.trigger,
        "list": automation.mailing_list.uuid,
        "tag": automation.trigger_tag,
        "date_attribute": automation.date_attribute,
        "date_yearly": automation.date_yearly,
        "date_time": automation.date_time.strftime("%H:%M"),
        "campaign": automation.trigger_campaign.uuid if automation.trigger_campaign else None,
        "url": automation.trigger_url,
        "event_name": automation.event_name,
        "reentry": automation.reentry,
        "activated_at": automation.activated_at,
        "created_at": automation.created_at,
        "steps": steps,
        "counts": {
            "entered": sum(totals.values()),
            "active": totals.get(Enrolment.Status.ACTIVE, 0),
            "done": totals.get(Enrolment.Status.DONE, 0),
            "left": totals.get(Enrolment.Status.LEFT, 0),
            "exited": totals.get(Enrolment.Status.EXITED, 0),
        },
    }


def _contact(account: Account, payload: EventIn) -> Contact:
    found = Contact.objects.filter(account=account)
    if payload.contact is not None:
        contact = found.filter(uuid=payload.contact).first()
    elif payload.email:
        contact = found.filter(email=payload.email.strip().lower()).first()
    else:
        raise HttpError(422, "Give the contact: `contact` (its uuid) or `email`.")
    if contact is None:
        raise HttpError(404, "No such contact.")
    return contact


# --- routes --------------------------------------------------------------------------


@router.get("/automations", response=AutomationPage, summary="The account's automations")
def list_automations(request: HttpRequest) -> dict[str, Any]:
    rows = Automation.objects.filter(account=account_of(request)).select_related(
        "mailing_list", "trigger_campaign"
    )
    return {"items": [_out(a) for a in rows[:200]]}


@router.post(
    "/automations/events",
    response={202: EventOut, 404: Error, 422: Error},
    summary="A named event for a contact: every automation listening to the name",
    description="Idempotent by `id`: the same id again is accepted: false and changes nothing.",
)
def post_named_event(request: HttpRequest, payload: NamedEventIn) -> Any:
    account = account_of(request)
    contact = _contact(account, payload)
    with _refusals():
        new, count = services.record_event(
            account, contact=contact, client_id=payload.id, name=payload.name
        )
    return Status(202, {"accepted": new, "automations": count})


@router.post(
    "/automations",
    response={201: AutomationOut, 404: Error, 422: Error},
    summary="Create a draft automation with its trigger",
)
def create_automation(request: HttpRequest, payload: AutomationIn) -> Any:
    account = account_of(request)
    mailing_list = _list(account, payload.list)
    assert mailing_list is not None
    with _refusals():
        automation = services.create_automation(
            account,
            name=payload.name,
            mailing_list=mailing_list,
            by=_actor(request),
            trigger=payload.trigger,
            **_trigger_settings(account, payload),
        )
    return Status(201, _out(_automation(account, automation.uuid)))


@router.get("/automations/{automation_uuid}", response={200: AutomationOut, 404: Error})
def get_automation(request: HttpRequest, automation_uuid: UUID) -> Any:
    return _out(_automation(account_of(request), automation_uuid))


@router.patch(
    "/automations/{automation_uuid}",
    response={200: AutomationOut, 404: Error, 422: Error},
    summary="Change the name, the trigger and whether contacts may enter again",
    description="Contacts already in stay where they are.",
)
def update_automation(request: HttpRequest, automation_uuid: UUID, payload: AutomationPatch) -> Any:
    account = account_of(request)
    automation = _automation(account, automation_uuid)
    with _refusals():
        services.set_trigger(
            automation,
            trigger=payload.trigger,
            name=payload.name,
            by=_actor(request),
            **_trigger_settings(account, payload),
        )
    return _out(_automation(account, automation_uuid))


@router.delete(
    "/automations/{automation_uuid}",
    response={204: None, 404: Error, 422: Error},
    summary="Delete an automation that never ran, with its steps and their draft messages",
    description="One that ran is refused (422): its messages went out and their reports "
    "stay; pause it to stop it.",
)
def delete_automation(request: HttpRequest, automation_uuid: UUID) -> Status[None]:
    automation = _automation(account_of(request), automation_uuid)
    with _refusals():
        services.delete_automation(automation, by=_actor(request))
    return Status(204, None)


@router.post(
    "/automations/{automation_uuid}/steps",
    response={201: AutomationOut, 404: Error, 422: Error},
    summary="Add a step at the end, or before another (`before`)",
    description="Allowed while it runs: contacts wait at a step by its identity, so "
    "nobody's step is skipped or repeated.",
)
def add_step(request: HttpRequest, automation_uuid: UUID, payload: StepIn) -> Any:
    account = account_of(request)
    automation = _automation(account, automation_uuid)
    values = _step_settings(automation, payload)
    message: dict[str, Any] = {}
    if payload.kind == Step.Kind.SEND:
        message = {
            "subject": payload.subject,
            "from_email": payload.from_email,
            "from_name": payload.from_name,
            "body": payload.body,
        }
    with _refusals():
        services.add_step(
            automation,
            kind=payload.kind,
            before=_step(automation, payload.before),
            by=_actor(request),
            **message,
            **values,
        )
    return Status(201, _out(_automation(account, automation_uuid)))


@router.patch(
    "/automations/{automation_uuid}/steps/{step_id}",
    response={200: AutomationOut, 404: Error, 422: Error},
    summary="Change a step's settings",
    description="Contacts waiting at a changed wait are due at their arrival plus the new wait.",
)
def update_step(
    request: HttpRequest, automation_uuid: UUID, step_id: int, payload: StepSettings
) -> Any:
    account = account_of(request)
    automation = _automation(account, automation_uuid)
    step = _step(automation, step_id if 0 < step_id <= MAX_ID else -1)
    assert step is not None
    with _refusals():
        services.update_step(step, by=_actor(request), **_step_settings(automation, payload))
    return _out(_automation(account, automation_uuid))


@router.delete(
    "/automations/{automation_uuid}/steps/{step_id}",
    response={200: AutomationOut, 404: Error, 422: Error},
    summary="Remove a step; contacts waiting at it move on to the next",
    description=(
        "A send step's message goes with it when it went to nobody; one that went out is "
        "stopped (as `cancel` stops a campaign) and stays a campaign, with its report."
    ),
)
def remove_step(request: HttpRequest, automation_uuid: UUID, step_id: int) -> Any:
    account = account_of(request)
    automation = _automation(account, automation_uuid)
    step = _step(automation, step_id if 0 < step_id <= MAX_ID else -1)
    assert step is not None
    with _refusals():
        services.remove_step(step, by=_actor(request))
    return _out(_automation(account, automation_uuid))


def _action(request: HttpRequest, automation_uuid: UUID, action: str) -> Any:
    account = account_of(request)
    automation = _automation(account, automation_uuid)
    with _refusals():
        if action == "pause":
            services.pause(automation, by=_actor(request))
        elif action == "resume":
            services.resume(automation, by=_actor(request))
        else:
            services.start(automation, by=_actor(request))
    return _out(_automation(account, automation_uuid))


@router.post(
    "/automations/{automation_uuid}/start",
    response={200: AutomationOut, 404: Error, 422: Error},
    summary="Start: refused with the reasons while a step's message may not go",
)
def start(request: HttpRequest, automation_uuid: UUID) -> Any:
    return _action(request, automation_uuid, "start")


@router.post(
    "/automations/{automation_uuid}/pause",
    response={200: AutomationOut, 404: Error, 422: Error},
    summary="Pause: every contact waits where they are",
)
def pause(request: HttpRequest, automation_uuid: UUID) -> Any:
    return _action(request, automation_uuid, "pause")


@router.post(
    "/automations/{automation_uuid}/resume",
    response={200: AutomationOut, 404: Error, 422: Error},
    summary="Resume a paused automation from where each contact was",
)
def resume(request: HttpRequest, automation_uuid: UUID) -> Any:
    return _action(request, automation_uuid, "resume")


@router.post(
    "/automations/{automation_uuid}/events",
    response={202: EventOut, 404: Error, 422: Error},
    summary="An event for a contact: they enter this automation (trigger `event`)",
    description="Idempotent by `id`: the same id again is accepted: false and changes nothing.",
)
def post_event(request: HttpRequest, automation_uuid: UUID, payload: EventIn) -> Any:
    account = account_of(request)
    automation = _automation(account, automation_uuid)
    contact = _contact(account, payload)
    with _refusals():
        new, count = services.record_event(
            account, contact=contact, client_id=payload.id, automation=automation
        )
    return Status(202, {"accepted": new, "automations": count})
