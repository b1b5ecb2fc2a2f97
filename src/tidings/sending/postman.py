"""The postman: how every message other than a campaign delivery leaves Tidings.

Producers describe a message (`core.mail.OutboundMessage`) and post it
(`core.mail.post`); `accept` is what `post` calls. The campaign engine sends its
deliveries through the same pieces (`relays`, `limits`, `transport`, `message`,
`ledger`): one way out for all mail. The protocol (docs/sending.md, `ledger`):

1. `accept` writes the message to the ledger (`OutboundMail`, queued) in the producer's
   transaction and queues `deliver` for after the commit: a rolled-back change never
   announces itself, and a message whose job was lost is found by the sweep.
2. `deliver` claims it (queued -> sending) in a statement of its own, committed before
   any SMTP traffic, and checks that its recipient may still get mail of its purpose
   (`audience.mailability`, `accounts.mailability`): otherwise it is skipped.
3. It takes one of the relay's connection slots and a place in the relay's rate. When
   either is not free, the claim is given back (queued, not before then) and the job
   requeued with that countdown: no worker ever waits for a relay.
4. It builds the message (DKIM-signed where a key for the sender's domain exists),
   sends it and records the outcome before anything else: sent, a temporary failure
   (queued again with backoff, failed after TIDINGS_SENDING_MAX_ATTEMPTS), a permanent
   one (failed; the contact's hard bounce when the relay refused the recipient), or
   unknown (the connection broke while the server answered: never retried).
5. While it holds the connection it takes the next due messages of the same relay,
   one claim at a time (at most DRAIN of them, for at most DRAIN_SECONDS).
6. `recover` (beat, every minute): claims older than the lease are unknown; queued
   messages whose job was lost are queued again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from tidings.accounts.mailability import user_may_receive
from tidings.accounts.models import Account, User
from tidings.audience import mailability
from tidings.audience.models import Contact
from tidings.core import addresses, jobs
from tidings.core.digests import email_digest
from tidings.core.mail import Kind, OutboundMessage, attachment
from tidings.sending import bounces, limits
from tidings.sending.ledger import (
    Recovered,
    backoff_seconds,
    claim_token,
    database_started_at,
    lease_cutoff,
    recover_stale_claims,
)
from tidings.sending.message import Skeleton, attach, signer
from tidings.sending.models import OutboundMail
from tidings.sending.relays import LOCAL, RelayConfig, relay_for
from tidings.sending.senders import Sender, sender_for
from tidings.sending.transport import (
    Ambiguous,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    transport_for,
)

log = logging.getLogger(__name__)

M = OutboundMail.Status
DELIVER = "tidings.sending.tasks.deliver"
# Messages one job sends on its connection before it hands over, and for how long.
DRAIN = 100
DRAIN_SECONDS = 10.0
# A job that finds every connection slot of its relay taken comes back after this.
NO_SLOT_SECONDS = 5

# The operator's own mail goes through the operator's relay, whoever it concerns.
OPERATOR_KINDS = frozenset({Kind.NOTICE, Kind.PRODUCT_UPDATE, Kind.DJANGO, Kind.SUPPORT})


class InvalidRecipient(ValueError):
    """The address cannot be mailed at all; the message says why."""


def _address(raw: str) -> str:
    try:
        return addresses.mailbox(raw)
    except addresses.InvalidAddress as error:
        raise InvalidRecipient(str(error)) from None


def accept(message: OutboundMessage) -> str:
    """Record `message` in the ledger and queue its delivery after the commit; the id
    of the message (a UUID). A message with the key of one already posted is that one."""
    if message.key:
        known = OutboundMail.objects.filter(key=message.key).values_list("uuid", flat=True)
        if known:
            return str(known[0])
    to = _address(message.to)
    contact_id = message.contact_id
    if contact_id is None and message.account_id is not None and not message.forget:
        contact_id = (
            Contact.objects.filter(account_id=message.account_id, digest=email_digest(to))
            .values_list("pk", flat=True)
            .first()
        )
    user_id = message.user_id
    if user_id is None and message.kind in OPERATOR_KINDS and not message.forget:
        # Tidings's own mail to one of its users: tied to them (erased with them).
        user_id = User.objects.filter(email__iexact=to).values_list("pk", flat=True).first()
    account_id = message.account_id
    if account_id is None and user_id is not None:
        from_user = Account.objects.filter(users__pk=user_id).values_list("pk", flat=True)
        account_id = from_user.first()
    row = OutboundMail(
        kind=message.kind,
        purpose=message.purpose,
        account_id=account_id,
        contact_id=contact_id,
        user_id=user_id,
        key=message.key or None,
        to_email=to,
        from_email=message.from_email,
        from_name=message.from_name,
        reply_to=message.reply_to,
        subject=" ".join(message.subject.split())[:998],
        text=message.text,
        html=message.html,
        headers=[list(pair) for pair in message.headers],
        forget=message.forget,
        attachments=list(message.attachments),
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        # The same key posted at the same moment by another process: that one stands.
        return str(OutboundMail.objects.get(key=message.key).uuid)
    jobs.enqueue(DELIVER, row.pk)
    return str(row.uuid)


# --- delivering ----------------------------------------------------------------------------


@dataclass
class Delivered:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    deferred: int = 0


def _route(mail: OutboundMail) -> int | None:
    """The account whose relay carries `mail` (None: the operator's)."""
    return None if mail.kind in OPERATOR_KINDS else mail.account_id


def _claim(token: str, *, pk: int | None = None, route: Q | None = None) -> OutboundMail | None:
    """Claim one due queued message (that one, or the next of a route), committed."""
    now = timezone.now()
    due = OutboundMail.objects.filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now), status=M.QUEUED
    )
    due = due.filter(pk=pk) if pk is not None else due.filter(route).order_by("pk")
    with transaction.atomic():
        row = due.select_for_update(skip_locked=True).first()
        if row is None:
            return None
        OutboundMail.objects.filter(pk=row.pk).update(
            status=M.SENDING, claimed_by=token, claimed_at=now, attempts=row.attempts + 1
        )
    row.status, row.claimed_by, row.attempts = M.SENDING, token, row.attempts + 1
    return row


