"""Transactional messages through the API: one template, one recipient, sent at once
through the one pipeline (the account's relay, its DKIM key, its limits), only to an
address that may get service mail (`audience.mailability`)."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience import mailability
from tidings.audience import services as audience
from tidings.audience.models import Contact
from tidings.campaigns import content
from tidings.campaigns.models import Campaign
from tidings.campaigns.rendering import TemplateError, contact_context, render_string
from tidings.core.mail import Kind, OutboundMessage, Purpose, post
from tidings.sending.models import OutboundMail


class Rejected(ValueError):
    """The message cannot be sent; the text says why (HTTP 422)."""


class UnknownTemplate(LookupError):
    """No template with that id in this account (HTTP 404)."""


def _refusal(account: Account, address: str) -> str | None:
    """Why the address may not get service mail from this account now, if it may not."""
    facts = mailability.facts_for(account, address)
    if mailability.allows(Purpose.SERVICE, facts):
        return None
    if facts.account_status != Account.Status.ACTIVE:
        return "This account is closed: nothing is sent."
    if facts.account_restricted:
        return "Processing is restricted for this account: nothing is sent."
    if facts.contact_restricted:
        return f"Processing of {address} is restricted: nothing is sent."
    if facts.contact_status is not None and facts.contact_status in mailability.NO_SERVICE:
        label = Contact.Status(facts.contact_status).label
        return f"{address} is {label}: nothing is sent."
    return f"{address} is on this account's suppression list: nothing is sent."


def create(
    account: Account,
    *,
    to: str,
    template: uuid.UUID | None = None,
    subject: str = "",
    body: str = "",
    from_email: str = "",
    from_name: str = "",
    data: dict[str, Any] | None = None,
) -> OutboundMail:
    """Render and post one message; it is sent as soon as the transaction commits."""
    try:
        address = audience.normalise_email(to)
    except audience.InvalidEmail as error:
        raise Rejected(str(error)) from None
    refusal = _refusal(account, address)
    if refusal:
        raise Rejected(refusal)
    if template is not None:
        source = Campaign.objects.filter(account=account, uuid=template).first()
        if source is None:
            raise UnknownTemplate("No template with that id in this account.")
        subject, body = source.subject, source.body
        from_email = from_email or source.from_email
        from_name = from_name or source.from_name
    if not (subject and body and from_email):
        raise Rejected(_("Give a template, or a subject, a body and a from_email."))
    try:
        from_email = audience.normalise_email(from_email)
    except audience.InvalidEmail as error:
        raise Rejected(_("from_email: %(error)s") % {"error": error}) from None
    contact = Contact.objects.filter(account=account, email=address).first()
    person = (
        contact_context(contact)
        if contact
        else {"email": address, "name": "", "first_name": "", "attributes": {}}
    )
    context = {"contact": person, "data": dict(data or {})}
    try:
        rendered_subject = " ".join(render_string(subject, context, html=False).split())
        html = render_string(body, context, html=True)
    except TemplateError as error:
        raise Rejected(_("The template cannot be rendered: %(error)s") % {"error": error}) from None
    public_id = post(
        OutboundMessage(
            to=address,
            subject=rendered_subject[:300],
            text=content.html_to_text(html),
            html=html,
            from_email=from_email,
            from_name=from_name,
            purpose=Purpose.SERVICE,
            kind=Kind.TRANSACTIONAL,
            account_id=account.pk,
            contact_id=contact.pk if contact else None,
        )
    )
    return OutboundMail.objects.get(uuid=public_id)
