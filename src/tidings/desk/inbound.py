"""Mail to the support address, from any way it arrives (the SMTP listener, the IMAP
mailbox desk.imap polls, providers' webhooks): one parser, one router.

Replies find their conversation by Message-ID/In-Reply-To/References, never by subject;
the quoted history is cut off with mail-parser-reply; automatic mail (RFC 3834
Auto-Submitted, delivery reports, Precedence bulk/junk/list, auto-replies) is kept on a
conversation it answers but never acknowledged and never reopens it, and starts none.
Each message gets a verdict on its sender (desk.authentication): only verified mail is
tied to a customer's account or continues a verified conversation.
"""

from __future__ import annotations

import email
import email.policy
import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any

from django.conf import settings
from django.db import transaction
from inscriptis import get_text
from mailparser_reply import EmailReplyParser

from tidings.core import addresses
from tidings.desk import attachments, authentication, services
from tidings.desk.models import Channel, Conversation, Message, Queue

log = logging.getLogger(__name__)

REPLY_LANGUAGES = ["en", "fr", "de", "es", "it", "nl"]


class Malformed(ValueError):
    """A message that cannot be read as mail (no sender, not MIME): refused whole."""


@dataclass
class Parsed:
    sender: str
    name: str
    subject: str
    body: str
    message_id: str
    references: list[str]
    automatic: bool
    to: list[str]
    attachments: list[attachments.Accepted] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What became of one message: `conversation` and `message` (None: dropped), and why."""

    action: str  # "opened", "added", "duplicate", "dropped"
    conversation: Conversation | None = None
    message: Message | None = None


def is_automatic(msg: EmailMessage) -> bool:
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if msg.get_content_type() == "multipart/report":  # DSN, MDN (RFC 3464, 8098)
        return True
    if str(msg.get("Precedence", "")).strip().lower() in {"bulk", "junk", "list", "auto_reply"}:
        return True
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "List-Id", "X-Auto-Response")):
        return True
    if str(msg.get("X-Auto-Response-Suppress", "")).lower() in {"all", "oof"}:
        return True
    local = parseaddr(str(msg.get("From", "")))[1].split("@", 1)[0].lower()
    return local in {"mailer-daemon", "postmaster"} or not msg.get("From")


def _ids(value: object) -> list[str]:
    return [part for part in str(value or "").replace(",", " ").split() if part.startswith("<")]


def _text_of(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # an unknown charset, a broken part
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = get_text(content)
    return content


def parse(raw: bytes) -> Parsed:
    if len(raw) > settings.DESK["message_max_bytes"]:
        raise Malformed("message too large")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(msg, EmailMessage):
        raise Malformed("not a message")
    try:
        name, sender = parseaddr(str(msg.get("From", "")))
    except (IndexError, ValueError):
        raise Malformed("unreadable From") from None
    if not sender or "@" not in sender:
        raise Malformed("no sender")
    body_part = msg.get_body(preferencelist=("plain", "html"))
    full_text = _text_of(body_part) if isinstance(body_part, EmailMessage) else ""
    body = EmailReplyParser(languages=REPLY_LANGUAGES).parse_reply(text=full_text) or full_text
    parsed = Parsed(
        sender=addresses.canonical(sender),
        # A NUL (an encoded word can carry one) cannot be stored: dropped here, so the
        # message is taken rather than refused by the service and retried for days.
        name=name.replace("\x00", "")[:200],
        subject=" ".join(str(msg.get("Subject", "")).replace("\x00", "").split())[
            : services.SUBJECT_MAX
        ],
        body=body.replace("\x00", "").strip()[: services.BODY_MAX],
        message_id=str(msg.get("Message-ID", "")).strip()[:255],
        references=_ids(msg.get("In-Reply-To")) + _ids(msg.get("References")),
        automatic=is_automatic(msg),
        to=[addresses.canonical(a) for _n, a in getaddresses([str(msg.get("To", ""))]) if a],
    )
    for part in msg.walk():
        if part is body_part or part.is_multipart():
            continue
        filename = part.get_filename()
        if not filename and part.get_content_maintype() == "text":
            continue  # the other alternative of the body
        if part.get_content_type() in ("message/delivery-status", "message/rfc822"):
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        try:
            parsed.attachments.append(attachments.accept(filename or "attachment", data))
        except attachments.Refused as refusal:
            parsed.refused.append(str(refusal))
    return parsed


def _queue_for(to: list[str]) -> Queue:
    return Queue.objects.filter(address__in=to).first() or services.default_queue()


def _own_addresses() -> set[str]:
    own = {addresses.canonical(settings.OPERATOR["support_email"])}
    own |= {
        addresses.canonical(a)
        for a in Queue.objects.exclude(address="").values_list("address", flat=True)
    }
    return own


def receive(raw: bytes) -> Outcome:
    """Route one message. Malformed raises (the SMTP listener answers 550); a message
    seen before (same Message-ID) is taken once; our own mail coming back is dropped.
    What the desk's services refuse (a sender address that is no address) is Malformed
    too: a temporary error would have the sending server try again for days."""
    try:
        parsed = parse(raw)
        verdict = authentication.check(raw)
        if not verdict.verified:
            log.info("desk: sender not verified (%s)", verdict.how)
        return _route(parsed, verified=verdict.verified)
    except services.DeskError as error:
        raise Malformed(str(error)) from None


def _sender_may_answer(conversation: Conversation, sender: str) -> bool:
    """Only the conversation's customer adds to it by mail: its address, or their
    account's address now. Anyone else who learnt a reference or a Message-ID (a
    forwarded mail, a guess) opens a conversation of their own instead of writing, in
    the customer's name, into theirs. Automatic mail (a DSN comes from the mailer
    daemon) is still kept where it answers: it is marked so and reopens nothing."""
    known = {addresses.canonical(conversation.email)}
    if conversation.user is not None:
        known.add(addresses.canonical(conversation.user.email))
    return sender in known


def _route(parsed: Parsed, *, verified: bool) -> Outcome:
    if parsed.sender in _own_addresses():
        log.info("desk: dropped mail from our own address (a loop)")
        return Outcome("dropped")
    if (
        parsed.message_id
        and Message.objects.filter(
            message_id=parsed.message_id, direction=Message.Direction.IN
        ).exists()
    ):
        return Outcome("duplicate")
    body = parsed.body
    if parsed.refused:
        body = "\n".join([body, "", *(f"[{r}]" for r in parsed.refused)]).strip()
    with transaction.atomic():
        conversation = services.find_thread(parsed.references)
        if (
            conversation is not None
            and not parsed.automatic
            and not _sender_may_answer(conversation, parsed.sender)
        ):
            log.info("desk: a reply from an address not the conversation's opens its own")
            conversation = None
        if (
            conversation is not None
            and not parsed.automatic
            and conversation.sender_verified
            and not verified
        ):
            # Only proven mail continues a proven conversation as its customer: a forged
            # From with a leaked reference opens a conversation of its own, unverified.
            log.info("desk: an unverified reply to a verified conversation opens its own")
            conversation = None
        if conversation is not None:
            message = services.add_customer_message(
                conversation,
                body=body or "-",
                channel=Channel.MAIL,
                attachments=parsed.attachments,
                message_id=parsed.message_id,
                automatic=parsed.automatic,
                verified=verified,
            )
            return Outcome("added", conversation, message)
        if parsed.automatic:
            # A delivery report or an out-of-office that answers nothing of ours.
            log.info("desk: dropped automatic mail that answers no conversation")
            return Outcome("dropped")
        conversation = services.open_conversation(
            body=body or "-",
            subject=parsed.subject,
            email=parsed.sender,
            name=parsed.name,
            channel=Channel.MAIL,
            queue=_queue_for(parsed.to),
            attachments=parsed.attachments,
            message_id=parsed.message_id,
            verified=verified,
        )
        return Outcome("opened", conversation, conversation.messages.get())


def provider_raw(event: Any) -> bytes:
    """The message as the provider received it, when it posts the raw MIME (Mailgun's
    forward(), Postmark's RawEmail, MailerSend): anymail's parsed copy, written out again,
    may fold a header or encode a part otherwise, and a DKIM signature or an ARC seal of
    the original would no longer verify. Brevo posts parsed fields only: that copy."""
    esp = event.esp_event
    raw: object = None
    if isinstance(esp, dict):
        data = esp.get("data")
        raw = esp.get("RawEmail") or (data.get("raw") if isinstance(data, dict) else None)
    elif hasattr(esp, "POST"):
        raw = esp.POST.get("body-mime")
    if isinstance(raw, str) and raw:
        return raw.encode("utf-8", "surrogateescape")
    return bytes(event.message.as_bytes())


def on_provider_inbound(sender: object, event: Any, esp_name: str, **kwargs: Any) -> None:
    """anymail's `inbound` signal: a provider's webhook (signature already verified by
    its view) hands over a message, which goes the way every other message goes."""
    try:
        receive(provider_raw(event))
    except Malformed as error:
        log.info("desk: refused a message from %s: %s", esp_name, error)
