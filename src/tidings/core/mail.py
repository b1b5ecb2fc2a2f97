"""Mail as a value, and the one door to the outbound pipeline.

Every producer of mail (campaign tests, transactional messages, product updates,
Tidings's own notices, mail to contacts, Django's password reset through
`tidings.sending.backend`) describes a message as an `OutboundMessage` and hands it to
`post()`. The pipeline (the postman of `tidings.sending`, the delivery layer) registers
itself in its AppConfig.ready(); `post()` writes the message to its ledger in the
caller's transaction and the postman sends it after the commit, so a rolled-back
change never announces itself and a message whose job was lost is found again. What
happens next (relay, connection slots, rate limits, DKIM, outcome, recovery) is the
same for every message: docs/sending.md.

Every message has a purpose, which decides who may get it (`audience.mailability` for
contacts, `accounts.selectors.users_who_may_receive` for customers' users).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from hashlib import sha256
from typing import Any

from django.conf import settings
from django.db import models
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from tidings.core import baseurl, locales


class Purpose(models.TextChoices):
    MARKETING = "marketing", _("marketing (campaigns, product updates)")
    SERVICE = "service", _("service (mail the person asked for)")
    NOTICE = "notice", _("legal or security notice")


class Kind(models.TextChoices):
    """Who produced a message: shown in the ledger, and the producer's own rules
    (a test send carries a footer, a product update a way to switch them off)."""

    TRANSACTIONAL = "transactional", _("transactional message (API)")
    TEST = "test", _("campaign test")
    NOTICE = "notice", _("Tidings's notice")
    PRODUCT_UPDATE = "product_update", _("product update")
    CONTACT = "contact", _("mail to a contact (confirmation, answer to a request)")
    DJANGO = "django", _("Django's own mail (password reset)")
    # Written by a person of the operator's staff: not automatic (RFC 3834).
    SUPPORT = "support", _("support desk answer")
    # A rehearsal's mail (`tidings breach drill`): only ever to the local outbox, whatever
    # relay is configured, tied to nobody.
    DRILL = "drill", _("drill (kept in the local outbox)")


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one recipient, as a producer describes it.

    `account_id` says whose mail it is: that account's relay sends it and its DKIM key
    signs it (None: the operator's). `contact_id` and `user_id` name the person it goes
    to, when it is one: the pipeline checks again, just before sending, that they may
    still get mail of this purpose, and erasing them erases the message. `key` makes
    posting idempotent: a second message with the same key is the first one."""

    to: str
    subject: str
    text: str
    purpose: Purpose
    kind: Kind
    html: str = ""
    from_email: str = ""
    from_name: str = ""
    reply_to: str = ""
    account_id: int | None = None
    contact_id: int | None = None
    user_id: int | None = None
    key: str = ""
    headers: tuple[tuple[str, str], ...] = field(default=())
    # The last word to someone erased: the ledger forgets it once it has an outcome.
    forget: bool = False
    # Files attached, each named "<source>:<ref>" (`register_attachments`): the ledger
    # keeps the names, the pipeline asks the source for the bytes when it builds it.
    attachments: tuple[str, ...] = ()

    def with_operator_sender(self) -> OutboundMessage:
        """The operator's address (DEFAULT_FROM_EMAIL) where no sender was given."""
        if self.from_email:
            return self
        name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
        return replace(self, from_email=address, from_name=self.from_name or name)


Postman = Callable[[OutboundMessage], str]
_postman: list[Postman] = []


def register_postman(postman: Postman) -> None:
    """Called once by the delivery layer's AppConfig.ready()."""
    _postman[:] = [postman]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


# Makes the file an attachment's name refers to (None: it is gone). The app that owns
# the files registers it in its AppConfig.ready().
AttachmentSource = Callable[[str], Attachment | None]
_attachment_sources: dict[str, AttachmentSource] = {}


def register_attachments(source: str, make: AttachmentSource) -> None:
    """Called by an app's AppConfig.ready(): `make(ref)` gives the file `source:ref`."""
    _attachment_sources[source] = make


def attachment(name: str) -> Attachment | None:
    """The file an attachment's name refers to, made now; None when it is gone."""
    source, _sep, ref = name.partition(":")
    return _attachment_sources[source](ref)


# Tells the language a person reads mail in from their address (None: not known, the
# default language). The accounts layer registers it in its AppConfig.ready().
LanguageOf = Callable[[str], str | None]
_language_of: list[LanguageOf] = []


def register_language_of(language_of: LanguageOf) -> None:
    """Called once by tidings.accounts' AppConfig.ready()."""
    _language_of[:] = [language_of]


def language_of(address: str) -> str | None:
    return _language_of[0](address) if _language_of else None


def post(message: OutboundMessage) -> str:
    """Hand one message to the pipeline: recorded now, in the current transaction,
    sent after the commit. Returns its public id (a UUID)."""
    if not _postman:
        raise RuntimeError("no outbound pipeline is installed (tidings.sending)")
    return _postman[0](message.with_operator_sender())


# The first words of a drill's mail, in the reader's language (rendered then).
DRILL_NOTE = _(
    "THIS IS A DRILL: a rehearsal of the breach procedure. No breach happened and this "
    "message was kept in the local outbox; it was sent to nobody."
)


def send_templated(
    template: str,
    to: list[str],
    context: dict[str, Any],
    *,
    purpose: Purpose = Purpose.NOTICE,
    account_id: int | None = None,
    user_ids: dict[str, int] | None = None,
    forget: bool = False,
    language: str | None = None,
    key: str = "",
    attachments: tuple[str, ...] = (),
    drill: bool = False,
) -> dict[str, str]:
    """Post one of Tidings's own mails, rendered from `<template>_subject.txt` and
    `<template>.txt`, to each address of `to` separately. `user_ids` names the user
    behind an address the pipeline could not tell (a new address not confirmed yet);
    `forget` is for the last word to someone erased. Each mail is in the language its
    recipient chose (`language` for an address that has no user yet). With `key`, each
    mail is posted under `key` and its address, so posting it again posts nothing new.
    `attachments` names files to attach (`register_attachments`). A `drill` mail says so
    in its subject and body and goes only to the local outbox. Returns each address's
    message id."""
    context = {**context, "operator": settings.OPERATOR, "base_url": baseurl.base_url()}
    posted = {}
    for address in to:
        with locales.language(language_of(address) or language):
            subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
            body: str = render_to_string(f"{template}.txt", context)
            if drill:
                subject = str(_("[DRILL] %(subject)s")) % {"subject": subject}
                body = f"{DRILL_NOTE}\n\n{body}"
        posted[address] = post(
            OutboundMessage(
                to=address,
                subject=subject,
                text=body,
                purpose=purpose,
                kind=Kind.DRILL if drill else Kind.NOTICE,
                account_id=None if drill else account_id,
                user_id=None if drill else (user_ids or {}).get(address),
                forget=forget,
                key=f"{key}:{sha256(address.encode()).hexdigest()[:32]}" if key else "",
                attachments=attachments,
            )
        )
    return posted
