"""Data map entries for the audience: the customer's contacts (application data, P20),
and the retention of signups that were never confirmed (P12)."""

import json
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tidings.audience.models import (
    AudienceSettings,
    ConsentProof,
    Contact,
    ContactAttribute,
    ContactChange,
    ContactRequest,
    ListGrowth,
    MailingList,
    Segment,
    Subscription,
    SubscriptionForm,
    SuppressedContact,
)
from tidings.audience.selectors import consent_proofs_of, shared_proofs_left_by
from tidings.audience.services import ERASED_ANSWER
from tidings.core import retention
from tidings.core.datamap import (
    Column,
    ContactErasure,
    ContactPart,
    Contacts,
    Erasure,
    LegalBasis,
    Owner,
    Section,
    declare_free_of_personal_data,
    register,
)
from tidings.core.digests import email_digest
from tidings.privacy.contacts import when

CONTACT_RETENTION = _(
    "as long as the customer keeps the contact; erased with the customer's account, or at "
    "once when the contact asks the customer for erasure"
)

# --- the contact's side: how their rows are shown to them and erased -----------------

# What stays of an answer the customer mailed before the contact was erased.
ANSWER_ERASED = "(the answer was erased with the contact)"


def _yes_no(value: bool) -> str:
    return gettext("yes") if value else gettext("no")


def _present_contact(rows: QuerySet[Contact]) -> list[Section]:
    """The contact's own row as three sections: details, attributes, tags."""
    details = Section(gettext("Your details"), [gettext("field"), gettext("value")])
    attributes = Section(gettext("Attributes"), [gettext("attribute"), gettext("value")])
    tags = Section(gettext("Tags"), [gettext("tag")])
    for contact in rows:
        for label, value in (
            (gettext("email"), contact.email),
            (gettext("name"), contact.name),
            (gettext("status"), str(Contact.Status(contact.status).label)),
            (gettext("legal basis"), str(Contact.LegalBasis(contact.legal_basis).label)),
            (gettext("basis since"), when(contact.basis_at)),
            (gettext("how you were added"), str(Contact.Source(contact.source).label)),
            (gettext("added"), when(contact.created_at)),
            (gettext("last changed"), when(contact.updated_at)),
            (
                gettext("opens and clicks may be recorded"),
                gettext("yes") if contact.allow_tracking else gettext("no"),
            ),
            (
                gettext("reading habits may choose what you get"),
                gettext("yes") if contact.allow_profiling else gettext("no"),
            ),
            (gettext("processing restricted since"), when(contact.restricted_at)),
            (gettext("restriction ends"), when(contact.restriction_lifts_at)),
        ):
            details.rows.append([label, value])
        for key, value in sorted((contact.attributes or {}).items()):
            # Values stored before the attribute rule was kept everywhere may be lists or
            # objects: shown as JSON text, so every reader (page, CSV, XLSX) can show them.
            shown = value if isinstance(value, str | int | float) else json.dumps(value)
            attributes.rows.append([key, json.dumps(value) if isinstance(value, bool) else shown])
        tags.rows.extend([t] for t in contact.tags or [])
    return [details, attributes, tags]


def _suppress(rows: QuerySet[Contact], contacts: Contacts) -> None:
    """What erasing leaves of a contact: the keyed hash of the address on the account's
    suppression list, so that no import or signup brings them back without a new
    consent (a reason already there, a bounce, stays)."""
    SuppressedContact.objects.bulk_create(
        [
            SuppressedContact(
                account_id=contacts.account_id,
                digest=email_digest(email),
                reason=SuppressedContact.Reason.ERASED,
            )
            for email in rows.values_list("email", flat=True)
        ],
        ignore_conflicts=True,
    )


def _close_requests(rows: QuerySet[ContactRequest], contacts: Contacts) -> None:
    """The contacts are being erased: answers already mailed to them leave the request;
    their open erasure requests are fulfilled, their other open requests closed (nothing
    is left to give or correct). The request stays as the record that it was answered."""
    now = timezone.now()
    rows.exclude(status=ContactRequest.Status.OPEN).update(answer=ANSWER_ERASED)
    rows.filter(status=ContactRequest.Status.OPEN, kind=ContactRequest.Kind.ERASURE).update(
        status=ContactRequest.Status.FULFILLED, answer=ERASED_ANSWER, closed_at=now
    )
    rows.filter(status=ContactRequest.Status.OPEN).update(
        status=ContactRequest.Status.ANSWERED, answer=f"Closed: {ERASED_ANSWER}", closed_at=now
    )


def _suppressed(contacts: Contacts) -> QuerySet[SuppressedContact]:
    return SuppressedContact.objects.filter(
        account_id=contacts.account_id, digest__in=contacts.digests
    )


def _reason(row: Any) -> str:
    return str(SuppressedContact.Reason(row.reason).label)


