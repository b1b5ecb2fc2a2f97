"""HTTP API routes of the audience app, mounted by tidings.api under /api/v1/.

Every route starts from the key's account: another account's uuid is a 404, as is an
unknown one. Bad input is a 422 (or a 409 when it conflicts with what exists) with a
`detail` that says what is wrong, and nothing is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from tidings.accounts.api import Input, UtcDatetime, account_of
from tidings.accounts.models import Account
from tidings.audience import mailing_lists, segments, services
from tidings.audience.models import ConsentProof, Contact, MailingList, Segment, Subscription
from tidings.audience.selectors import ContactSearch, SearchError, list_counts

router = Router(tags=["audience"])

MAX_LIMIT = 500
Scalar = str | int | float | bool


# --- schemas -------------------------------------------------------------------------


class Error(Schema):
    detail: str


class SubscriptionOut(Schema):
    list: uuid.UUID
    list_name: str
    status: str
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None


class ContactOut(Schema):
    uuid: uuid.UUID
    email: str
    name: str
    status: str
    attributes: dict[str, Any]
    tags: list[str]
    legal_basis: str
    basis_at: datetime | None
    source: str
    allow_tracking: bool
    allow_profiling: bool
    created_at: datetime
    updated_at: datetime
    subscriptions: list[SubscriptionOut]


class ContactPage(Schema):
    items: list[ContactOut]
    next: str | None = Field(None, description="Pass as `after` for the next page.")


class ContactIn(Input):
    email: str = Field(..., max_length=320)
    name: str = Field("", max_length=200)
    attributes: dict[str, Scalar] = {}
    tags: list[str] = []
    lists: list[uuid.UUID] = Field([], description="Lists to subscribe the contact to.")
    legal_basis: Literal["consent", "contract"] = "consent"
    basis_at: UtcDatetime | None = Field(None, description="When the consent was given.")
    note: str = Field("", max_length=500, description="How the consent was given (proof).")


class ContactPatch(Input):
    name: str | None = Field(None, max_length=200)
    attributes: dict[str, Scalar | None] | None = Field(
        None, description="Merged into the attributes; null removes a key."
    )
    tags: list[str] | None = Field(None, description="Replaces the tags.")
    status: Literal["active", "blocklisted", "unsubscribed"] | None = Field(
        None, description="Active only undoes a blocklist; unsubscribed ends every list."
    )


class ContactFilter(Input):
    q: str = Field("", description="Email or name part, or attribute=value.")
    status: str = ""
    list: str = Field("", description="A list's uuid.")
    tag: str = ""
    after: str = Field("", description="The `next` of the previous page.")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


class ListIn(Input):
    name: str = Field(..., max_length=200)
    description: str = Field("", max_length=5000)
    visibility: Literal["public", "private"] = "private"
    optin: Literal["single", "double"] = "double"


class ListPatch(Input):
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    visibility: Literal["public", "private"] | None = None
    optin: Literal["single", "double"] | None = None


class ListOut(Schema):
    uuid: uuid.UUID
    name: str
    description: str
    visibility: str
    optin: str
    created_at: datetime
    counts: dict[str, int]


class SubscribeIn(Input):
    contact: uuid.UUID
    note: str = Field("", max_length=500, description="Why the contact may be added (proof).")


class SegmentIn(Input):
    name: str = Field(..., max_length=200)
    rules: dict[str, Any] = Field(
        ...,
        description='{"match": "all"|"any", "conditions": [{"field", "key", "op", "value"}]}',
    )


class SegmentPatch(Input):
    name: str | None = Field(None, max_length=200)
    rules: dict[str, Any] | None = None


class RulesIn(Input):
    rules: dict[str, Any]


class SegmentOut(Schema):
    uuid: uuid.UUID
    name: str
    rules: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class Count(Schema):
    count: int


# --- helpers -------------------------------------------------------------------------


@contextmanager
def _refusals() -> Iterator[None]:
    """The services' refusals as HTTP answers; the transaction rolls back with them."""
    try:
        with transaction.atomic():
            yield
    except services.Suppressed as error:
        raise HttpError(409, str(error)) from None
    except (services.AudienceError, SearchError) as error:
        raise HttpError(422, str(error)) from None


