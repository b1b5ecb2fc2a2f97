"""Restriction of processing for a contact (GDPR art. 18, P18): the customer keeps the
contact's data and does nothing else with it.

While a contact is restricted, the one mailability rule sends them nothing but legal
notices (audience.mailability), no segment holds them (audience.segments), and no
automation or export to a third party may take them. The customer restricts a contact
on the contact's request (a "restriction" request from the preference page, fulfilled
in the request inbox) or of their own accord, with a reason. Lifting is announced to
the contact first (art. 18(3)): the notice goes at once and the restriction ends
TIDINGS_RESTRICTION_NOTICE_DAYS later (beat: `lift_due_restrictions`); until then the
customer can take the lift back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.audience import notices
from tidings.audience.models import Contact
from tidings.audience.services import AudienceError
from tidings.core.mail import Purpose

MAX_REASON = 500


def restrict(contact: Contact, *, reason: str) -> Contact:
    """Restrict processing of the contact's data from now on; the contact is told."""
    reason = " ".join(reason.split())
    if not reason:
        raise AudienceError(
            _("Say why processing is restricted (the contact asked, a dispute...).")
        )
    if len(reason) > MAX_REASON:
        raise AudienceError(
            _("Say it in at most %(MAX_REASON)s characters.") % {"MAX_REASON": MAX_REASON}
        )
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        already = locked.restricted_at is not None and locked.restriction_lifts_at is None
        locked.restricted_at = locked.restricted_at or timezone.now()
        locked.restriction_reason, locked.restriction_lifts_at = reason, None
        locked.updated_at = timezone.now()
        locked.save(
            update_fields=[
                "restricted_at", "restriction_reason", "restriction_lifts_at", "updated_at",
            ]
        )  # fmt: skip
        if not already:
            _tell(locked, "audience/mail/restricted")
    return locked


def announce_lift(contact: Contact) -> Contact:
    """The customer means to lift the restriction: the contact is told now, and it ends
    after the notice period."""
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if locked.restricted_at is None:
            raise AudienceError(_("Processing of this contact is not restricted."))
        if locked.restriction_lifts_at is not None:
            return locked
        locked.restriction_lifts_at = timezone.now() + timedelta(days=notice_days())
        locked.save(update_fields=["restriction_lifts_at"])
        _tell(locked, "audience/mail/restriction_lifts")
    return locked


def keep(contact: Contact) -> Contact:
    """Take back an announced lift: the restriction stays."""
    Contact.objects.filter(pk=contact.pk, restricted_at__isnull=False).update(
        restriction_lifts_at=None
    )
    contact.refresh_from_db()
    return contact


def lift_due_restrictions(now: datetime | None = None) -> int:
    """Beat, hourly: contacts whose announced end of restriction has come. Returns how
    many were lifted."""
    return Contact.objects.filter(
        restricted_at__isnull=False, restriction_lifts_at__lte=now or timezone.now()
    ).update(restricted_at=None, restriction_reason="", restriction_lifts_at=None)


def notice_days() -> int:
    return int(settings.RESTRICTION_NOTICE_DAYS)


def _tell(contact: Contact, template: str) -> None:
    """A legal notice: it reaches a restricted contact (only a hard bounce stops it)."""
    notices.mail_contact(
        contact.account,
        to=contact.email,
        template=template,
        context={"contact": contact, "days": notice_days()},
        purpose=Purpose.NOTICE,
        contact_id=contact.pk,
    )