def _route_q(route: int | None) -> Q:
    operator = Q(kind__in=OPERATOR_KINDS)
    relayed = ~Q(kind=Kind.DRILL)
    if route is None:
        return (operator | Q(account__isnull=True)) & relayed
    return Q(account_id=route) & ~operator & relayed


def _mark(mail: OutboundMail, **values: Any) -> None:
    """Record the outcome of a claimed message (a message that must forget is deleted
    once it has one)."""
    mine = OutboundMail.objects.filter(pk=mail.pk, claimed_by=mail.claimed_by, status=M.SENDING)
    if mail.forget and values.get("status") in (M.SENT, M.FAILED, M.SKIPPED, M.UNKNOWN):
        mine.delete()
        return
    mine.update(**values)


def _give_back(mail: OutboundMail, *, wait_seconds: float, error: str = "") -> None:
    """Not attempted: back to the queue, due in `wait_seconds`, its job requeued then."""
    when = timezone.now() + timedelta(seconds=wait_seconds)
    values: dict[str, Any] = {"status": M.QUEUED, "claimed_by": "", "not_before": when}
    values["attempts"] = max(0, mail.attempts - 1)
    values["dispatched_at"] = timezone.now()
    if error:
        values["last_error"] = error[:500]
    _mark(mail, **values)
    jobs.send_now(DELIVER, mail.pk, countdown=max(1.0, wait_seconds))


def may_receive(mail: OutboundMail) -> bool:
    """Whether the recipient may get mail of this purpose right now (the one rule)."""
    if mail.user_id is not None:
        return user_may_receive(mail.user_id, mail.purpose)
    if mail.account_id is not None and mail.kind not in OPERATOR_KINDS:
        account = Account.objects.get(pk=mail.account_id)
        return mailability.may_receive(account, mail.to_email, mail.purpose)
    return True  # the operator's notice to an address of its own (staff, the authority)


def deliver(mail_id: int) -> Delivered:
    """Send the queued message `mail_id`, then the next due ones of its relay."""
    result = Delivered()
    token = claim_token()
    mail = _claim(token, pk=mail_id)
    if mail is None:
        return result
    route = _route(mail)
    # A drill's mail never reaches a relay (breaches: `tidings breach drill`).
    drill = mail.kind == Kind.DRILL
    config = LOCAL if drill else relay_for(route)
    if config is not None and not limits.take_slot(
        config, token, hold_seconds=settings.SENDING["lease_seconds"]
    ):
        _give_back(
            mail, wait_seconds=NO_SLOT_SECONDS, error="every connection to the relay is busy"
        )
        result.deferred += 1
        return result
    transport = transport_for(config)
    deadline = time.monotonic() + DRAIN_SECONDS
    try:
        for _ in range(DRAIN):
            if not _send(mail, config, transport, result):
                break  # the relay's rate says wait: the rest waits with it
            if time.monotonic() > deadline:
                break
            next_mail = _claim(token, route=Q(kind=Kind.DRILL) if drill else _route_q(route))
            if next_mail is None:
                break
            mail = next_mail
    finally:
        transport.close()
        if config is not None:
            limits.give_back_slot(config, token)
    return result


