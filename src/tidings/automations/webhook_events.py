"""What outgoing webhooks tell: the events of an account between two times, read from
the facts the other apps record (docs/automations.md, "Outgoing webhooks").

Every path that changes a fact counts (a form, an import, the API, a bulk action, a
provider's webhook, the contact's own preference page), because the events are read
from the rows those paths write, by indexed time ranges, never by a scan of contacts:

- subscribed / unsubscribed: `audience.Subscription` (`confirmed_at`, else
  `created_at`; `unsubscribed_at`);
- updated: `audience.ContactChange`, written by the services that change a profile,
  naming the fields that changed, never their values;
- bounced / complained: `sending.BounceRecord` (hard bounces and complaints);
- opened / clicked (P26): `sending.TrackingEvent`, which exists only under per-contact
  tracking and for contacts who allow it; read only while the account is still on
  per-contact tracking, and never for a contact who objected since (their messages not
  yet sent are dropped: `webhooks.drop_objected`). Under aggregate-only tracking there
  is no per-contact event, so none is told. An open is told once per message (its first
  open), a click each time, with the link as the campaign's report shows it (its site
  only when the address held a contact's value);
- campaign sent: `campaigns.Campaign.finished_at` (automation steps' messages are not
  campaigns sent); automation step done: `StepRun.ran_at` (a condition's with whether
  it was met, `StepRun.met`).

Payloads carry the least personal data that makes them useful: the contact's uuid and
email address (never their name or attributes' values), the ids (and names) of the
customer's lists, campaigns and automations, and for a change the names of the fields.
A restricted contact is in no event (P18).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models.functions import Coalesce

from tidings.audience.models import Contact, ContactChange, Subscription
from tidings.automations.models import Step, StepRun, WebhookEndpoint
from tidings.campaigns.models import Campaign
from tidings.sending import tracking
from tidings.sending.models import BounceRecord, SendingSettings, TrackingEvent

Ev = WebhookEndpoint.Event
# The events about what a contact did with a message: told only under per-contact
# tracking, never for a contact who objected to tracking.
TRACKING = (Ev.OPENED, Ev.CLICKED)


@dataclass(frozen=True)
class Event:
    type: str
    key: str
    at: datetime
    data: dict[str, Any]
    contact_id: int | None = None


def contact_data(contact: Contact) -> dict[str, Any]:
    """Who an event is about: the contact's uuid and address, nothing more."""
    return {"id": str(contact.uuid), "email": contact.email}


def _subscription(row: Subscription) -> dict[str, Any]:
    return {
        "contact": contact_data(row.contact),
        "list": {"id": str(row.mailing_list.uuid), "name": row.mailing_list.name},
    }


def _campaign(campaign: Campaign) -> dict[str, Any]:
    return {"id": str(campaign.uuid), "name": campaign.name}


def per_contact_tracking(account_id: int) -> bool:
    """Whether the account keeps who opened and clicked now (sending.SendingSettings)."""
    mode = (
        SendingSettings.objects.filter(account_id=account_id)
        .values_list("tracking", flat=True)
        .first()
    )
    return mode == SendingSettings.Tracking.PER_CONTACT


def events(
    account_id: int, since: datetime, until: datetime, wanted: set[str] | None = None
) -> list[Event]:
    """What happened in the account between the two times (of the `wanted` types, all
    by default), oldest first."""
    wanted = set(Ev.values) if wanted is None else wanted
    found: list[Event] = []
    kinds = (
        (_subscriptions, {Ev.SUBSCRIBED, Ev.UNSUBSCRIBED}),
        (_changes, {Ev.UPDATED}),
        (_bounces, {Ev.BOUNCED, Ev.COMPLAINED}),
        (_engagement, set(TRACKING)),
        (_steps, {Ev.STEP_DONE}),
        (_campaigns, {Ev.CAMPAIGN_SENT}),
    )
    for read, types in kinds:
        if wanted & types:
            found += [e for e in read(account_id, since, until, wanted) if e.type in wanted]
    # Ordered by when they happened, across kinds: the messages are written in this
    # order, and a contact's are delivered in it (webhooks._claim).
    found.sort(key=lambda e: e.at)
    return found


def _subscriptions(
    account_id: int, since: datetime, until: datetime, wanted: set[str]
) -> Iterator[Event]:
    subs = Subscription.objects.filter(
        mailing_list__account_id=account_id, contact__restricted_at__isnull=True
    ).select_related("contact", "mailing_list")
    if Ev.SUBSCRIBED in wanted:
        confirmed = (
            subs.filter(status=Subscription.Status.CONFIRMED)
            .annotate(at=Coalesce("confirmed_at", "created_at"))
            .filter(at__gt=since, at__lte=until)
            .order_by("at", "pk")
        )
        for joined in confirmed:
            yield Event(
                Ev.SUBSCRIBED,
                f"subscribed:{joined.pk}:{joined.at.timestamp()}",
                joined.at,
                _subscription(joined),
                joined.contact_id,
            )
    if Ev.UNSUBSCRIBED in wanted:
        ended = subs.filter(unsubscribed_at__gt=since, unsubscribed_at__lte=until)
        for gone in ended.order_by("unsubscribed_at", "pk"):
            assert gone.unsubscribed_at is not None
            yield Event(
                Ev.UNSUBSCRIBED,
                f"unsubscribed:{gone.pk}:{gone.unsubscribed_at.timestamp()}",
                gone.unsubscribed_at,
                _subscription(gone),
                gone.contact_id,
            )


