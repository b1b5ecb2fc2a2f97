"""Subscription forms: sign-ups, double opt-in confirmation mails, and the bot brakes.

A sign-up stores its proof of consent at once (text and version, form, time, IP address,
user agent); a double opt-in list waits for the confirmation link, and so does anyone
who had left (unsubscribed, complained, bounced, erased): only a confirmed double
opt-in is a new consent for them, whatever the list's opt-in (P21). What the page says
depends only on the form, never on the address, so a form does not reveal who is on
a list; only the owner of the address sees a difference, in their own mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.audience import links, notices
from tidings.audience.mailability import OPTED_OUT, is_suppressed
from tidings.audience.models import (
    ConsentProof,
    Contact,
    MailingList,
    Subscription,
    SubscriptionForm,
)
from tidings.audience.services import (
    AudienceError,
    confirm_subscriptions,
    normalise_email,
    subscribe,
)
from tidings.core import ratelimit
from tidings.core.mail import Purpose


@dataclass
class SignupOutcome:
    """What happened, for tests and logs; the page shown never depends on it."""

    subscribed: list[MailingList] = field(default_factory=list)
    awaiting_confirmation: list[MailingList] = field(default_factory=list)
    mailed: bool = False


def allow_signup(ip: str | None, lists: list[MailingList]) -> bool:
    """The brakes for one submission: per IP address, then per list, each hour."""
    limits = settings.SIGNUP
    if ip and not ratelimit.allow("signup.ip", ip, limit=limits["per_ip_hour"], seconds=3600):
        return False
    return all(
        ratelimit.allow("signup.list", m.uuid.hex, limit=limits["per_list_hour"], seconds=3600)
        for m in lists
    )


def public_lists(form: SubscriptionForm) -> list[MailingList]:
    return list(form.lists.filter(visibility=MailingList.Visibility.PUBLIC).order_by("name"))


def request_signup(
    form: SubscriptionForm,
    *,
    email: str,
    name: str = "",
    lists: list[MailingList],
    ip: str | None,
    user_agent: str,
    offered: list[MailingList] | None = None,
) -> SignupOutcome:
    """Someone submitted the form: record the consent, subscribe single opt-in lists at
    once, and mail a confirmation link for the rest. Raises InvalidEmail or AudienceError
    (nothing stored) for a bad address or lists that are not on the form. `offered`: the
    form's public lists, when the caller has just read them."""
    address = normalise_email(email)
    offered_ids = {m.pk for m in (public_lists(form) if offered is None else offered)}
    if not lists:
        raise AudienceError(_("Choose at least one list to subscribe to."))
    if any(m.pk not in offered_ids or m.account_id != form.account_id for m in lists):
        raise AudienceError(_("That list is not offered on this form."))
    account = form.account
    outcome = SignupOutcome()
    now = timezone.now()
    with transaction.atomic():
        contact = Contact.objects.select_for_update().filter(account=account, email=address).first()
        if contact is not None and contact.status == Contact.Status.BLOCKLISTED:
            return outcome  # the customer's decision: nothing to do, and nothing to tell
        # Someone who left needs a new, proven consent, whatever the list's opt-in.
        left = is_suppressed(account, address) or (
            contact is not None and contact.status in OPTED_OUT
        )
        left_lists = set()
        if contact is not None:
            left_lists = set(
                Subscription.objects.filter(
                    contact=contact, status=Subscription.Status.UNSUBSCRIBED
                ).values_list("mailing_list_id", flat=True)
            )
        for mailing_list in lists:
            needs_confirmation = (
                left
                or mailing_list.optin == MailingList.OptIn.DOUBLE
                or mailing_list.pk in left_lists
            )
            target = outcome.awaiting_confirmation if needs_confirmation else outcome.subscribed
            target.append(mailing_list)
        created = contact is None
        if contact is None:
            contact = Contact.objects.create(
                account=account,
                email=address,
                name=name.strip()[:200],
                status=(
                    Contact.Status.ACTIVE if outcome.subscribed else Contact.Status.UNCONFIRMED
                ),
                legal_basis=Contact.LegalBasis.CONSENT,
                basis_at=now if outcome.subscribed else None,
                source=Contact.Source.FORM,
            )
        else:
            if outcome.subscribed and contact.status == Contact.Status.UNCONFIRMED:
                contact.status = Contact.Status.ACTIVE
                contact.basis_at = now
            # A pending signup's window starts again with each request (retention).
            contact.updated_at = now
            contact.save(update_fields=["status", "basis_at", "updated_at"])
        if created:
            # A new contact is on no list yet: their subscriptions in one statement.
            Subscription.objects.bulk_create(
                Subscription(
                    contact=contact,
                    mailing_list=mailing_list,
                    status=Subscription.Status.CONFIRMED
                    if mailing_list in outcome.subscribed
                    else Subscription.Status.UNCONFIRMED,
                    confirmed_at=now if mailing_list in outcome.subscribed else None,
                )
                for mailing_list in lists
            )
        else:
            for mailing_list in outcome.subscribed:
                subscribe(contact, mailing_list, confirmed=True)
            for mailing_list in outcome.awaiting_confirmation:
                subscribe(contact, mailing_list, confirmed=False)
        ConsentProof.objects.bulk_create(
            ConsentProof(
                contact=contact,
                mailing_list=mailing_list,
                form=form,
                method=ConsentProof.Method.FORM,
                legal_basis=Contact.LegalBasis.CONSENT,
                consent_text=form.consent_text,
                consent_version=str(form.consent_version),
                ip_address=ip,
                user_agent=user_agent[:500],
                given_at=now,
                double_optin=mailing_list in outcome.awaiting_confirmation,
            )
            for mailing_list in lists
        )
        if outcome.awaiting_confirmation and ratelimit.allow(
            "signup.address",
            f"{account.pk}:{address}",
            limit=settings.SIGNUP["mails_per_address_day"],
            seconds=86400,
        ):
            send_confirmation(form, contact, outcome.awaiting_confirmation)
            outcome.mailed = True
    return outcome