register(
    Contact,
    owner=Owner.CUSTOMER,
    category=_("the customer's contacts (application data)"),
    purpose=_("sending the customer's newsletters and campaigns on their instructions"),
    legal_basis=LegalBasis.CONTRACT,
    retention=CONTACT_RETENTION,
    personal_fields=[
        "email",
        "name",
        "attributes",
        "tags",
        "status",
        "basis_at",
        "restricted_at",
        "restriction_reason",
    ],
    erase=Erasure.DELETE,
    account_path="account",
    dated_by="created_at",
    # A contact's country, where the customer keeps one as the attribute "country".
    country="attributes__country",
    exported=False,  # too many for a page: in the "all my data" archive only (P20)
    description=_("Contacts are the customer's data; Tidings processes them for the customer."),
    contact=ContactPart(
        title=_("Your details"),
        path="",
        present=_present_contact,
        position=10,
        erase=ContactErasure.DELETE,
        fold=_suppress,
    ),
)
register(
    Subscription,
    owner=Owner.CUSTOMER,
    category=_("the customer's contacts (application data)"),
    purpose=_("knowing which lists each contact receives"),
    legal_basis=LegalBasis.CONTRACT,
    retention=CONTACT_RETENTION,
    personal_fields=["status", "created_at", "confirmed_at", "unsubscribed_at"],
    erase=Erasure.DELETE,
    account_path="contact__account",
    dated_by="created_at",
    exported=True,
    contact=ContactPart(
        title=_("Subscriptions"),
        path="contact",
        columns=(
            Column(_("list"), "mailing_list__name"),
            Column(_("status"), "status"),
            Column(_("since"), "created_at"),
            Column(_("confirmed"), "confirmed_at"),
            Column(_("left"), "unsubscribed_at"),
        ),
        order_by=("mailing_list__name",),
        position=40,
        erase=ContactErasure.DELETE,
    ),
)


def _proofs(contacts: Contacts) -> QuerySet[ConsentProof]:
    return consent_proofs_of(contacts.ids)


def _proofs_erased(contacts: Contacts) -> QuerySet[ConsentProof]:
    """The contacts' own proofs, and the shared ones (an import's) that no other
    contact's subscription rests on."""
    own = ConsentProof.objects.filter(contact_id__in=contacts.ids).values("pk")
    left = shared_proofs_left_by(contacts.ids).values("pk")
    return ConsentProof.objects.filter(Q(pk__in=own) | Q(pk__in=left))


