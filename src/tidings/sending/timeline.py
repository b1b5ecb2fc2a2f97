"""What the delivery layer adds to a contact's timeline (audience.timeline): the
campaigns they received, their opens and clicks, and bounces. Registered from
SendingConfig.ready().

Opens and clicks come only from the per-contact tracking events, which exist only for
campaigns sent while the account's tracking mode was per contact, to a contact who
allowed tracking (sending.tracking): an account on aggregate counts shows none."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext as _

from tidings.audience.models import Contact
from tidings.audience.timeline import Event
from tidings.sending.models import BounceRecord, Delivery, TrackingEvent


def contact_events(contact: Contact, limit: int) -> list[Event]:
    """The contact's newest `limit` events of each kind this layer records."""
    events: list[Event] = []
    received = (
        Delivery.objects.filter(contact=contact, status=Delivery.Status.SENT, sent_at__isnull=False)
        .select_related("campaign")
        .order_by("-sent_at")[:limit]
    )
    for delivery in received:
        assert delivery.sent_at is not None
        text = _("Received the campaign “%(name)s”") % {"name": delivery.campaign.name}
        events.append(Event(delivery.sent_at, "received", text))
    tracked = (
        TrackingEvent.objects.filter(delivery__contact=contact)
        .filter(
            Q(kind=TrackingEvent.Kind.OPEN, campaign__track_opens=True)
            | Q(kind=TrackingEvent.Kind.CLICK, campaign__track_clicks=True)
        )
        .select_related("campaign")
        .order_by("-at")[:limit]
    )
    for event in tracked:
        name = event.campaign.name
        if event.kind == TrackingEvent.Kind.OPEN:
            text = _("Opened the campaign “%(name)s”") % {"name": name}
            events.append(Event(event.at, "opened", text))
        else:
            text = _("Clicked %(url)s in the campaign “%(name)s”") % {
                "url": event.url,
                "name": name,
            }
            events.append(Event(event.at, "clicked", text))
    bounces = (
        BounceRecord.objects.filter(contact=contact, account_id=contact.account_id)
        .select_related("campaign")
        .order_by("-received_at")[:limit]
    )
    for bounce in bounces:
        kind = BounceRecord.Kind(bounce.kind).label
        if bounce.campaign is not None:
            text = _("%(kind)s of the campaign “%(name)s”") % {
                "kind": str(kind).capitalize(),
                "name": bounce.campaign.name,
            }
        else:
            text = str(kind).capitalize()
        events.append(Event(bounce.received_at, "bounced", text))
    return events