def confirm_signup(token: str) -> links.Opened:
    """The contact followed the link in the confirmation mail (and pressed Confirm)."""
    opened = links.open_confirmation(token)
    if not opened.mailing_lists:
        raise links.InvalidLink(_("These lists no longer exist: there is nothing to confirm."))
    confirm_subscriptions(opened.contact, opened.mailing_lists)
    opened.contact.refresh_from_db()
    return opened


def send_confirmation(form: SubscriptionForm, contact: Contact, lists: list[MailingList]) -> None:
    """The double opt-in mail, with the consent text and the signed link; sent when the
    surrounding transaction commits. A notice: the person has just asked for it, and it
    is how someone who left comes back (never to a hard-bounced address)."""
    notices.mail_contact(
        form.account,
        to=contact.email,
        template="audience/mail/confirm",
        context={
            "contact": contact,
            "lists": lists,
            "form": form,
            "url": links.confirmation_url(contact, lists),
            "days": settings.SIGNUP["confirm_days"],
        },
        purpose=Purpose.NOTICE,
        contact_id=contact.pk,
    )


def send_preference_link(contact: Contact) -> None:
    """A fresh preference link, asked for from an expired one (goes to the contact only).
    Service mail: the contact asked for it, so it reaches the unsubscribed too."""
    if not ratelimit.allow(
        "signup.prefs", f"{contact.account_id}:{contact.email}", limit=3, seconds=86400
    ):
        return
    notices.mail_contact(
        contact.account,
        to=contact.email,
        template="audience/mail/preferences",
        context={"contact": contact, "url": links.preference_url(contact)},
        purpose=Purpose.SERVICE,
        contact_id=contact.pk,
    )