register(
    ConsentProof,
    owner=Owner.CUSTOMER,
    category=_("proof of consent (application data)"),
    purpose=_("proving, for the customer, that each contact agreed to receive mail"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=CONTACT_RETENTION,
    personal_fields=["ip_address", "user_agent", "given_at", "confirmed_at", "note"],
    erase=Erasure.DELETE,
    # Shared proofs have no contact: every proof names its account.
    account_path="account",
    exported=False,
    contact=ContactPart(
        title=_("Proofs of consent"),
        # An import's proof is shared by the subscriptions it wrote: it is in each of
        # those contacts' data, and goes with the last of them.
        rows=_proofs,
        erase_rows=_proofs_erased,
        columns=(
            Column(_("given"), "given_at"),
            Column(_("confirmed"), "confirmed_at"),
            Column(_("how"), "method"),
            Column(_("legal basis"), "legal_basis"),
            Column(_("list"), "mailing_list__name"),
            Column(_("text agreed to"), "consent_text"),
            Column(_("version"), "consent_version"),
            Column(_("IP address"), "ip_address"),
            Column(_("browser"), "user_agent"),
            Column(_("stated"), "stated_at"),
            Column(_("file"), "source"),
            Column(_("file's SHA-256"), "file_digest"),
            Column(_("note"), "note"),
        ),
        order_by=("given_at", "pk"),
        position=50,
        erase=ContactErasure.DELETE,
    ),
)
register(
    SuppressedContact,
    owner=Owner.CUSTOMER,
    category=_("suppression list (keyed hashes only)"),
    purpose=_("never mailing again someone who left or asked to be erased"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_("erased with the customer's account"),
    personal_fields=["digest"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    # What erasing a contact leaves, on purpose: a keyed hash cannot be read back.
    contact=ContactPart(
        title=_("Suppression list (a keyed hash of your address, never the address)"),
        rows=_suppressed,
        columns=(Column(_("why"), _reason), Column(_("since"), "created_at")),
        position=90,
        erase=ContactErasure.KEEP,
    ),
)
register(
    ContactRequest,
    owner=Owner.CUSTOMER,
    category=_("contacts' requests about their data (application data)"),
    purpose=_("letting the customer answer their contacts' data-protection requests in time"),
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=_(
        "deleted TIDINGS_AUDIT_RETENTION_YEARS after it is closed (the proof that it was "
        "answered), or with the customer's account; the contact's address leaves the "
        "request when the contact is erased"
    ),
    personal_fields=["email", "details", "answer", "received_at"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
    contact=ContactPart(
        title=_("Your requests"),
        path="contact",
        columns=(
            Column(_("received"), "received_at"),
            Column(_("about"), "kind"),
            Column(_("status"), "status"),
            Column(_("due"), "due_at"),
            Column(_("answer"), "answer"),
        ),
        order_by=("received_at", "pk"),
        position=80,
        fold=_close_requests,
        erase=ContactErasure.ANONYMISE,
        anonymise_with={"email": "", "details": "", "contact": None},
    ),
)


def _changed_fields(row: Any) -> str:
    return ", ".join(row.fields)


register(
    ContactChange,
    owner=Owner.CUSTOMER,
    category=_("the customer's contacts (application data)"),
    purpose=_(
        "telling the customer's own systems which fields of a contact changed, as they asked "
        "(outgoing webhooks)"
    ),
    legal_basis=LegalBasis.CONTRACT,
    retention=_("30 days, then deleted; erased with the contact"),
    personal_fields=["fields", "at"],
    erase=Erasure.DELETE,
    account_path="account",
    contact=ContactPart(
        title=_("Changes to your profile (the fields' names, not their values)"),
        path="contact",
        columns=(Column(_("changed"), _changed_fields), Column(_("when"), "at")),
        order_by=("at", "pk"),
        position=45,
        erase=ContactErasure.DELETE,
    ),
)


# The customer's own application data: no one's personal data, but in their archive (P20).
# (declare_free_of_personal_data: no contact's data either.)
declare_free_of_personal_data(
    MailingList, "a list's name and description, set by the customer", account_path="account"
)
declare_free_of_personal_data(
    ListGrowth,
    "subscriptions confirmed and left per list and day: counts, nobody's identity",
    account_path="mailing_list__account",
)
declare_free_of_personal_data(Segment, "filter rules set by the customer", account_path="account")
declare_free_of_personal_data(
    SubscriptionForm, "a form's settings and consent text", account_path="account"
)
declare_free_of_personal_data(
    SubscriptionForm.lists.through,
    "which lists a form subscribes to",
    account_path="subscriptionform__account",
)
declare_free_of_personal_data(
    ContactAttribute,
    "attribute names and their types (text, number, date, yes/no), declared by the customer",
    account_path="account",
)
declare_free_of_personal_data(
    AudienceSettings,
    "which attribute names contacts may edit, set by the customer",
    account_path="account",
)


# A double opt-in that is never confirmed proves nothing: what it stored goes when the
# confirmation window (TIDINGS_SIGNUP_CONFIRM_DAYS) ends.
def _cutoff(now: datetime) -> datetime:
    return now - timedelta(days=settings.SIGNUP["confirm_days"])


def _why() -> str:
    return (
        "a subscription that the person did not confirm from the mail is deleted after "
        f"{settings.SIGNUP['confirm_days']} days"
    )


def _unconfirmed_contacts(now: datetime) -> QuerySet[Contact]:
    return Contact.objects.filter(status=Contact.Status.UNCONFIRMED, updated_at__lt=_cutoff(now))


def _unconfirmed_subscriptions(now: datetime) -> QuerySet[Subscription]:
    waiting = ConsentProof.objects.filter(
        contact=OuterRef("contact"),
        mailing_list=OuterRef("mailing_list"),
        double_optin=True,
        confirmed_at__isnull=True,
        given_at__gte=_cutoff(now),
    )
    return Subscription.objects.filter(
        status=Subscription.Status.UNCONFIRMED, created_at__lt=_cutoff(now)
    ).exclude(Exists(waiting))


def _unconfirmed_proofs(now: datetime) -> QuerySet[ConsentProof]:
    return ConsentProof.objects.filter(
        double_optin=True, confirmed_at__isnull=True, given_at__lt=_cutoff(now)
    )


retention.register("unconfirmed signups: contacts", why=_why, expired=_unconfirmed_contacts)
retention.register(
    "unconfirmed signups: subscriptions", why=_why, expired=_unconfirmed_subscriptions
)
retention.register("unconfirmed signups: proofs of consent", why=_why, expired=_unconfirmed_proofs)


# A closed request is the customer's proof that it was answered in time; it goes when
# that proof is no longer needed (the period of the privacy office's own requests).
def _closed_requests(now: datetime) -> QuerySet[ContactRequest]:
    cutoff = now - relativedelta(years=settings.RETENTION["audit_years"])
    return ContactRequest.objects.exclude(status=ContactRequest.Status.OPEN).filter(
        closed_at__lt=cutoff
    )


retention.register(
    "contacts' requests, closed",
    why=lambda: (
        "a contact's request to a customer is kept as proof of the answer for "
        f"{settings.RETENTION['audit_years']} years after it is closed"
    ),
    expired=_closed_requests,
)


# Which fields of a profile changed is kept long enough for a webhook endpoint that was
# off a while to be told (a restricted account's endpoints wait for the lift), no longer.
CHANGE_DAYS = 30


def _old_changes(now: datetime) -> QuerySet[ContactChange]:
    return ContactChange.objects.filter(at__lt=now - timedelta(days=CHANGE_DAYS))


retention.register(
    "contacts' profile changes",
    why=lambda: f"which fields of a contact changed is kept {CHANGE_DAYS} days",
    expired=_old_changes,
)