def _changes(
    account_id: int, since: datetime, until: datetime, wanted: set[str]
) -> Iterator[Event]:
    rows = (
        ContactChange.objects.filter(
            account_id=account_id,
            at__gt=since,
            at__lte=until,
            contact__restricted_at__isnull=True,
        )
        .select_related("contact")
        .order_by("at", "pk")
    )
    for change in rows:
        yield Event(
            Ev.UPDATED,
            f"changed:{change.pk}",
            change.at,
            {"contact": contact_data(change.contact), "fields": list(change.fields)},
            change.contact_id,
        )


def _bounces(
    account_id: int, since: datetime, until: datetime, wanted: set[str]
) -> Iterator[Event]:
    bounces = (
        BounceRecord.objects.filter(
            account_id=account_id,
            contact__isnull=False,
            contact__restricted_at__isnull=True,
            received_at__gt=since,
            received_at__lte=until,
        )
        .exclude(kind=BounceRecord.Kind.SOFT)
        .select_related("contact")
        .order_by("received_at", "pk")
    )
    for record in bounces:
        assert record.contact is not None  # contact__isnull=False
        kind = Ev.COMPLAINED if record.kind == BounceRecord.Kind.COMPLAINT else Ev.BOUNCED
        yield Event(
            kind,
            f"bounce:{record.pk}",
            record.received_at,
            {"contact": contact_data(record.contact), "kind": record.kind},
            record.contact_id,
        )


def _engagement(
    account_id: int, since: datetime, until: datetime, wanted: set[str]
) -> Iterator[Event]:
    """Opens (the first of each message) and clicks, under per-contact tracking only,
    of contacts who allow tracking now (P26)."""
    if not per_contact_tracking(account_id):
        return
    rows = (
        TrackingEvent.objects.filter(
            campaign__account_id=account_id,
            at__gt=since,
            at__lte=until,
            delivery__contact__allow_tracking=True,
            delivery__contact__restricted_at__isnull=True,
        )
        .exclude(kind=TrackingEvent.Kind.OPEN, first=False)
        .select_related("campaign", "delivery__contact")
        .order_by("at", "pk")
    )
    contents: dict[int, str | None] = {}
    for event in rows:
        contact = event.delivery.contact
        data: dict[str, Any] = {
            "contact": contact_data(contact),
            "campaign": _campaign(event.campaign),
        }
        if event.kind == TrackingEvent.Kind.CLICK:
            if event.campaign_id not in contents:
                contents[event.campaign_id] = tracking.campaign_content(event.campaign_id)
            # As the report counts it: the site only when the address held a contact's
            # value (a path or query personalised by the template).
            data["url"] = tracking.link_label(event.url, contents[event.campaign_id] or "")
        yield Event(
            Ev.OPENED if event.kind == TrackingEvent.Kind.OPEN else Ev.CLICKED,
            f"{event.kind}:{event.pk}",
            event.at,
            data,
            contact.pk,
        )


def _steps(account_id: int, since: datetime, until: datetime, wanted: set[str]) -> Iterator[Event]:
    runs = (
        StepRun.objects.filter(
            step__automation__account_id=account_id,
            contact__restricted_at__isnull=True,
            ran_at__gt=since,
            ran_at__lte=until,
        )
        .select_related("contact", "step__automation")
        .order_by("ran_at", "pk")
    )
    for run in runs:
        automation = run.step.automation
        data: dict[str, Any] = {
            "contact": contact_data(run.contact),
            "automation": {"id": str(automation.uuid), "name": automation.name},
            "step": run.step.position + 1,
        }
        if run.step.kind == Step.Kind.CONDITION:
            # Which way the contact went: on to the next step (true), or the other way.
            data["condition_met"] = run.met
        yield Event(Ev.STEP_DONE, f"step:{run.pk}", run.ran_at, data, run.contact_id)


def _campaigns(
    account_id: int, since: datetime, until: datetime, wanted: set[str]
) -> Iterator[Event]:
    sent = (
        Campaign.objects.filter(
            account_id=account_id,
            status=Campaign.Status.SENT,
            finished_at__gt=since,
            finished_at__lte=until,
        )
        # Not the steps' messages. Only steps that have a campaign: `NOT IN` a list
        # holding NULL (a wait's, a condition's) is never true, and told nothing at all.
        .exclude(pk__in=Step.objects.filter(campaign__isnull=False).values("campaign_id"))
        .order_by("finished_at", "pk")
    )
    for campaign in sent:
        assert campaign.finished_at is not None
        yield Event(
            Ev.CAMPAIGN_SENT,
            f"campaign:{campaign.pk}",
            campaign.finished_at,
            {"campaign": _campaign(campaign)},
        )
