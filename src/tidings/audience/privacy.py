"""Data map entries for the audience: the customer's contacts (application data, P20),
and the retention of signups that were never confirmed (P12)."""

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet

from tidings.audience.models import (
    AudienceSettings,
    ConsentProof,
    Contact,
    ContactRequest,
    MailingList,
    Segment,
    Subscription,
    SubscriptionForm,
    SuppressedContact,
)
from tidings.privacy import retention
from tidings.privacy.datamap import (
    Erasure,
    LegalBasis,
    Owner,
    declare_free_of_personal_data,
    register,
)

CONTACT_RETENTION = (
    "as long as the customer keeps the contact; erased with the customer's account, or at "
    "once when the contact asks the customer for erasure"
)

register(
    Contact,
    owner=Owner.CUSTOMER,
    category="the customer's contacts (application data)",
    purpose="sending the customer's newsletters and campaigns on their instructions",
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
    exported=False,  # too many for a page: in the "all my data" archive only (P20)
    description="Contacts are the customer's data; Tidings processes them for the customer.",
)
register(
    Subscription,
    owner=Owner.CUSTOMER,
    category="the customer's contacts (application data)",
    purpose="knowing which lists each contact receives",
    legal_basis=LegalBasis.CONTRACT,
    retention=CONTACT_RETENTION,
    personal_fields=["status", "created_at", "confirmed_at", "unsubscribed_at"],
    erase=Erasure.DELETE,
    account_path="contact__account",
    exported=True,
)
register(
    ConsentProof,
    owner=Owner.CUSTOMER,
    category="proof of consent (application data)",
    purpose="proving, for the customer, that each contact agreed to receive mail",
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=CONTACT_RETENTION,
    personal_fields=["ip_address", "user_agent", "given_at", "confirmed_at", "note"],
    erase=Erasure.DELETE,
    account_path="contact__account",
    exported=False,
)
register(
    SuppressedContact,
    owner=Owner.CUSTOMER,
    category="suppression list (keyed hashes only)",
    purpose="never mailing again someone who left or asked to be erased",
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention="erased with the customer's account",
    personal_fields=["digest"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
)
register(
    ContactRequest,
    owner=Owner.CUSTOMER,
    category="contacts' requests about their data (application data)",
    purpose="letting the customer answer their contacts' data-protection requests in time",
    legal_basis=LegalBasis.LEGAL_OBLIGATION,
    retention=(
        "deleted TIDINGS_AUDIT_RETENTION_YEARS after it is closed (the proof that it was "
        "answered), or with the customer's account; the contact's address leaves the "
        "request when the contact is erased"
    ),
    personal_fields=["email", "details", "answer", "received_at"],
    erase=Erasure.DELETE,
    account_path="account",
    exported=False,
)
# The customer's own application data: no one's personal data, but in their archive (P20).
declare_free_of_personal_data(
    MailingList, "a list's name and description, set by the customer", account_path="account"
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
