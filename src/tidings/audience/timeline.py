"""A contact's activity, newest first, for the contact's page: subscriptions and
unsubscriptions, rights requests (kept here), and what the delivery layer records
(campaigns received, opens and clicks where per-contact tracking was allowed, bounces),
which it hands in through `register_source` from its AppConfig.ready(), so that this
domain module never imports delivery.

A page of the timeline is found without reading a contact's whole history: each source
gives at most the newest `limit` events (page * size + 1), and the merged list is cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _

from tidings.audience.models import Contact, ContactRequest, Subscription

PAGE_SIZE = 25
# Deep pages cost a source's newest page * size rows: past this, the page is the last.
MAX_PAGE = 200


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # subscribed, confirmed, unsubscribed, request, received, opened, clicked, bounced
    text: str


# source(contact, limit): the contact's newest `limit` events of that source.
Source = Callable[[Contact, int], list[Event]]
_sources: dict[str, Source] = {}


def register_source(name: str, source: Source) -> None:
    """Add a source of events (registering a name again replaces it)."""
    _sources[name] = source


@dataclass
class TimelinePage:
    events: list[Event]
    number: int
    has_older: bool

    @property
    def newer(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def older(self) -> int | None:
        return self.number + 1 if self.has_older else None


def timeline(contact: Contact, *, page: int = 1, size: int = PAGE_SIZE) -> TimelinePage:
    """Page `page` of the contact's events, newest first."""
    page = min(max(1, page), MAX_PAGE)
    limit = page * size + 1
    events: list[Event] = []
    for source in (_subscriptions, _requests, *_sources.values()):
        events.extend(source(contact, limit))
    events.sort(key=lambda e: e.at, reverse=True)
    start = (page - 1) * size
    return TimelinePage(events[start : start + size], page, len(events) > start + size)


def _subscriptions(contact: Contact, limit: int) -> list[Event]:
    events = []
    rows = (
        Subscription.objects.filter(contact=contact)
        .select_related("mailing_list")
        .order_by("-created_at")[:limit]
    )
    for s in rows:
        name = s.mailing_list.name
        if s.status == Subscription.Status.UNCONFIRMED and s.confirmed_at is None:
            text = _("Signed up to “%(list)s”, waiting for confirmation") % {"list": name}
            events.append(Event(s.created_at, "subscribed", text))
        else:
            text = _("Subscribed to “%(list)s”") % {"list": name}
            events.append(Event(s.created_at, "subscribed", text))
        if s.confirmed_at is not None and s.confirmed_at != s.created_at:
            text = _("Confirmed the subscription to “%(list)s”") % {"list": name}
            events.append(Event(s.confirmed_at, "confirmed", text))
        if s.unsubscribed_at is not None:
            text = _("Unsubscribed from “%(list)s”") % {"list": name}
            events.append(Event(s.unsubscribed_at, "unsubscribed", text))
    return events


def _requests(contact: Contact, limit: int) -> list[Event]:
    events = []
    for r in ContactRequest.objects.filter(contact=contact).order_by("-received_at")[:limit]:
        kind = ContactRequest.Kind(r.kind).label
        events.append(Event(r.received_at, "request", _("Asked for %(kind)s") % {"kind": kind}))
        if r.closed_at is not None:
            text = _("Request for %(kind)s %(status)s") % {
                "kind": kind,
                "status": ContactRequest.Status(r.status).label,
            }
            events.append(Event(r.closed_at, "request", text))
    return events
