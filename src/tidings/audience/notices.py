"""The mail a customer sends its contacts through Tidings itself: the double opt-in
confirmation, a fresh preference link, answers to the contacts' requests.

Each goes through the one pipeline (core.mail.post), through the account's relay and
signed with its DKIM key, from the address the customer chose in the audience settings,
or else as "<account> via <operator>" from the operator's address; and only to a
contact the mailability rule lets it reach for that purpose (audience.mailability)."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from tidings.accounts.models import Account
from tidings.audience.models import AudienceSettings
from tidings.core import locales
from tidings.core.mail import Kind, OutboundMessage, Purpose, post


def sender_of(account: Account) -> tuple[str, str]:
    """(name, address) the account's mail to its contacts comes from."""
    chosen = (
        AudienceSettings.objects.filter(account=account)
        .values_list("contact_sender", flat=True)
        .first()
    )
    if chosen:
        return account.name, chosen
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return f"{account.name} via {settings.OPERATOR['name']}", address


def mail_contact(
    account: Account,
    *,
    to: str,
    template: str,
    context: dict[str, Any],
    purpose: Purpose,
    contact_id: int | None = None,
    forget: bool = False,
    key: str = "",
) -> str:
    """Post the mail rendered from `<template>_subject.txt` and `<template>.txt`; sent
    when the surrounding transaction commits. A `key` already posted posts nothing new."""
    context = {**context, "account": account, "operator": settings.OPERATOR}
    # In the account's language (My Account), whatever the language of the request.
    with locales.language(account.language):
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        text = render_to_string(f"{template}.txt", context)
    name, address = sender_of(account)
    return post(
        OutboundMessage(
            to=to,
            subject=subject,
            text=text,
            from_email=address,
            from_name=name,
            purpose=purpose,
            kind=Kind.CONTACT,
            account_id=account.pk,
            contact_id=contact_id,
            forget=forget,
            key=key,
        )
    )
