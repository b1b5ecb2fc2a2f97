"""Live chat on the desk's one Conversation model (channel "chat"): a visitor or a
customer opens one from the contact page or the support page, an agent takes it from the
desk, and when it ends it stays a conversation that goes on by mail.

What holds, and where:
1. A chat belongs to whoever holds its token: signed (django.core.signing, salted) over
   the conversation's reference, which is random; never a guessable id. A customer's chat
   also needs its customer logged in.
2. Every message is saved through the desk's services (encrypted at rest, P8) before it
   is broadcast; one that is refused (too long, too fast, chat over) is saved nowhere and
   the sender is told.
3. The server names every group, from a verified token or the agent's permission: a
   client never chooses one, so no one can listen in on another conversation or the
   agents' queue.
4. Agents are online while a desk page with the chat says so (every 20 s): a map of
   agent to expiry in the cache (Redis, or the database's cache table), read by the
   widget before it offers a chat; with no one online it offers the ticket form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tidings.accounts.models import User
from tidings.core import ratelimit
from tidings.core.mail import Kind
from tidings.desk import services
from tidings.desk.models import Channel, Conversation, Message
from tidings.staff import access, audit

TOKEN_SALT = "tidings.desk.chat"  # noqa: S105  (a salt, not a secret)
AGENTS_GROUP = "desk.chat.agents"
PRESENCE_KEY = "desk.chat.agents-online"
VIEW = "desk.view_conversation"
CHANGE = "desk.change_conversation"
LIVE = (Conversation.Status.NEW, Conversation.Status.OPEN)


class ChatRefused(Exception):
    """A chat message or action that was not done; the message says why."""


def group_of(conversation: Conversation) -> str:
    return f"desk.chat.{conversation.reference}"


# --- tokens -------------------------------------------------------------------------


def token_for(conversation: Conversation) -> str:
    return signing.dumps({"r": conversation.reference}, salt=TOKEN_SALT, compress=True)


def conversation_for(token: str, *, user: Any = None) -> Conversation:
    """The chat a token opens, or ChatRefused: a token tampered with, too old, for no
    chat, or a customer's chat asked for by someone else than that customer."""
    try:
        value = signing.loads(
            token, salt=TOKEN_SALT, max_age=settings.DESK["chat_token_hours"] * 3600
        )
        reference = str(value["r"])
    except (signing.BadSignature, KeyError, TypeError):
        raise ChatRefused(_("This chat link is not valid.")) from None
    conversation = (
        Conversation.objects.filter(reference=reference, channel=Channel.CHAT)
        .select_related("queue")
        .first()
    )
    if conversation is None:
        raise ChatRefused(_("This chat link is not valid."))
    if conversation.user_id is not None and getattr(user, "pk", None) != conversation.user_id:
        raise ChatRefused(_("Log in to go on with this chat."))
    return conversation


# --- presence -----------------------------------------------------------------------


def _presence_key(agent_id: int) -> str:
    return f"{PRESENCE_KEY}:{agent_id}"


def agent_seen(agent: User) -> None:
    """The agent has a desk page with the chat open (said again every 20 seconds). One
    key per agent, expiring by itself: two agents seen at once cannot overwrite each
    other, as they could in one shared map."""
    cache.set(_presence_key(agent.pk), True, settings.DESK["chat_presence_seconds"])


def agent_left(agent: User) -> None:
    cache.delete(_presence_key(agent.pk))


def agents_online() -> int:
    staff = User.objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True)
    return len(cache.get_many([_presence_key(pk) for pk in staff]))


# --- who may chat as an agent -------------------------------------------------------


def agent_refusal(user: Any, session: SessionBase, *, permission: str = VIEW) -> str | None:
    """Why this WebSocket's user may not chat as an agent, or None: the console's rule
    (staff.access), read from the WebSocket's session."""
    return access.refusal(user, session, permission=permission)


# --- what happens in a chat ---------------------------------------------------------


@dataclass(frozen=True)
class Said:
    """A message as the chat shows it, saved before it is sent to anyone."""

    id: int
    direction: str
    body: str
    author: str
    at: str

    def event(self) -> dict[str, Any]:
        return {"type": "chat.message", **self.__dict__}


def said(message: Message, conversation: Conversation) -> Said:
    if message.direction == Message.Direction.IN:
        author = conversation.name or conversation.email
    else:
        author = message.author.name if message.author else _("Support")
    return Said(
        id=message.pk,
        direction=message.direction,
        body=message.body,
        author=author,
        at=message.created_at.isoformat(),
    )


