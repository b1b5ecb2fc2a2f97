"""Signed links a contact follows without logging in: preferences, unsubscribe, confirm.

The sending engine puts `preference_url(contact)` and `unsubscribe_url(contact, list)` in
every mail (the latter also as the List-Unsubscribe header: a POST to it unsubscribes at
once, RFC 8058). Tokens are signed with Django's signing (HMAC with the secret key) and
carry the contact's uuid, never the address.

A preference link expires after TIDINGS_PREFERENCE_LINK_DAYS (it lets the holder edit
the contact's name and attributes); leaving a list through an authentic link works
however old it is, because an objection to direct marketing must always be possible
(P21). An unsubscribe link older than that still unsubscribes, but no longer leads to
the contact's data: the holder asks for a fresh link, which goes to the contact's own
mailbox. A confirmation link expires with the confirmation window.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from tidings.audience.models import Contact, MailingList
from tidings.core import baseurl
from tidings.core import signing as fast_signing

PREFERENCES = "tidings.audience.preferences"
UNSUBSCRIBE = "tidings.audience.unsubscribe"
CONFIRM = "tidings.audience.confirm"


class InvalidLink(Exception):
    """The link was changed or is not one of ours: nothing may happen."""


@dataclass(frozen=True)
class Opened:
    """What an authentic link says, and whether it is still within its age."""

    contact: Contact
    mailing_lists: list[MailingList]
    expired: bool


def _absolute(path: str) -> str:
    return baseurl.absolute(path)


def preference_token(contact: Contact) -> str:
    return preference_token_for(contact.uuid.hex)


def preference_token_for(contact_uuid: str) -> str:
    return fast_signing.dumps(contact_uuid, salt=PREFERENCES)


def unsubscribe_token(contact: Contact, mailing_list: MailingList | None = None) -> str:
    payload = [contact.uuid.hex, mailing_list.uuid.hex if mailing_list else ""]
    return signing.dumps(payload, salt=UNSUBSCRIBE)


def confirmation_token(contact: Contact, lists: list[MailingList]) -> str:
    payload = [contact.uuid.hex, [m.uuid.hex for m in lists]]
    return signing.dumps(payload, salt=CONFIRM, compress=True)


def preference_url(contact: Contact) -> str:
    """The contact's preference page (leave lists, change details), without login."""
    return preference_url_for(contact.uuid.hex)


@functools.cache
def _preferences_path() -> tuple[str, str]:
    """The preference page's path around its token (the URLconf never changes while a
    process runs; the base URL is a setting, read at each call)."""
    before, _, after = reverse("audience:preferences", args=["TOKEN"]).partition("TOKEN")
    return before, after


def preference_url_for(contact_uuid: str) -> str:
    """`preference_url` from the contact's uuid (hex), as the sending engine has it."""
    before, after = _preferences_path()
    return _absolute(before + preference_token_for(contact_uuid) + after)


def unsubscribe_url(contact: Contact, mailing_list: MailingList | None = None) -> str:
    """Leave `mailing_list` (or everything when None): GET asks, POST leaves at once."""
    token = unsubscribe_token(contact, mailing_list)
    return _absolute(reverse("audience:unsubscribe", args=[token]))


def confirmation_url(contact: Contact, lists: list[MailingList]) -> str:
    token = confirmation_token(contact, lists)
    return _absolute(reverse("audience:confirm", args=[token]))


def _load(token: str, salt: str, max_age_days: int | None) -> tuple[Any, bool]:
    """The payload of an authentic token and whether it has expired."""
    if len(token) > 2000:
        raise InvalidLink(_("This link is not valid."))
    max_age = max_age_days * 86400 if max_age_days else None
    try:
        return signing.loads(token, salt=salt, max_age=max_age), False
    except signing.SignatureExpired:
        return signing.loads(token, salt=salt), True
    except signing.BadSignature:
        raise InvalidLink(_("This link is not valid: it may have been cut or changed.")) from None


def _contact(hex_uuid: Any) -> Contact:
    try:
        key = uuid.UUID(str(hex_uuid))
    except ValueError:
        raise InvalidLink(_("This link is not valid.")) from None
    contact = Contact.objects.select_related("account").filter(uuid=key).first()
    if contact is None:
        # Erased, or a signup that was never confirmed and has been deleted.
        raise InvalidLink(_("We no longer hold this address: there is nothing to change."))
    return contact


def _lists(contact: Contact, hex_uuids: list[Any]) -> list[MailingList]:
    keys = []
    for value in hex_uuids:
        try:
            keys.append(uuid.UUID(str(value)))
        except ValueError:
            raise InvalidLink(_("This link is not valid.")) from None
    return list(MailingList.objects.filter(account_id=contact.account_id, uuid__in=keys))


def open_preferences(token: str) -> Opened:
    payload, expired = _load(token, PREFERENCES, settings.PREFERENCE_LINK_DAYS)
    return Opened(_contact(payload), [], expired)


def open_unsubscribe(token: str) -> Opened:
    """Leaving works at any age (P21); `expired` says whether the link is older than a
    preference link may be, so that it no longer leads to the contact's data."""
    payload, expired = _load(token, UNSUBSCRIBE, settings.PREFERENCE_LINK_DAYS)
    if not (isinstance(payload, list) and len(payload) == 2):
        raise InvalidLink(_("This link is not valid."))
    contact = _contact(payload[0])
    lists = _lists(contact, [payload[1]]) if payload[1] else []
    if payload[1] and not lists:
        raise InvalidLink(_("That list no longer exists: you receive nothing from it."))
    return Opened(contact, lists, expired=expired)


def open_confirmation(token: str) -> Opened:
    payload, expired = _load(token, CONFIRM, settings.SIGNUP["confirm_days"])
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[1], list)):
        raise InvalidLink(_("This link is not valid."))
    if expired:
        raise InvalidLink(
            _(
                "This confirmation link has expired: nothing was subscribed. Sign up again on "
                "the form to get a new one."
            )
        )
    contact = _contact(payload[0])
    return Opened(contact, _lists(contact, payload[1]), expired=False)
