"""The live chat's WebSockets (desk.chat says what holds): the visitor's, opened by the
chat's signed token; the agent's on one chat; and the agents' queue, where waiting chats
appear. Each frame is JSON with a "type"; what the server sends has one too. A frame
larger than a message can be closes the socket (1009); anything else refused is
answered {"type": "refused", "error": ..., "ref": <the client's ref>} and saved nowhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation.trans_real import (
    get_supported_language_variant,
    parse_accept_lang_header,
)

from tidings.desk import chat, services
from tidings.desk.models import CannedAnswer, Channel, Conversation

T = TypeVar("T")
# Refused at once, before it is even parsed: a frame no message of the limit can make
# (each character escaped in JSON takes at most 6).
TOO_LONG = gettext_lazy("This message is too long.")
TYPING_EVERY = 1.0
CLOSE_REFUSED = 4403
CLOSE_TOO_BIG = 1009


def frame_max() -> int:
    return settings.DESK["chat_message_max_chars"] * 6 + 1024


def _language(scope: dict[str, Any]) -> str:
    """The visitor's language as the pages choose it: their pick in the footer (the
    language cookie), else their browser's."""
    wanted = [scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME, "")]
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            wanted += [code for code, _q in parse_accept_lang_header(value.decode("latin-1"))]
    for code in wanted:
        try:
            return get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class ChatSocket(AsyncWebsocketConsumer):
    """What the three sockets share: JSON frames, refusals, events passed on."""

    groups_joined: list[str]
    language: str = settings.LANGUAGE_CODE
    last_typing = 0.0

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A synchronous call (the database, the services) in the person's language."""

        def call() -> T:
            with translation.override(self.language):
                return function(*args, **kwargs)

        # Not thread-sensitive: each call takes a thread of the pool and a database
        # connection of its own, so one slow write does not hold up every chat of the
        # process (thread-sensitive calls all share one thread).
        return await database_sync_to_async(call, thread_sensitive=False)()

    async def join(self, *groups: str) -> None:
        self.groups_joined = list(groups)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def send_json(self, value: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(value))

    async def refuse(self, error: str, ref: Any = None) -> None:
        await self.send_json({"type": "refused", "error": error, "ref": ref})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > frame_max():
            await self.refuse(await self.run(str, TOO_LONG))
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.refuse("bad frame")
            return
        await self.handle(frame["type"], frame)

    async def handle(self, kind: str, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    async def typing(self, group: str, who: str) -> None:
        now = time.monotonic()
        if now - self.last_typing >= TYPING_EVERY:
            self.last_typing = now
            await self.channel_layer.group_send(group, {"type": "chat.typing", "who": who})

    async def forward(self, event: dict[str, Any]) -> None:
        await self.send_json({**event, "type": event["type"].removeprefix("chat.")})

    chat_message = chat_typing = chat_presence = chat_taken = chat_ended = forward
    chat_waiting = forward


class VisitorChat(ChatSocket):
    """/ws/desk/chat/<token>/: the visitor's (or the customer's) side of one chat."""

    conversation: Conversation

    async def connect(self) -> None:
        self.language = _language(self.scope)
        token = self.scope["url_route"]["kwargs"]["token"]
        try:
            self.conversation = await self.run(
                chat.conversation_for, token, user=self.scope.get("user")
            )
        except chat.ChatRefused:
            await self.close(code=CLOSE_REFUSED)
            return
        await self.join(chat.group_of(self.conversation))
        await self.accept()
        await self.presence(online=True)

    async def presence(self, *, online: bool) -> None:
        await self.channel_layer.group_send(
            chat.group_of(self.conversation),
            {"type": "chat.presence", "who": "visitor", "online": online},
        )

    async def disconnect(self, code: int) -> None:
        if getattr(self, "groups_joined", None):
            await self.presence(online=False)
        await super().disconnect(code)

    async def handle(self, kind: str, frame: dict[str, Any]) -> None:
        group = chat.group_of(self.conversation)
        if kind == "message":
            try:
                said = await self.run(chat.visitor_says, self.conversation, frame.get("body"))
            except chat.ChatRefused as error:
                await self.refuse(str(error), frame.get("ref"))
                return
            # Saved (encrypted) before anyone is told.
            await self.channel_layer.group_send(group, said.event())
        elif kind == "typing":
            await self.typing(group, "visitor")
        elif kind == "end":
            await self.run(chat.end, self.conversation, transcript=frame.get("transcript") is True)
        else:
            await self.refuse("unknown type", frame.get("ref"))


class AgentChat(ChatSocket):
    """/ws/desk/agent/<pk>/: the agent's side of one chat, from its desk page."""

    conversation: Conversation

    async def connect(self) -> None:
        self.agent = self.scope.get("user")
        self.language = getattr(self.agent, "language", "") or settings.LANGUAGE_CODE
        refusal = await self.run(
            chat.agent_refusal, self.agent, self.scope["session"], permission=chat.CHANGE
        )
        found = await self.run(
            lambda: Conversation.objects.filter(
                pk=self.scope["url_route"]["kwargs"]["pk"], channel=Channel.CHAT
            ).first()
        )
        if refusal is not None or found is None:
            await self.close(code=CLOSE_REFUSED)
            return
        self.conversation = found
        await self.run(chat.agent_seen, self.agent)
        await self.join(chat.group_of(found))
        await self.accept()
        await self.channel_layer.group_send(
            chat.group_of(found), {"type": "chat.presence", "who": "agent", "online": True}
        )

    async def disconnect(self, code: int) -> None:
        if getattr(self, "groups_joined", None):
            await self.channel_layer.group_send(
                chat.group_of(self.conversation),
                {"type": "chat.presence", "who": "agent", "online": False},
            )
        await super().disconnect(code)

    async def handle(self, kind: str, frame: dict[str, Any]) -> None:
        group = chat.group_of(self.conversation)
        try:
            if kind == "message":
                said = await self.run(
                    chat.agent_says, self.conversation, by=self.agent, body=frame.get("body")
                )
                await self.channel_layer.group_send(group, said.event())
            elif kind == "typing":
                await self.typing(group, "agent")
            elif kind == "take":
                await self.run(chat.take, self.conversation, by=self.agent)
            elif kind == "end":
                await self.run(chat.end, self.conversation, by=self.agent)
            elif kind == "canned":
                text = await self.run(self.canned, frame.get("id"))
                await self.send_json({"type": "canned", "text": text})
            elif kind == "ping":
                await self.run(chat.agent_seen, self.agent)
            else:
                await self.refuse("unknown type", frame.get("ref"))
        except chat.ChatRefused as error:
            await self.refuse(str(error), frame.get("ref"))

    def canned(self, pk: Any) -> str:
        """A canned answer filled in for this chat, as the desk fills it for mail."""
        found = CannedAnswer.objects.filter(pk=pk).first() if isinstance(pk, int) else None
        if found is None:
            raise chat.ChatRefused(_("No such canned answer."))
        return services.fill_canned(found, self.conversation, agent=self.agent)


class AgentQueue(ChatSocket):
    """/ws/desk/queue/: the agents' queue page; waiting chats appear here live, and an
    open page keeps its agent online (pinged every 20 seconds)."""

    async def connect(self) -> None:
        self.agent = self.scope.get("user")
        refusal = await self.run(chat.agent_refusal, self.agent, self.scope["session"])
        if refusal is not None:
            await self.close(code=CLOSE_REFUSED)
            return
        await self.run(chat.agent_seen, self.agent)
        await self.join(chat.AGENTS_GROUP)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "groups_joined", None):
            await self.run(chat.agent_left, self.agent)
        await super().disconnect(code)

    async def handle(self, kind: str, frame: dict[str, Any]) -> None:
        if kind == "ping":
            await self.run(chat.agent_seen, self.agent)
        else:
            await self.refuse("unknown type", frame.get("ref"))


class Refused(AsyncWebsocketConsumer):
    """Any other path: refused at the handshake (rather than an error in the server)."""

    async def connect(self) -> None:
        await self.close(code=CLOSE_REFUSED)
