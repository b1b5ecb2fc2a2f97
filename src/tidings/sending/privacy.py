"""Data map entries and retention rules of the sending engine."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower, TruncHour
from django.utils.translation import gettext_lazy as _

from tidings.core import retention
from tidings.core.datamap import (
    Column,
    ContactErasure,
    ContactPart,
    Contacts,
    DataClass,
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)
from tidings.sending import tracking
from tidings.sending.models import (
    BounceRecord,
    CampaignStat,
    Delivery,
    LinkClick,
    OutboundMail,
    ProductUpdate,
    Relay,
    SendingDomain,
    SendingSettings,
    TrackingEvent,
    TrackingStreamMark,
)

CONTACT_DATA = _("the customer's contacts (application data)")
NOT_CONTACTS = "the customer's own settings: no contact's data"


def fold_deliveries(rows: QuerySet[Delivery], contacts: Contacts) -> None:
    """Before contacts' deliveries are erased, their part in campaign reports becomes an
    anonymous count of messages sent per campaign and hour (P13, P17); the report adds
    it to the deliveries still there."""
    sent = (
        rows.filter(sent_at__isnull=False)
        .annotate(h=TruncHour("sent_at"))
        .values("campaign_id", "h")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in sent:
        tracking.count(row["campaign_id"], CampaignStat.Kind.SENT, row["n"], at=row["h"])


def fold_events(rows: QuerySet[TrackingEvent], contacts: Contacts) -> None:
    """Opens and clicks become anonymous counts before they are erased."""
    tracking.fold(rows)


def mail_to(contacts: Contacts) -> QuerySet[OutboundMail]:
    """The account's messages to these contacts: tied to their row, or to their address
    (sent before it was a contact, or by the API to an address given in another case).
    The last word to an erased person (`forget`) is not theirs to erase: it leaves the
    ledger by itself once it has an outcome."""
    return (
        OutboundMail.objects.annotate(to_lower=Lower("to_email"))
        .filter(
            Q(contact_id__in=contacts.ids)
            | Q(account_id=contacts.account_id, to_lower__in=[e.lower() for e in contacts.emails])
        )
        .exclude(forget=True)
    )


register(
    Delivery,
    owner=Owner.CUSTOMER,
    category=CONTACT_DATA,
    purpose=_("sending each campaign at most once to each contact, and reporting on it"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("as long as the campaign and the contact exist; erased with either"),
    personal_fields=["status", "message_id", "sent_at", "last_error"],
    erase=Erasure.DELETE,
    account_path="campaign__account",
    exported=False,
    contact=ContactPart(
        title=_("Mail sent to you"),
        path="contact",
        columns=(
            Column(_("campaign"), "campaign__name"),
            Column(_("status"), "status"),
            Column(_("sent"), "sent_at"),
        ),
        position=60,
        fold=fold_deliveries,
        erase=ContactErasure.DELETE,
    ),
)
register(
    BounceRecord,
    owner=Owner.CUSTOMER,
    category=CONTACT_DATA,
    purpose=_("never mailing an address that bounced or complained again"),
    legal_basis=LegalBasis.LEGITIMATE_INTEREST,
    retention=_("as long as the contact exists; erased with the contact or the account"),
    personal_fields=["kind", "source", "detail", "received_at"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    contact=ContactPart(
        title=_("Bounces and complaints"),
        path="contact",
        columns=(
            Column(_("when"), "received_at"),
            Column(_("what"), "kind"),
            Column(_("reported by"), "source"),
            Column(_("the receiving server's words"), "detail"),
        ),
        order_by=("received_at", "pk"),
        position=66,
        erase=ContactErasure.DELETE,
    ),
)
register(
    TrackingEvent,
    owner=Owner.CUSTOMER,
    category=_("opens and clicks of contacts (application data)"),
    data_class=DataClass.BEHAVIOURAL,
    purpose=_(
        "per-contact campaign reports, for accounts that choose them and contacts "
        "who have not objected"
    ),
    legal_basis=LegalBasis.CONSENT,
    retention=_("TIDINGS_TRACKING_DAYS (default 30 days), then turned into anonymous counts"),
    personal_fields=["kind", "url", "at"],
    erase=Erasure.DELETE,
    account_path="campaign__account",
    exported=False,
    contact=ContactPart(
        title=_("Opens and clicks recorded"),
        path="delivery__contact",
        columns=(
            Column(_("campaign"), "campaign__name"),
            Column(_("what"), "kind"),
            Column(_("link"), "url"),
            Column(_("when"), "at"),
        ),
        order_by=("at", "pk"),
        position=70,
        fold=fold_events,
        erase=ContactErasure.DELETE,
    ),
)
register(
    OutboundMail,
    owner=Owner.CUSTOMER,
    data_subjects=(Owner.CUSTOMER, Owner.CONTACT),
    category=_("communications (addresses and the messages sent to them)"),
    purpose=_(
        "sending each message other than a campaign at most once (transactional "
        "messages, tests, notices, product updates, mail to contacts) and showing its outcome"
    ),
    legal_basis=LegalBasis.CONTRACT,
    retention=_(
        "TIDINGS_OUTBOUND_DAYS (default 30 days); erased at once with the contact, "
        "user or account it was for"
    ),
    personal_fields=["to_email", "subject", "text", "html", "sent_at", "last_error"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    contact=ContactPart(
        title=_("Other mail sent to you"),
        rows=mail_to,
        columns=(
            Column(_("what"), "kind"),
            Column(_("subject"), "subject"),
            Column(_("to"), "to_email"),
            Column(_("status"), "status"),
            Column(_("written"), "created_at"),
            Column(_("sent"), "sent_at"),
        ),
        order_by=("created_at", "pk"),
        position=64,
        erase=ContactErasure.DELETE,
    ),
)
register(
    Relay,
    owner=Owner.CUSTOMER,
    category=_("the customer's relay credentials"),
    purpose=_("sending the customer's mail through the relay they chose"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("until the customer removes the relay or the account is erased"),
    personal_fields=["host", "username", "password"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    description=_("The password is encrypted at rest and never shown again."),
    contact=NOT_CONTACTS,
)
register(
    SendingDomain,
    owner=Owner.CUSTOMER,
    category=_("the customer's DKIM keys"),
    purpose=_("signing the customer's mail so that mailbox providers can trust it"),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("until the customer removes the domain or the account is erased"),
    personal_fields=["private_key"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    contact=NOT_CONTACTS,
)
declare_free_of_personal_data(CampaignStat, "counts per campaign and hour, nobody's identity")
declare_free_of_personal_data(
    LinkClick,
    "clicks per link of a campaign, nobody's identity; a link that held a contact's value "
    "is counted under its site only",
)
declare_free_of_personal_data(
    TrackingStreamMark, "the id of the last open or click written from the stream, nobody's"
)
register(
    SendingSettings,
    owner=Owner.CUSTOMER,
    category=_("identity and contact details"),
    purpose=_(
        "the postal address every campaign must show (CAN-SPAM) and the mailbox "
        "contacts may unsubscribe by mail at"
    ),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_("while the account is open; erased with the account"),
    personal_fields=["postal_address", "unsubscribe_mailto"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=True,
    description=_(
        "The postal address is encrypted at rest and printed in every campaign "
        "footer: the customer publishes it to their contacts."
    ),
    contact=NOT_CONTACTS,
)
declare_free_of_personal_data(ProductUpdate, "the operator's product-update text")


def _old_outbound(now: datetime) -> QuerySet[OutboundMail]:
    """Messages past their period, once they are done (a queued one is still work)."""
    days = int(settings.SENDING["outbound_days"])
    return OutboundMail.objects.filter(created_at__lt=now - timedelta(days=days)).exclude(
        status__in=[OutboundMail.Status.QUEUED, OutboundMail.Status.SENDING]
    )


retention.register(
    "tracking events",
    why=lambda: (
        f"per-contact opens and clicks are kept {settings.SENDING['tracking_days']} "
        "days, then only their anonymous counts remain"
    ),
    expired=tracking.expired_events,
    before_delete=tracking.fold,
)
retention.register(
    "outbound mail",
    why=lambda: f"the ledger of messages sent keeps them {settings.SENDING['outbound_days']} days",
    expired=_old_outbound,
)