def _contact(account: Account, key: uuid.UUID) -> Contact:
    contact = Contact.objects.filter(account=account, uuid=key).first()
    if contact is None:
        raise HttpError(404, "No such contact.")
    return contact


def _list(account: Account, key: uuid.UUID) -> MailingList:
    mailing_list = MailingList.objects.filter(account=account, uuid=key).first()
    if mailing_list is None:
        raise HttpError(404, "No such list.")
    return mailing_list


def _segment(account: Account, key: uuid.UUID) -> Segment:
    segment = Segment.objects.filter(account=account, uuid=key).first()
    if segment is None:
        raise HttpError(404, "No such segment.")
    return segment


def _subscription_out(sub: Subscription) -> dict[str, Any]:
    return {
        "list": sub.mailing_list.uuid,
        "list_name": sub.mailing_list.name,
        "status": sub.status,
        "created_at": sub.created_at,
        "confirmed_at": sub.confirmed_at,
        "unsubscribed_at": sub.unsubscribed_at,
    }


def _contact_out(contact: Contact) -> dict[str, Any]:
    fields = [
        "uuid",
        "email",
        "name",
        "status",
        "attributes",
        "tags",
        "legal_basis",
        "basis_at",
        "source",
        "allow_tracking",
        "allow_profiling",
        "created_at",
        "updated_at",
    ]
    return {f: getattr(contact, f) for f in fields} | {
        "subscriptions": [
            _subscription_out(s)
            for s in contact.subscriptions.all()
            if s.mailing_list.account_id == contact.account_id
        ]
    }


def _with_subscriptions(qs: QuerySet[Contact]) -> QuerySet[Contact]:
    return qs.prefetch_related("subscriptions__mailing_list")


