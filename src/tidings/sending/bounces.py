"""Bounces and complaints, whether the relay refused at once (5xx), a DSN arrived in the
bounce mailbox, or a provider's webhook said so.

A hard bounce or a complaint stops all mail to the contact at once: status bounced or
complained, and the address goes on the account's suppression list. Soft bounces are
counted; at TIDINGS_SOFT_BOUNCE_LIMIT in a row they count as a hard bounce.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import imaplib
import logging
import math
import poplib
import re
import time
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from flufl.bounce import all_failures

from tidings.audience import services as audience
from tidings.audience.models import Contact, SuppressedContact
from tidings.campaigns.models import Campaign
from tidings.sending.models import BounceRecord, Delivery
from tidings.sending.tracking import count

log = logging.getLogger(__name__)

# Messages read from the bounce mailbox per run: bounded work, the rest next minute.
MAILBOX_BATCH = 200


def _record(
    contact: Contact, kind: str, *, campaign: Campaign | None, source: str, detail: str
) -> None:
    BounceRecord.objects.create(
        account_id=contact.account_id,
        contact=contact,
        campaign=campaign,
        kind=kind,
        source=source,
        detail=detail[:500],
    )


def hard_bounce(
    contact: Contact, *, campaign: Campaign | None = None, source: str, detail: str = ""
) -> None:
    """The address does not exist (or refuses us for good): never mail it again."""
    with transaction.atomic():
        _record(contact, BounceRecord.Kind.HARD, campaign=campaign, source=source, detail=detail)
        if contact.status == Contact.Status.ACTIVE:
            audience.set_status(contact, Contact.Status.BOUNCED)
        audience.suppress(contact.account, contact.email, SuppressedContact.Reason.BOUNCED)
        if campaign is not None:
            count(campaign.pk, "bounce")


def soft_bounce(
    contact: Contact, *, campaign: Campaign | None = None, source: str, detail: str = ""
) -> None:
    """A temporary refusal reported after the fact (mailbox full): counted; too many in a
    row make it a hard bounce."""
    with transaction.atomic():
        _record(contact, BounceRecord.Kind.SOFT, campaign=campaign, source=source, detail=detail)
        Contact.objects.filter(pk=contact.pk).update(soft_bounces=F("soft_bounces") + 1)
        contact.refresh_from_db(fields=["soft_bounces", "status"])
        if contact.soft_bounces >= settings.SENDING["soft_bounce_limit"]:
            hard_bounce(
                contact,
                campaign=campaign,
                source=source,
                detail=f"{contact.soft_bounces} soft bounces in a row",
            )


def complaint(
    contact: Contact, *, campaign: Campaign | None = None, source: str, detail: str = ""
) -> None:
    """The contact marked a message as spam: they get nothing more from this account."""
    with transaction.atomic():
        _record(
            contact, BounceRecord.Kind.COMPLAINT, campaign=campaign, source=source, detail=detail
        )
        if contact.status in (Contact.Status.ACTIVE, Contact.Status.UNSUBSCRIBED):
            audience.set_status(contact, Contact.Status.COMPLAINED)
        audience.unsubscribe(contact)
        audience.suppress(contact.account, contact.email, SuppressedContact.Reason.COMPLAINED)
        if campaign is not None:
            count(campaign.pk, "complaint")


def delivered(delivery: Delivery) -> None:
    """A delivery confirmed by the provider resets the contact's soft-bounce count."""
    Contact.objects.filter(pk=delivery.contact_id).update(soft_bounces=0)
    count(delivery.campaign_id, "delivered")


# DSNs in the bounce mailbox ------------------------------------------------------------------

_MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass
class DSN:
    message_id: str
    permanent: set[str]
    temporary: set[str]


