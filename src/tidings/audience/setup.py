"""What a customer sets up once for their audience: the sender of the mail to their
contacts, and the attributes contacts may edit on their preference page."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience.lookups import ATTRIBUTE_KEY
from tidings.audience.models import (
    AudienceSettings,
)
from tidings.audience.services import AudienceError, normalise_email


def set_contact_sender(account: Account, address: str) -> str:
    """The address the account's mail to its contacts comes from (confirmations,
    answers to requests); empty: "<account> via <operator>" at the operator's address.
    Sign it with the account's DKIM key for that domain (Sending settings)."""
    address = normalise_email(address) if address.strip() else ""
    AudienceSettings.objects.update_or_create(account=account, defaults={"contact_sender": address})
    return address


def set_editable_attributes(account: Account, keys: Iterable[str]) -> list[str]:
    """The attribute keys contacts may change on their preference page."""
    cleaned = sorted({k.strip() for k in keys if k.strip()})
    for key in cleaned:
        if not ATTRIBUTE_KEY.match(key) or "__" in key:
            raise AudienceError(_("“%(key)s” is not an attribute name.") % {"key": key[:70]})
    AudienceSettings.objects.update_or_create(
        account=account, defaults={"editable_attributes": cleaned}
    )
    return cleaned