def _cursor(value: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise HttpError(422, "`after` must be the `next` of a previous page.") from None


def _page(qs: QuerySet[Contact], after: str, limit: int) -> dict[str, Any]:
    start = _cursor(after)
    if start is not None:
        qs = qs.filter(pk__lt=start)
    rows = list(_with_subscriptions(qs.order_by("-pk"))[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [_contact_out(c) for c in rows],
        "next": str(rows[-1].pk) if more and rows else None,
    }


def _list_out(mailing_list: MailingList, counts: dict[int, dict[str, int]]) -> dict[str, Any]:
    empty = dict.fromkeys(Subscription.Status.values, 0)
    return {
        "uuid": mailing_list.uuid,
        "name": mailing_list.name,
        "description": mailing_list.description,
        "visibility": mailing_list.visibility,
        "optin": mailing_list.optin,
        "created_at": mailing_list.created_at,
        "counts": counts.get(mailing_list.pk, empty),
    }


# --- contacts ------------------------------------------------------------------------


@router.get("/contacts", response={200: ContactPage, 422: Error}, summary="Search contacts")
def list_contacts(request: HttpRequest, filters: Query[ContactFilter]) -> dict[str, Any]:
    """Newest first, by pages of `limit`; `next` is the cursor of the following page."""
    account = account_of(request)
    search = ContactSearch.from_dict(filters.dict())
    try:
        qs = search.contacts(account)
    except SearchError as error:
        raise HttpError(422, str(error)) from None
    return _page(qs, filters.after, filters.limit)


@router.post(
    "/contacts",
    response={201: ContactOut, 404: Error, 409: Error, 422: Error},
    summary="Add a contact",
)
def create_contact(request: HttpRequest, data: ContactIn) -> Status[dict[str, Any]]:
    """Adds the contact with the proof of the consent (or contract) the customer states.
    An address already in the audience is a 409; one that was erased or left is a 409
    too: only the person's new consent, on a form, brings it back."""
    account = account_of(request)
    lists = [_list(account, key) for key in data.lists]
    with _refusals():
        address = services.normalise_email(data.email)
        if Contact.objects.filter(account=account, email=address).exists():
            raise HttpError(409, f"{address} is already a contact: PATCH it instead.")
        contact = services.add_contact(
            account,
            address,
            name=data.name,
            attributes=services.clean_attributes(data.attributes),
            tags=services.clean_tags(data.tags),
            lists=lists,
            legal_basis=data.legal_basis,
            basis_at=data.basis_at,
            source=Contact.Source.API,
            proof={
                "method": ConsentProof.Method.API,
                "given_at": data.basis_at or timezone.now(),
                "note": data.note or "stated by the customer through the API",
            },
        )
    return Status(201, _contact_out(_with_subscriptions(Contact.objects.all()).get(pk=contact.pk)))


@router.get("/contacts/{contact_uuid}", response={200: ContactOut, 404: Error})
def get_contact(request: HttpRequest, contact_uuid: uuid.UUID) -> dict[str, Any]:
    account = account_of(request)
    contact = _with_subscriptions(Contact.objects.all()).filter(account=account, uuid=contact_uuid)
    if not contact:
        raise HttpError(404, "No such contact.")
    return _contact_out(contact[0])


@router.patch("/contacts/{contact_uuid}", response={200: ContactOut, 404: Error, 422: Error})
def update_contact(
    request: HttpRequest, contact_uuid: uuid.UUID, data: ContactPatch
) -> dict[str, Any]:
    account = account_of(request)
    contact = _contact(account, contact_uuid)
    attributes = None
    if data.attributes is not None:
        attributes = dict(contact.attributes)
        for key, value in data.attributes.items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
    with _refusals():
        services.update_contact(
            contact, name=data.name, attributes=attributes, tags=data.tags, status=data.status
        )
    return _contact_out(_with_subscriptions(Contact.objects.all()).get(pk=contact.pk))


@router.delete("/contacts/{contact_uuid}", response={204: None, 404: Error})
def delete_contact(request: HttpRequest, contact_uuid: uuid.UUID) -> Status[None]:
    """Erases the contact; a keyed hash of the address stays on the suppression list."""
    services.erase_contact(_contact(account_of(request), contact_uuid))
    return Status(204, None)


@router.post("/contacts/{contact_uuid}/blocklist", response={200: ContactOut, 404: Error})
def blocklist_contact(request: HttpRequest, contact_uuid: uuid.UUID) -> dict[str, Any]:
    contact = services.blocklist(_contact(account_of(request), contact_uuid))
    return _contact_out(_with_subscriptions(Contact.objects.all()).get(pk=contact.pk))


# --- lists ---------------------------------------------------------------------------


@router.get("/lists", response=list[ListOut], summary="All lists, with counts")
def list_lists(request: HttpRequest) -> list[dict[str, Any]]:
    account = account_of(request)
    counts = list_counts(account)
    return [_list_out(m, counts) for m in MailingList.objects.filter(account=account)]


@router.post("/lists", response={201: ListOut, 422: Error})
def create_list(request: HttpRequest, data: ListIn) -> Status[dict[str, Any]]:
    account = account_of(request)
    with _refusals():
        mailing_list = mailing_lists.save_list(account, **data.dict())
    return Status(201, _list_out(mailing_list, {}))


@router.get("/lists/{list_uuid}", response={200: ListOut, 404: Error})
def get_list(request: HttpRequest, list_uuid: uuid.UUID) -> dict[str, Any]:
    account = account_of(request)
    return _list_out(_list(account, list_uuid), list_counts(account))


@router.patch("/lists/{list_uuid}", response={200: ListOut, 404: Error, 422: Error})
def update_list(request: HttpRequest, list_uuid: uuid.UUID, data: ListPatch) -> dict[str, Any]:
    account = account_of(request)
    mailing_list = _list(account, list_uuid)
    current = {
        "name": mailing_list.name,
        "description": mailing_list.description,
        "visibility": mailing_list.visibility,
        "optin": mailing_list.optin,
    }
    changes = {k: v for k, v in data.dict().items() if v is not None}
    with _refusals():
        mailing_lists.save_list(account, mailing_list=mailing_list, **(current | changes))
    return _list_out(mailing_list, list_counts(account))


@router.delete("/lists/{list_uuid}", response={204: None, 404: Error})
def delete_list(request: HttpRequest, list_uuid: uuid.UUID) -> Status[None]:
    """Deletes the list and its subscriptions; the contacts stay."""
    mailing_lists.delete_list(_list(account_of(request), list_uuid))
    return Status(204, None)


# --- subscriptions -------------------------------------------------------------------


@router.post(
    "/lists/{list_uuid}/subscriptions",
    response={201: SubscriptionOut, 404: Error, 409: Error},
    summary="Subscribe a contact to a list",
)
def subscribe(
    request: HttpRequest, list_uuid: uuid.UUID, data: SubscribeIn
) -> Status[dict[str, Any]]:
    """On the contact's legal basis, with a proof row. A contact who left the list, or
    left everything, is a 409: only their own new consent puts them back."""
    account = account_of(request)
    mailing_list = _list(account, list_uuid)
    contact = _contact(account, data.contact)
    with _refusals():
        sub = services.add_to_list(
            contact, mailing_list, note=data.note or "subscribed by the customer through the API"
        )
    return Status(201, _subscription_out(sub))


@router.delete(
    "/lists/{list_uuid}/subscriptions/{contact_uuid}",
    response={200: SubscriptionOut, 404: Error},
    summary="Unsubscribe a contact from a list",
)
def unsubscribe(
    request: HttpRequest, list_uuid: uuid.UUID, contact_uuid: uuid.UUID
) -> dict[str, Any]:
    """Records the contact's unsubscription (at once, with its time): for when they ask
    the customer directly. It is not undone by a later subscribe call."""
    account = account_of(request)
    mailing_list = _list(account, list_uuid)
    contact = _contact(account, contact_uuid)
    sub = Subscription.objects.filter(contact=contact, mailing_list=mailing_list).first()
    if sub is None:
        raise HttpError(404, "The contact is not on this list.")
    services.unsubscribe(contact, mailing_list)
    sub.refresh_from_db()
    return _subscription_out(sub)


# --- segments ------------------------------------------------------------------------


@router.get("/segments", response=list[SegmentOut])
def list_segments(request: HttpRequest) -> QuerySet[Segment]:
    return Segment.objects.filter(account=account_of(request))


@router.post("/segments", response={201: SegmentOut, 422: Error})
def create_segment(request: HttpRequest, data: SegmentIn) -> Status[Segment]:
    account = account_of(request)
    with _refusals():
        segment = segments.save_segment(account, name=data.name, rules=data.rules)
    return Status(201, segment)


@router.post("/segments/count", response={200: Count, 422: Error}, summary="Count rules")
def count_rules(request: HttpRequest, data: RulesIn) -> dict[str, int]:
    """How many contacts match `rules`, without saving a segment."""
    account = account_of(request)
    with _refusals():
        return {"count": segments.size(account, data.rules)}


@router.get("/segments/{segment_uuid}", response={200: SegmentOut, 404: Error})
def get_segment(request: HttpRequest, segment_uuid: uuid.UUID) -> Segment:
    return _segment(account_of(request), segment_uuid)


@router.patch("/segments/{segment_uuid}", response={200: SegmentOut, 404: Error, 422: Error})
def update_segment(request: HttpRequest, segment_uuid: uuid.UUID, data: SegmentPatch) -> Segment:
    account = account_of(request)
    segment = _segment(account, segment_uuid)
    with _refusals():
        segments.save_segment(
            account,
            segment=segment,
            name=data.name if data.name is not None else segment.name,
            rules=data.rules if data.rules is not None else segment.rules,
        )
    return segment


@router.delete("/segments/{segment_uuid}", response={204: None, 404: Error})
def delete_segment(request: HttpRequest, segment_uuid: uuid.UUID) -> Status[None]:
    _segment(account_of(request), segment_uuid).delete()
    return Status(204, None)


@router.get("/segments/{segment_uuid}/count", response={200: Count, 404: Error})
def count_segment(request: HttpRequest, segment_uuid: uuid.UUID) -> dict[str, int]:
    segment = _segment(account_of(request), segment_uuid)
    return {"count": segments.size(segment.account, segment.rules or {})}


@router.get(
    "/segments/{segment_uuid}/contacts",
    response={200: ContactPage, 404: Error, 422: Error},
    summary="The segment's contacts",
)
def segment_contacts(
    request: HttpRequest,
    segment_uuid: uuid.UUID,
    after: str = "",
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    """Every status: filter on `status` yourself, or let a campaign keep the mailable."""
    segment = _segment(account_of(request), segment_uuid)
    return _page(segments.contacts_in(segment), after, limit)