def _send(
    mail: OutboundMail, config: RelayConfig | None, transport: Transport, result: Delivered
) -> bool:
    """One claimed message to its outcome; False when the relay's rate says wait."""
    if not may_receive(mail):
        _mark(mail, status=M.SKIPPED, last_error="no longer allowed to be mailed")
        result.skipped += 1
        return True
    if config is not None:
        wait_ms = limits.reserve(config)
        if wait_ms:
            _give_back(mail, wait_seconds=wait_ms / 1000)
            result.deferred += 1
            return False
    sender = sender_of(mail)
    message_id = f"<{mail.uuid.hex}@{sender.domain or 'tidings.invalid'}>"
    data = build(mail, message_id, sender)
    relay_name = config.name if config is not None else settings.EMAIL_DELIVERY
    if mail.forget and transport.keeps_copy:
        # The last word to an erased person would stay in the local outbox, with their
        # address, for TIDINGS_OUTBOX_DAYS: that erasure leaves no copy.
        _mark(mail, status=M.SENT, sent_at=timezone.now(), relay=relay_name)
        result.sent += 1
        return True
    try:
        transport.send(sender.envelope, mail.to_email, data)
    except TemporaryFailure as error:
        _retry_or_fail(mail, str(error), result)
    except PermanentFailure as error:
        if error.recipient or error.stage == "address":
            _mark(mail, status=M.FAILED, last_error=str(error)[:500], relay=relay_name)
            result.failed += 1
            if error.recipient and mail.contact_id is not None:
                contact = Contact.objects.filter(pk=mail.contact_id).first()
                if contact is not None:
                    bounces.hard_bounce(contact, source="smtp", detail=str(error))
        else:
            # The relay refused us (login, sender): the customer can mend it; try later.
            _retry_or_fail(mail, str(error), result)
    except Ambiguous as error:
        _mark(mail, status=M.UNKNOWN, last_error=str(error)[:500], relay=relay_name)
        result.unknown += 1
    else:
        _mark(
            mail,
            status=M.SENT,
            sent_at=timezone.now(),
            message_id=message_id,
            relay=relay_name,
            last_error="",
        )
        result.sent += 1
    return True


def _retry_or_fail(mail: OutboundMail, error: str, result: Delivered) -> None:
    if mail.attempts >= settings.SENDING["max_attempts"]:
        _mark(mail, status=M.FAILED, last_error=error[:500])
        result.failed += 1
        return
    wait = backoff_seconds(mail.attempts)
    _mark(
        mail,
        status=M.QUEUED,
        claimed_by="",
        not_before=timezone.now() + timedelta(seconds=wait),
        dispatched_at=timezone.now(),
        last_error=error[:500],
    )
    jobs.send_now(DELIVER, mail.pk, countdown=wait)
    result.deferred += 1


# Headers of mail no person wrote (RFC 3834): auto-responders do not answer it.
_AUTOMATIC = (("Auto-Submitted", "auto-generated"),)


def sender_of(mail: OutboundMail) -> Sender:
    """Its From, Reply-To, envelope and DKIM key (`senders`: a customer's domain only
    once proven)."""
    return sender_for(
        _route(mail), from_email=mail.from_email, from_name=mail.from_name, reply_to=mail.reply_to
    )


def build(mail: OutboundMail, message_id: str, sender: Sender | None = None) -> bytes:
    """The message's bytes, DKIM-signed where a key for the sender's domain exists."""
    sender = sender or sender_of(mail)
    skeleton = Skeleton.make(
        from_name=sender.from_name, from_email=sender.from_email, reply_to=sender.reply_to
    )
    automatic = mail.kind in (Kind.NOTICE, Kind.CONTACT, Kind.DJANGO, Kind.DRILL)
    headers = tuple((str(n), str(v)) for n, v in mail.headers) + (_AUTOMATIC if automatic else ())
    data = skeleton.build(
        to=mail.to_email,
        subject=mail.subject,
        html=mail.html,
        text=mail.text,
        message_id=message_id,
        headers=headers,
        alternative=bool(mail.html) or mail.kind in (Kind.TRANSACTIONAL, Kind.TEST),
    )
    if mail.attachments:
        files = [attachment(name) for name in mail.attachments]
        data = attach(data, [f for f in files if f is not None])
    key = sender.dkim
    if key is not None:
        data = signer(key.domain, key.selector, key.private_key).sign(data)
    return data


# --- recovery ------------------------------------------------------------------------------


def recover() -> Recovered:
    """Every minute: dead workers' claims, and queued messages whose job was lost."""
    cutoff = lease_cutoff()
    outcome = recover_stale_claims(OutboundMail, cutoff, restarted=database_started_at())
    now = timezone.now()
    lost = OutboundMail.objects.filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now),
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=cutoff),
        status=M.QUEUED,
        created_at__lt=now - timedelta(seconds=60),
    )
    for pk in lost.values_list("pk", flat=True)[:1000]:
        OutboundMail.objects.filter(pk=pk).update(dispatched_at=now)
        jobs.send_now(DELIVER, pk)
        outcome.requeued += 1
    return outcome


def outcome_of(uuid: str, account: Account) -> OutboundMail | None:
    """A message of `account`, by its public id."""
    return OutboundMail.objects.filter(uuid=uuid, account=account).first()
