"""Every write of the support desk (DESIGN principle 2): a conversation opened by form or
by mail, the customer's messages, agents' answers and notes, assignment and status, and
a customer's data changed through support (P32). Each runs in one transaction; mail
goes through the one pipeline (core.mail) after the commit."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts import services as accounts
from tidings.accounts.mailability import user_may_receive
from tidings.accounts.models import Account, User
from tidings.core import addresses, baseurl, collection, locales, ratelimit, text
from tidings.core import signing as fast_signing
from tidings.core.mail import Kind, OutboundMessage, Purpose, language_of, post
from tidings.desk import search, worktime
from tidings.desk.attachments import Accepted
from tidings.desk.models import (
    Attachment,
    CannedAnswer,
    Channel,
    Conversation,
    Message,
    Queue,
    Rating,
)
from tidings.staff import audit

SUBJECT_MAX = 200
BODY_MAX = 50_000
# Every message of the desk names its conversation here, so a reply finds it even when
# the subject changed and the client dropped In-Reply-To (django-helpdesk #756).
REFERENCE_DOMAIN = "desk.tidings.invalid"
RATING_SALT = "tidings.desk.rating"
# What a support request's data is for (P2), as the data map says.
PURPOSE = "answering the request and following it up"
RATING_SALT = "tidings.desk.rating"
# What a support request's data is for (P2), as the data map says.
PURPOSE = "answering the request and following it up"


class DeskError(Exception):
    """Bad input: nothing was written; the message says why."""


def default_queue() -> Queue:
    queue = Queue.objects.filter(is_default=True).first()
    if queue is None:
        queue, _created = Queue.objects.get_or_create(name="Support", defaults={"is_default": True})
    return queue


def thread_id(conversation: Conversation) -> str:
    return f"<{conversation.reference}@{REFERENCE_DOMAIN}>"


def clean_text(value: str, *, limit: int, what: str) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise DeskError(
            _("The %(what)s is too long (at most %(n)s characters).") % {"what": what, "n": limit}
        )
    if text.NUL in value:
        raise DeskError(str(text.NUL_REFUSED))
    return value


def _clean_email(email: str) -> str:
    try:
        validate_email(email)
    except ValidationError:
        raise DeskError(_("Enter a valid email address.")) from None
    return addresses.canonical(email)


def open_conversation(
    *,
    body: str,
    subject: str = "",
    user: User | None = None,
    email: str = "",
    name: str = "",
    channel: Channel = Channel.FORM,
    queue: Queue | None = None,
    attachments: Sequence[Accepted] = (),
    message_id: str = "",
    automatic: bool = False,
    verified: bool = False,
) -> Conversation:
    """A new conversation with its first message: a logged-in customer's (`user`) or a
    visitor's (`email`, `name`). Acknowledged by mail unless the message was automatic.
    Mail is tied to the customer whose address it comes from only when `verified`
    (desk.authentication's verdict): anyone can write a customer's address in From."""
    body = clean_text(body, limit=BODY_MAX, what=_("message"))
    subject = clean_text(subject, limit=SUBJECT_MAX, what=_("subject"))
    if not body and not attachments:
        raise DeskError(_("Write a message."))
    if user is None:
        email = _clean_email(email)
        # Mail proven to come from a customer's address is theirs (it threads by that
        # address too); unproven mail, like a visitor's form, proves nothing of the
        # address: tied to an account, it would show in that customer's support page,
        # beside their history, and pass with staff as the customer's own request (P32).
        if channel == Channel.MAIL and verified:
            user = User.objects.filter(email__iexact=email, account__isnull=False).first()
        else:
            verified = False
    else:
        email = user.email
        verified = True
    name = clean_text(name or (user.name if user else ""), limit=200, what=_("name"))
    now = timezone.now()
    sla = worktime.targets(Conversation.Priority.NORMAL)
    with transaction.atomic():
        conversation = Conversation.objects.create(
            user=user,
            account=user.account if user else None,
            email=email,
            name=name,
            subject=subject or body.split("\n", 1)[0][:80],
            queue=queue or default_queue(),
            channel=channel,
            sender_verified=verified,
            created_at=now,
            updated_at=now,
            first_response_due_at=worktime.add(sla.calendar, now, sla.first_response),
            resolution_due_at=worktime.add(sla.calendar, now, sla.resolution),
        )
        search.index_subject(conversation)
        add_message(
            conversation,
            Message.Direction.IN,
            channel,
            body,
            attachments,
            message_id,
            automatic,
            verified=verified,
        )
        collected = ["email", *(["name"] if name else []), "message"]
        if attachments:
            collected.append("attachments")
        collection.record(
            collection.Collection(
                point=f"support request ({Channel(channel).value})",
                items=[collection.Item(what, PURPOSE, "contract") for what in collected],
                account=conversation.account,
                user=user,
            )
        )
        # A chat is answered live (and its transcript mailed only on request).
        if not automatic and channel != Channel.CHAT:
            _acknowledge(conversation)
    return conversation


def add_message(
    conversation: Conversation,
    direction: str,
    channel: str,
    body: str,
    attachments: Iterable[Accepted] = (),
    message_id: str = "",
    automatic: bool = False,
    author: User | None = None,
    verified: bool = True,
) -> Message:
    message = Message.objects.create(
        conversation=conversation,
        direction=direction,
        channel=channel,
        body=body,
        message_id=message_id[:255],
        automatic=automatic,
        author=author,
        sender_verified=verified,
    )
    Attachment.objects.bulk_create(
        Attachment(
            message=message,
            filename=a.filename,
            content_type=a.content_type,
            size=len(a.data),
            data=a.data,
        )
        for a in attachments
    )
    search.index_message(message)
    return message


def add_customer_message(
    conversation: Conversation,
    *,
    body: str,
    channel: Channel,
    attachments: Sequence[Accepted] = (),
    message_id: str = "",
    automatic: bool = False,
    verified: bool = True,
) -> Message:
    """The customer writes again. A person's message reopens a waiting or solved
    conversation; an automatic one (an out-of-office, a DSN) is kept and changes nothing.
    `verified`: whether the sender of a mail was (desk.authentication)."""
    body = clean_text(body, limit=BODY_MAX, what=_("message"))
    if not body and not attachments:
        raise DeskError(_("Write a message."))
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        message = add_message(
            conversation,
            Message.Direction.IN,
            channel,
            body,
            attachments,
            message_id,
            automatic,
            verified=verified,
        )
        if not automatic:
            now = timezone.now()
            if conversation.status in (Conversation.Status.WAITING, Conversation.Status.SOLVED):
                _move(conversation, Conversation.Status.OPEN, now)
                conversation.solved_at = None
            conversation.updated_at = now
            conversation.save(update_fields=["status", "solved_at", "updated_at", *CLOCKS])
    return message


# The SLA clocks' fields, saved with every change of status.
CLOCKS = ["first_response_due_at", "resolution_due_at", "paused_at"]
PAUSED = (Conversation.Status.WAITING, Conversation.Status.SOLVED)


def _move(conversation: Conversation, status: str, now: datetime) -> None:
    """Change the status, pausing the SLA clocks while the conversation waits on the
    customer (or is solved) and moving their due times on by the working time the
    pause took (in the calendar of the conversation's priority) when it ends."""
    pausing = status in PAUSED
    if pausing and conversation.paused_at is None:
        conversation.paused_at = now
    elif not pausing and conversation.paused_at is not None:
        calendar = worktime.targets(conversation.priority).calendar
        paused = worktime.between(calendar, conversation.paused_at, now)
        if conversation.first_response_due_at is not None:
            conversation.first_response_due_at = worktime.add(
                calendar, conversation.first_response_due_at, paused
            )
        if conversation.resolution_due_at is not None:
            conversation.resolution_due_at = worktime.add(
                calendar, conversation.resolution_due_at, paused
            )
        conversation.paused_at = None
    conversation.status = status


def mail_customer(conversation: Conversation, template: str, context: dict, *, kind: Kind) -> str:
    """One mail of the desk to the conversation's customer, threaded under it."""
    address = conversation.email
    context = {**context, "conversation": conversation, "operator": settings.OPERATOR}
    with locales.language(language_of(address)):
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        body = render_to_string(f"{template}.txt", context)
    last_in = (
        conversation.messages.filter(direction=Message.Direction.IN)
        .exclude(message_id="")
        .order_by("-created_at", "-pk")
        .values_list("message_id", flat=True)
        .first()
    )
    references = " ".join(filter(None, [thread_id(conversation), last_in]))
    headers: tuple[tuple[str, str], ...] = (("References", references),)
    if last_in:
        headers += (("In-Reply-To", last_in),)
    return post(
        OutboundMessage(
            to=address,
            subject=subject,
            text=body,
            purpose=Purpose.SERVICE,
            kind=kind,
            from_email=_support_address(conversation),
            from_name=settings.OPERATOR["name"],
            user_id=conversation.user_id,
            headers=headers,
        )
    )


def _support_address(conversation: Conversation) -> str:
    return conversation.queue.address or settings.OPERATOR["support_email"]


def _acknowledge(conversation: Conversation) -> None:
    """Tell the customer we have their request (automatic: Auto-Submitted says so), at
    most a few times a day per address, so two robots cannot loop on each other."""
    if not ratelimit.allow(
        "desk.ack",
        conversation.email,
        limit=settings.DESK["acks_per_address_per_day"],
        seconds=86400,
    ):
        return
    mail_customer(conversation, "desk/mail/acknowledged", {}, kind=Kind.NOTICE)


def _staff_check(by: User) -> None:
    if not by.is_staff:
        raise DeskError(_("Only the operator's staff answer conversations."))


def reply(conversation: Conversation, *, by: User, body: str) -> Message:
    """An agent's answer, mailed to the customer; the conversation waits on them."""
    _staff_check(by)
    body = clean_text(body, limit=BODY_MAX, what=_("answer"))
    if not body:
        raise DeskError(_("Write an answer."))
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        public_id = mail_customer(
            conversation, "desk/mail/answer", {"body": body}, kind=Kind.SUPPORT
        )
        message = add_message(
            conversation,
            Message.Direction.OUT,
            Channel.MAIL,
            body,
            message_id=str(public_id).replace("-", ""),
            author=by,
        )
        now = timezone.now()
        wait_on_customer(conversation, now)
        answered(conversation, now)
        if conversation.assignee_id is None:
            conversation.assignee = by
        conversation.save(
            update_fields=["status", "updated_at", "assignee", "first_response_at", *CLOCKS]
        )
    return message


def add_note(conversation: Conversation, *, by: User, body: str) -> Message:
    """An internal note: staff see it, the customer never does."""
    _staff_check(by)
    body = clean_text(body, limit=BODY_MAX, what=_("note"))
    if not body:
        raise DeskError(_("Write a note."))
    with transaction.atomic():
        return add_message(conversation, Message.Direction.NOTE, Channel.FORM, body, author=by)


def assign(conversation: Conversation, *, to: User | None, by: User) -> None:
    _staff_check(by)
    if to is not None and not to.is_staff:
        raise DeskError(_("Conversations are assigned to staff only."))
    with transaction.atomic():
        conversation.assignee = to
        conversation.save(update_fields=["assignee"])
        audit.record(audit.AuditEvent.Action.UPDATE, conversation, by=by, fields=["assignee"])


def set_status(conversation: Conversation, *, status: str, by: User) -> None:
    """Staff set the status; solving (once) starts the retention clock and asks for a rating."""
    _staff_check(by)
    if status not in Conversation.Status.values:
        raise DeskError(_("Unknown status: %(status)s") % {"status": status})
    with transaction.atomic():
        # Decide from the row as it is now, locked: the caller's copy may be stale (two
        # agents on one conversation), and a second "solved" must not restart the
        # retention clock nor ask for a second rating.
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        solved = status == Conversation.Status.SOLVED
        solving = solved and conversation.status != Conversation.Status.SOLVED
        now = timezone.now()
        _move(conversation, status, now)
        if solving:
            conversation.solved_at = now
        elif not solved:
            conversation.solved_at = None
        conversation.updated_at = now
        conversation.save(update_fields=["status", "solved_at", "updated_at", *CLOCKS])
        audit.record(audit.AuditEvent.Action.UPDATE, conversation, by=by, fields=["status"])
        if solving:
            _ask_for_rating(conversation)


def set_priority(conversation: Conversation, *, priority: str, by: User) -> None:
    """Staff set the priority (audited). The running clocks keep the working time spent
    so far; what is left is the new priority's target less that, counted in the new
    priority's calendar (urgent may count every hour) from now, or from the start of the
    pause while one runs."""
    _staff_check(by)
    if priority not in Conversation.Priority.values:
        raise DeskError(_("Unknown priority: %(priority)s") % {"priority": priority})
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.priority == priority:
            return
        old = worktime.targets(conversation.priority)
        new = worktime.targets(priority)
        at = conversation.paused_at or timezone.now()
        if conversation.first_response_at is None and conversation.first_response_due_at:
            conversation.first_response_due_at = worktime.retarget(
                conversation.first_response_due_at,
                at=at,
                old=old.calendar,
                new=new.calendar,
                change=new.first_response - old.first_response,
            )
        if conversation.resolution_due_at is not None:
            conversation.resolution_due_at = worktime.retarget(
                conversation.resolution_due_at,
                at=at,
                old=old.calendar,
                new=new.calendar,
                change=new.resolution - old.resolution,
            )
        conversation.priority = priority
        conversation.save(update_fields=["priority", *CLOCKS])
        audit.record(audit.AuditEvent.Action.UPDATE, conversation, by=by, fields=["priority"])


def rating_token(conversation: Conversation) -> str:
    return fast_signing.dumps({"c": conversation.pk, "r": conversation.reference}, salt=RATING_SALT)


def followup_refused(conversation: Conversation) -> str:
    """Why a follow-up may not go to this customer ("" when it may): the follow-up
    switch (P18), then the one users' rule for mail they asked for (service)."""
    if conversation.user_id is None:
        return ""  # a visitor wrote to us: a follow-up answers their own request
    # Read now, not from a copy loaded earlier: the switch takes effect at once (P18).
    user = User.objects.select_related("account").get(pk=conversation.user_id)
    if not user.allow_support_followups:
        return "switched off"
    if user_may_receive(user.pk, Purpose.SERVICE):
        return ""
    # The rule decided; the note only names the state for the staff who read it.
    account = user.account
    if account is not None and account.is_restricted:
        return "restricted"
    if account is not None and account.status != Account.Status.ACTIVE:
        return f"account {account.status}"
    return "user deactivated"


def _ask_for_rating(conversation: Conversation) -> None:
    """Solving mails a single-use link to rate the answer (desk.ratings), unless the
    customer switched follow-ups off (P18) or the conversation was rated before."""
    if followup_refused(conversation):
        return
    if Rating.objects.filter(conversation=conversation).exists():
        return
    url = baseurl.base_url() + reverse("desk:rate", args=[rating_token(conversation)])
    mail_customer(conversation, "desk/mail/rate", {"url": url}, kind=Kind.NOTICE)


def change_customer_data(
    conversation: Conversation, *, by: User, **values: str
) -> list[accounts.Change]:
    """The customer asked support to change their data (P32): the same service as My
    Account (audited, the change mail to the customer, P19), with the conversation as
    the reason; a note on the conversation says what was changed, not the values."""
    _staff_check(by)
    if conversation.user is None:
        raise DeskError(_("This conversation is not tied to a customer's account."))
    reason = _("at the customer's request in support conversation #%(id)s") % {
        "id": conversation.pk
    }
    try:
        with transaction.atomic():
            changes = accounts.update_profile(conversation.user, by=by, reason=reason, **values)
            if changes:
                add_message(
                    conversation,
                    Message.Direction.NOTE,
                    Channel.FORM,
                    _("Changed at the customer's request: %(fields)s")
                    % {"fields": ", ".join(str(c.label) for c in changes)},
                    author=by,
                )
    except accounts.AccountError as error:
        raise DeskError(str(error)) from None
    return changes


def save_canned_answer(canned: CannedAnswer) -> CannedAnswer:
    """Add or change a saved answer (the console's page). Placeholders are kept as
    written: they are filled in only when an agent inserts it (`fill_canned`)."""
    canned.full_clean()
    canned.save()
    return canned


_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def fill_canned(canned: CannedAnswer, conversation: Conversation, *, agent: User) -> str:
    """A canned answer with its variables filled in; an unknown one is left as written
    (plain substitution: a canned answer is text, never a template that could run)."""
    values = {
        "customer_name": conversation.name or conversation.email,
        "agent_name": agent.name,
        "conversation_number": str(conversation.pk),
    }
    return _VARIABLE.sub(lambda m: values.get(m[1], m[0]), canned.body)


def conversations_of(conversation: Conversation) -> list[Conversation]:
    """The customer's other conversations (P6: the history at hand): by their account,
    else by their address, among those of no account. None beside a conversation whose
    sender is not verified: whoever wrote it may not be the address's owner."""
    if not conversation.sender_verified:
        return []
    if conversation.account_id is not None:
        others = Conversation.objects.filter(account_id=conversation.account_id)
    else:
        others = Conversation.objects.filter(
            email=conversation.email, account__isnull=True, sender_verified=True
        )
    return list(others.exclude(pk=conversation.pk).order_by("-updated_at")[:50])


def find_thread(ids: Iterable[str]) -> Conversation | None:
    """The conversation a mail answers, from the ids of its In-Reply-To and References."""
    full = {i.strip() for i in ids if i.strip()}
    if not full:
        return None
    locals_ = {i.strip("<>").split("@", 1)[0] for i in full}
    references = {
        i.strip("<>").split("@", 1)[0]
        for i in full
        if i.strip("<>").endswith("@" + REFERENCE_DOMAIN)
    }
    found = Conversation.objects.filter(reference__in=references).first()
    if found is not None:
        return found
    message = (
        Message.objects.filter(
            Q(message_id__in=full, direction=Message.Direction.IN)
            | Q(message_id__in=locals_, direction=Message.Direction.OUT)
        )
        .select_related("conversation")
        .order_by("-created_at")
        .first()
    )
    return message.conversation if message else None


def answered(conversation: Conversation, now: datetime) -> None:
    """Staff answered, by mail or in the chat: the first answer is recorded once."""
    if conversation.first_response_at is None:
        conversation.first_response_at = now
    conversation.updated_at = now


def wait_on_customer(conversation: Conversation, now: datetime) -> None:
    """The conversation waits on the customer (an answer mailed, a chat ended): the SLA
    clocks pause until they write again."""
    _move(conversation, Conversation.Status.WAITING, now)
    conversation.updated_at = now
