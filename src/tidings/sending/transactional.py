"""Transactional messages through the API: one template, one recipient, sent at once,
through the same relays as campaigns, never to a suppressed or bounced address."""

from __future__ import annotations

import uuid
from typing import Any

import html2text
from django.db import transaction
from django.utils import timezone

from tidings.accounts.models import Account
from tidings.audience import services as audience
from tidings.audience.models import Contact
from tidings.campaigns.models import Campaign
from tidings.campaigns.rendering import TemplateError, contact_context, render_string
from tidings.sending.message import Skeleton, dkim_sign, domain_of
from tidings.sending.models import SendingDomain, TransactionalMessage
from tidings.sending.transport import Ambiguous, PermanentFailure, TemporaryFailure, transport_for

T = TransactionalMessage.Status

# Contacts in these states asked for, or caused, the end of all mail to them.
REFUSED = {Contact.Status.BOUNCED, Contact.Status.COMPLAINED, Contact.Status.BLOCKLISTED}


class Rejected(ValueError):
    """The message cannot be sent; the text says why (HTTP 422)."""


class UnknownTemplate(LookupError):
    """No template with that id in this account (HTTP 404)."""


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
) -> TransactionalMessage:
    """Render and queue one message; it is sent as soon as the transaction commits."""
    from tidings.sending.tasks import send_transactional

    if not account.is_processing_allowed:
        raise Rejected("This account is closed: nothing is sent.")
    try:
        address = audience.normalise_email(to)
    except audience.InvalidEmail as error:
        raise Rejected(str(error)) from None
    if audience.is_suppressed(account, address):
        raise Rejected(f"{address} is on this account's suppression list: nothing is sent.")
    contact = Contact.objects.filter(account=account, email=address).first()
    if contact is not None and contact.status in REFUSED:
        raise Rejected(f"{address} is {contact.get_status_display()}: nothing is sent.")
    if template is not None:
        source = Campaign.objects.filter(account=account, uuid=template).first()
        if source is None:
            raise UnknownTemplate("No template with that id in this account.")
        subject, body = source.subject, source.body
        from_email = from_email or source.from_email
        from_name = from_name or source.from_name
    if not (subject and body and from_email):
        raise Rejected("Give a template, or a subject, a body and a from_email.")
    try:
        from_email = audience.normalise_email(from_email)
    except audience.InvalidEmail as error:
        raise Rejected(f"from_email: {error}") from None
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
        raise Rejected(f"The template cannot be rendered: {error}") from None
    with transaction.atomic():
        message = TransactionalMessage.objects.create(
            account=account,
            to_email=address,
            from_email=f"{from_name} <{from_email}>" if from_name else from_email,
            subject=rendered_subject[:300],
            html=html,
            text=html2text.html2text(html),
        )
        transaction.on_commit(lambda: send_transactional.delay(message.pk))
    return message


def deliver(message_id: int) -> str:
    """Send a queued transactional message at most once."""
    from tidings.sending.engine import pick_relay

    now = timezone.now()
    claimed = TransactionalMessage.objects.filter(pk=message_id, status=T.QUEUED).update(
        status=T.SENDING, claimed_at=now
    )
    if not claimed:
        return "not queued"
    message = TransactionalMessage.objects.select_related("account").get(pk=message_id)
    account = message.account
    if not account.is_processing_allowed or audience.is_suppressed(account, message.to_email):
        _set(message, status=T.FAILED, last_error="suppressed or account closed")
        return "refused"
    name, _, address = message.from_email.rpartition(" <")
    from_email = address.rstrip(">") if name else message.from_email
    skeleton = Skeleton.make(from_name=name, from_email=from_email)
    mid = skeleton.message_id(f"tx.{message.uuid.hex}")
    _set(message, message_id=mid, attempts=message.attempts + 1)
    data = skeleton.build(
        to=message.to_email,
        subject=message.subject,
        html=message.html,
        text=message.text,
        message_id=mid,
    )
    signing = SendingDomain.objects.filter(account=account, domain=domain_of(from_email)).first()
    if signing is not None:
        data = dkim_sign(
            data, domain=signing.domain, selector=signing.selector, private_key=signing.private_key
        )
    transport = transport_for(pick_relay(account))
    try:
        transport.send(from_email, message.to_email, data)
    except TemporaryFailure as error:
        _set(message, status=T.QUEUED, last_error=str(error)[:500])
        raise OSError(str(error)) from None  # the task retries with backoff
    except PermanentFailure as error:
        _set(message, status=T.FAILED, last_error=str(error)[:500])
        return "failed"
    except Ambiguous as error:
        _set(message, status=T.UNKNOWN, last_error=str(error)[:500])
        return "unknown"
    finally:
        transport.release()
    _set(message, status=T.SENT, sent_at=timezone.now(), last_error="")
    return "sent"


def _set(message: TransactionalMessage, **values: Any) -> None:
    TransactionalMessage.objects.filter(pk=message.pk).update(**values)
    for key, value in values.items():
        setattr(message, key, value)