def parse_dsn(raw: bytes) -> DSN | None:
    """The failed recipients of a bounce message (flufl.bounce), and the Message-ID of
    the message that bounced (from its returned headers). None if it is no bounce."""
    msg = email.message_from_bytes(raw)
    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return None
    return DSN(
        message_id=_original_message_id(msg),
        permanent={_text(a) for a in permanent},
        temporary={_text(a) for a in temporary},
    )


def _text(address: Any) -> str:
    value = address.decode(errors="replace") if isinstance(address, bytes) else str(address)
    return value.strip().strip("<>").lower()


def _original_message_id(msg: Message) -> str:
    """The Message-ID of the returned message: in its message/rfc822 or
    text/rfc822-headers part, never the DSN's own."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message) and inner["Message-ID"]:
                return str(inner["Message-ID"]).strip()
        if ctype in ("text/rfc822-headers", "text/plain") and part is not msg:
            found = _MESSAGE_ID.search(_decoded(part))
            if found and ctype == "text/rfc822-headers":
                return found.group(1)
    # Some MTAs quote the original headers in the plain text body.
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            for found in _MESSAGE_ID.finditer(_decoded(part)):
                if found.group(1) != str(msg["Message-ID"] or "").strip():
                    return found.group(1)
    return ""


def _decoded(part: Message) -> str:
    body = part.get_payload(decode=True)
    return body.decode(errors="replace") if isinstance(body, bytes) else ""


def handle_dsn(raw: bytes) -> str:
    """Apply one bounce message. The delivery is found by the returned Message-ID, and
    the failed address must be that delivery's contact: a DSN never reaches across
    accounts or contacts. Returns what was done, for the log."""
    dsn = parse_dsn(raw)
    if dsn is None:
        return "not a bounce"
    delivery = (
        Delivery.objects.select_related("contact", "campaign")
        .filter(message_id=dsn.message_id)
        .first()
        if dsn.message_id
        else None
    )
    if delivery is None:
        return "no delivery with that Message-ID"
    contact = delivery.contact
    if contact.email in dsn.permanent:
        with transaction.atomic():
            Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.BOUNCED)
            hard_bounce(contact, campaign=delivery.campaign, source="dsn", detail="permanent (DSN)")
        return "hard bounce"
    if contact.email in dsn.temporary:
        soft_bounce(contact, campaign=delivery.campaign, source="dsn", detail="temporary (DSN)")
        return "soft bounce"
    return "the failed address is not the delivery's contact"


def read_bounce_mailbox(url: str | None = None) -> int:
    """Fetch, apply and delete the messages of the bounce mailbox (POP3 or IMAP); returns
    how many were handled. A message is deleted only after it was applied."""
    url = url if url is not None else str(settings.SENDING["bounce_mailbox"])
    if not url:
        return 0
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    host = parts.hostname or "127.0.0.1"
    if parts.scheme in ("pop3", "pop3s"):
        return _read_pop3(parts.scheme, host, parts.port, user, password)
    if parts.scheme in ("imap", "imaps"):
        return _read_imap(parts.scheme, host, parts.port, user, password)
    raise ValueError(f"TIDINGS_BOUNCE_MAILBOX: unknown scheme {parts.scheme!r}")


def _read_pop3(scheme: str, host: str, port: int | None, user: str, password: str) -> int:
    pop: poplib.POP3
    if scheme == "pop3s":
        pop = poplib.POP3_SSL(host, port or 995, timeout=30)
    else:
        pop = poplib.POP3(host, port or 110, timeout=30)
    handled = 0
    try:
        pop.user(user)
        pop.pass_(password)
        count, _ = pop.stat()
        for number in range(1, min(count, MAILBOX_BATCH) + 1):
            _, lines, _ = pop.retr(number)
            outcome = handle_dsn(b"\r\n".join(lines))
            log.info("bounce mailbox message %s: %s", number, outcome)
            pop.dele(number)
            handled += 1
    finally:
        pop.quit()
    return handled


def _read_imap(scheme: str, host: str, port: int | None, user: str, password: str) -> int:
    imap: imaplib.IMAP4
    if scheme == "imaps":
        imap = imaplib.IMAP4_SSL(host, port or 993)
    else:
        imap = imaplib.IMAP4(host, port or 143)
    handled = 0
    try:
        imap.login(user, password)
        imap.select("INBOX")
        _, data = imap.search(None, "ALL")
        for number in (data[0] or b"").decode().split()[:MAILBOX_BATCH]:
            _, fetched = imap.fetch(number, "(RFC822)")
            first = fetched[0]
            raw = first[1] if isinstance(first, tuple) else b""
            log.info("bounce mailbox message %s: %s", number, handle_dsn(raw))
            imap.store(number, "+FLAGS", "\\Deleted")
            handled += 1
        imap.expunge()
    finally:
        imap.logout()
    return handled


# Provider webhooks (django-anymail) ----------------------------------------------------------

# A signed webhook (Mailgun's) is accepted only this close to its signing time, and each
# of its one-time tokens only once: a captured request cannot be replayed later.
WEBHOOK_MAX_AGE = 300
WEBHOOK_CLOCK_SKEW = 60


def fresh_webhook_signature(provider: str, timestamp: str, token: str) -> str:
    """Why a verified webhook signature must still be refused ("" when it may pass): it
    was made more than WEBHOOK_MAX_AGE seconds ago or in the future (beyond the clocks'
    skew), or its token was seen before. Tokens are remembered in the cache (Redis in
    production, shared by every web process) for as long as their timestamp is good."""
    try:
        signed_at = float(timestamp)
    except (TypeError, ValueError):
        return "no signing time"
    now = time.time()
    if not math.isfinite(signed_at) or signed_at < now - WEBHOOK_MAX_AGE:
        return "signed too long ago"
    if signed_at > now + WEBHOOK_CLOCK_SKEW:
        return "signed in the future"
    if not token or len(token) > 200:
        return "no token"
    key = f"webhook-token:{provider}:{hashlib.sha256(token.encode()).hexdigest()}"
    if not cache.add(key, 1, timeout=WEBHOOK_MAX_AGE + WEBHOOK_CLOCK_SKEW):
        return "token used before"
    return ""


def delivery_from_metadata(metadata: dict[str, Any], recipient: str | None) -> Delivery | None:
    """The delivery a verified webhook event is about: named by the metadata header we
    set, and only if the event's recipient is that delivery's contact."""
    ref = str((metadata or {}).get("tidings", ""))
    if not (ref.startswith("d") and ref[1:].isdigit()):
        return None
    delivery = (
        Delivery.objects.select_related("contact", "campaign").filter(pk=int(ref[1:])).first()
    )
    if delivery is None or not recipient:
        return None
    try:
        address = audience.normalise_email(recipient)
    except audience.InvalidEmail:
        return None
    return delivery if delivery.contact.email == address else None


def handle_tracking_event(event: Any) -> str:
    """Apply an anymail tracking event (already verified by anymail's webhook view)."""
    delivery = delivery_from_metadata(event.metadata, event.recipient)
    if delivery is None:
        return "not one of ours"
    contact, campaign = delivery.contact, delivery.campaign
    kind = event.event_type
    detail = str(event.mta_response or event.description or "")[:500]
    if kind == "bounced":
        if event.esp_event and str(event.esp_event.get("Type", "")) == "SoftBounce":
            soft_bounce(contact, campaign=campaign, source="webhook", detail=detail)
            return "soft bounce"
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.BOUNCED)
        hard_bounce(contact, campaign=campaign, source="webhook", detail=detail)
        return "hard bounce"
    if kind == "complained":
        complaint(contact, campaign=campaign, source="webhook", detail=detail)
        return "complaint"
    if kind == "deferred":
        return "deferred (the provider retries)"
    if kind == "delivered":
        delivered(delivery)
        return "delivered"
    if kind == "unsubscribed":
        audience.unsubscribe(contact)
        return "unsubscribed"
    return f"ignored {kind}"