def broadcast(group: str, event: dict[str, Any]) -> None:
    """Send an event to a group from synchronous code (a view, a service after commit)."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, event)


def waiting_event(conversation: Conversation) -> dict[str, Any]:
    return {
        "type": "chat.waiting",
        "id": conversation.pk,
        "name": conversation.name or conversation.email,
        "subject": conversation.subject,
        "at": conversation.created_at.isoformat(),
    }


def start(*, body: str, user: User | None = None, email: str = "", name: str = "") -> Conversation:
    """A new chat: a conversation of the desk (channel chat) with its first message;
    the agents' queue hears of it once it is committed."""
    body = _clean(body)
    conversation = services.open_conversation(
        body=body, user=user, email=email, name=name, channel=Channel.CHAT
    )
    transaction.on_commit(lambda: broadcast(AGENTS_GROUP, waiting_event(conversation)))
    return conversation


def _clean(body: str) -> str:
    if not isinstance(body, str):
        raise ChatRefused(_("Write a message."))
    limit = settings.DESK["chat_message_max_chars"]
    if len(body) > limit:
        raise ChatRefused(_("This message is too long (at most %(n)s characters).") % {"n": limit})
    body = body.strip()
    if not body:
        raise ChatRefused(_("Write a message."))
    return body


def visitor_says(conversation: Conversation, body: str) -> Said:
    """The visitor's (or customer's) message, saved (P8) if the chat is live and they
    do not write faster than the limit allows."""
    body = _clean(body)
    # Read again: the agent may have ended the chat since this socket opened.
    status = Conversation.objects.filter(pk=conversation.pk).values_list("status", flat=True)
    if status.first() not in LIVE:
        raise ChatRefused(_("This chat has ended; we answer by email."))
    if not ratelimit.allow(
        "desk.chat",
        conversation.reference,
        limit=settings.DESK["chat_messages_per_window"],
        seconds=settings.DESK["chat_window_seconds"],
    ):
        raise ChatRefused(_("You are writing too fast: wait a moment and send it again."))
    try:
        message = services.add_customer_message(conversation, body=body, channel=Channel.CHAT)
    except services.DeskError as error:
        raise ChatRefused(str(error)) from None
    return said(message, conversation)


def take(conversation: Conversation, *, by: User) -> None:
    """An agent takes a waiting chat: it is theirs, open, and gone from the queue."""
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.channel != Channel.CHAT or locked.status not in LIVE:
            raise ChatRefused(_("This chat has ended."))
        if locked.assignee_id not in (None, by.pk):
            raise ChatRefused(_("Another agent has taken this chat."))
        services.assign(locked, to=by, by=by)
        locked.status = Conversation.Status.OPEN
        locked.updated_at = timezone.now()
        locked.save(update_fields=["status", "updated_at"])
        conversation.assignee, conversation.status = by, locked.status
        event = {"type": "chat.taken", "id": locked.pk, "agent": by.name}
        transaction.on_commit(lambda: broadcast(AGENTS_GROUP, event))
        transaction.on_commit(lambda: broadcast(group_of(locked), event))


def agent_says(conversation: Conversation, *, by: User, body: str) -> Said:
    """The agent's answer in the chat, saved (P8); only by the agent who took it."""
    body = _clean(body)
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.status not in LIVE:
            raise ChatRefused(_("This chat has ended; answer by email."))
        if locked.assignee_id != by.pk:
            raise ChatRefused(_("Take this chat first."))
        message = services.add_message(locked, Message.Direction.OUT, Channel.CHAT, body, author=by)
        services.answered(locked, timezone.now())
        locked.save(update_fields=["updated_at", "first_response_at"])
    return said(message, conversation)


def end(conversation: Conversation, *, by: User | None = None, transcript: bool = False) -> None:
    """The chat ends (the visitor or the agent closes it): the conversation waits on the
    customer and goes on by mail. A transcript is mailed only if the visitor asked."""
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.status in LIVE:
            # Waiting on the customer, as after a mailed answer: the SLA clocks pause.
            services.wait_on_customer(locked, timezone.now())
            locked.save(update_fields=["status", "updated_at", *services.CLOCKS])
            if by is not None:
                audit.record(audit.AuditEvent.Action.UPDATE, locked, by=by, fields=["status"])
        if transcript and by is None:
            shown = locked.messages.exclude(direction=Message.Direction.NOTE).select_related(
                "author"
            )
            lines = [said(m, locked) for m in shown]
            services.mail_customer(
                locked, "desk/mail/transcript", {"lines": lines}, kind=Kind.NOTICE
            )
        conversation.status = locked.status
        event = {"type": "chat.ended", "id": locked.pk}
        transaction.on_commit(lambda: broadcast(group_of(locked), event))
        transaction.on_commit(lambda: broadcast(AGENTS_GROUP, event))


def waiting() -> list[Conversation]:
    """Chats no agent has taken yet, oldest first."""
    return list(
        Conversation.objects.filter(
            channel=Channel.CHAT, status=Conversation.Status.NEW, assignee__isnull=True
        ).order_by("created_at")[:100]
    )
