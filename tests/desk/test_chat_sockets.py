"""The live chat's WebSockets through the real ASGI application (Channels' communicator):
a visitor and an agent talk, every message saved before it is broadcast; and the bad
input of issue 19 refused with nothing lost: a 1 MB message, 100 messages a second,
another origin, a tampered token or another conversation's, someone else's customer
chat, and the agents' side without the console's rights.

The consumers reach the database from threads of their own, as in the server: what a
test writes must be committed for them to see it, so `transactional_db`. The layer is
the in-memory one, and Redis's where a test says so."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.core import signing
from django.db import connection, connections
from django.test import Client

from tests.factories import UserFactory
from tests.staff.conftest import log_in_verified, state_reason
from tidings.asgi import application as asgi_application
from tidings.desk import chat
from tidings.desk.models import CannedAnswer, Channel, Conversation, Message

ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture
def application(settings, monkeypatch) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """The ASGI application with a channel layer of this test's own (a layer holds
    connections bound to one event loop, and each test runs its own). The consumers'
    threads close their database connections after each call, as `tidings chat`'s give
    them back to the pool, or the test database could not be dropped at the end."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    channel_layers.backends.clear()
    yield asgi_application
    channel_layers.backends.clear()


@pytest.fixture(params=["memory", "redis"])
def layer(request, settings) -> str:  # type: ignore[no-untyped-def]
    """The embedded default's in-memory layer, and Redis's (several processes)."""
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("Redis's channel layer needs REDIS_URL")
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": "tidings-chat-test"},
            }
        }
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return str(request.param)


# The sockets the running test opened, each disconnected before its event loop closes.
_opened: list[WebsocketCommunicator] = []


def run(test: Callable[[], Awaitable[None]]) -> None:
    """Run a test's coroutine, then disconnect every socket it opened and left open,
    refused ones included: a refused consumer still waits for its disconnect, and a
    consumer left to be cancelled when the loop closes can hang it in Redis's layer
    (seen under load: the tampered-token test never returned)."""

    async def whole() -> None:
        try:
            await test()
        finally:
            while _opened:
                communicator = _opened.pop()
                with contextlib.suppress(Exception):
                    await communicator.disconnect(timeout=5)

    async_to_sync(whole)()


def cookie_of(client: Client) -> str:
    return "; ".join(f"{k}={v.value}" for k, v in client.cookies.items())


async def socket(
    application: Any, path: str, *, origin: str = ORIGIN, cookie: str = ""
) -> tuple[WebsocketCommunicator, bool]:
    headers = [(b"origin", origin.encode()), (b"host", b"127.0.0.1:8000")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    _opened.append(communicator)
    connected, _code = await communicator.connect(timeout=5)
    return communicator, connected


async def next_of(communicator: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    """The next frame of `kind`, skipping the others (presence, typing)."""
    while True:
        frame = await communicator.receive_json_from(timeout=5)
        if frame["type"] == kind:
            return frame


@pytest.fixture
def visitor_chat(transactional_db) -> Conversation:  # type: ignore[no-untyped-def]
    return chat.start(body="Hello, is anyone there?", email="visitor@example.net", name="Vi")


@pytest.fixture
def agent_cookie(transactional_db, staff) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    log_in_verified(client, staff)
    state_reason(client)
    return cookie_of(client)


def test_a_visitor_and_an_agent_talk_and_every_message_is_saved_first(
    layer, application, visitor_chat, agent_cookie, staff
):
    token = chat.token_for(visitor_chat)
    canned_id = CannedAnswer.objects.create(
        title="Hi", body="Hello {{ customer_name }}, I am {{ agent_name }}."
    ).pk
    heard_ids: list[int] = []

    async def talk() -> None:
        visitor, ok = await socket(application, f"/ws/desk/chat/{token}/")
        assert ok
        agent, ok = await socket(
            application, f"/ws/desk/agent/{visitor_chat.pk}/", cookie=agent_cookie
        )
        assert ok
        await agent.send_json_to({"type": "take"})
        taken = await next_of(visitor, "taken")
        assert taken["agent"] == "Support Agent"
        await agent.send_json_to({"type": "canned", "id": canned_id})
        canned = await next_of(agent, "canned")
        assert canned["text"] == "Hello Vi, I am Support Agent."
        await agent.send_json_to({"type": "message", "body": canned["text"]})
        heard = await next_of(visitor, "message")
        assert heard["body"] == "Hello Vi, I am Support Agent." and heard["direction"] == "out"
        await visitor.send_json_to({"type": "typing"})
        assert (await next_of(agent, "typing"))["who"] == "visitor"
        await visitor.send_json_to({"type": "message", "body": "My export is empty."})
        heard = await next_of(agent, "message")
        assert heard["body"] == "My export is empty." and heard["direction"] == "in"
        heard_ids.append(heard["id"])
        await visitor.disconnect()
        await agent.disconnect()

    run(talk)
    # Saved before it was broadcast: the id the agent got is a stored message.
    stored = Message.objects.get(pk=heard_ids[0])
    assert stored.body == "My export is empty." and stored.channel == Channel.CHAT
    visitor_chat.refresh_from_db()
    assert visitor_chat.assignee == staff and visitor_chat.status == Conversation.Status.OPEN
    assert list(visitor_chat.messages.values_list("direction", flat=True)) == ["in", "out", "in"]


@pytest.mark.promise("P8")
def test_chat_messages_are_encrypted_at_rest(application, visitor_chat):
    token = chat.token_for(visitor_chat)

    async def say() -> None:
        visitor, _ok = await socket(application, f"/ws/desk/chat/{token}/")
        await visitor.send_json_to({"type": "message", "body": "my secret order 4521"})
        await next_of(visitor, "message")
        await visitor.disconnect()

    run(say)
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM desk_message")
        raw = " ".join(str(row[0]) for row in cursor.fetchall())
    assert "4521" not in raw and "anyone there" not in raw


def test_a_one_megabyte_message_is_refused_and_nothing_is_saved(application, visitor_chat):
    token = chat.token_for(visitor_chat)

    async def flood() -> None:
        visitor, _ok = await socket(application, f"/ws/desk/chat/{token}/")
        await visitor.send_to(text_data=json.dumps({"type": "message", "body": "x" * 1_000_000}))
        refused = await next_of(visitor, "refused")
        assert "too long" in refused["error"]
        closed = await visitor.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 1009}

    run(flood)
    assert visitor_chat.messages.count() == 1


def test_a_message_just_over_the_limit_is_refused_and_the_chat_goes_on(
    application, visitor_chat, settings
):
    token = chat.token_for(visitor_chat)
    limit = settings.DESK["chat_message_max_chars"]

    async def long() -> None:
        visitor, _ok = await socket(application, f"/ws/desk/chat/{token}/")
        await visitor.send_json_to({"type": "message", "body": "x" * (limit + 1), "ref": 7})
        refused = await next_of(visitor, "refused")
        assert refused["ref"] == 7
        await visitor.send_json_to({"type": "message", "body": "x" * limit})
        assert len((await next_of(visitor, "message"))["body"]) == limit
        await visitor.disconnect()

    run(long)
    assert visitor_chat.messages.count() == 2


def test_a_hundred_messages_at_once_excess_refused_and_nothing_accepted_is_lost(
    application, visitor_chat, settings
):
    token = chat.token_for(visitor_chat)
    allowed = settings.DESK["chat_messages_per_window"]

    async def burst() -> None:
        visitor, _ok = await socket(application, f"/ws/desk/chat/{token}/")
        for n in range(100):
            await visitor.send_json_to({"type": "message", "body": f"message {n}", "ref": n})
        accepted, refused = [], []
        while len(accepted) + len(refused) < 100:
            frame = await visitor.receive_json_from(timeout=5)
            if frame["type"] == "message":
                accepted.append(frame["body"])
            elif frame["type"] == "refused":
                refused.append(frame["ref"])
        assert len(accepted) == allowed and len(refused) == 100 - allowed
        assert accepted == [f"message {n}" for n in range(allowed)]
        await visitor.disconnect()

    run(burst)
    stored = list(visitor_chat.messages.order_by("pk").values_list("body", flat=True))
    assert stored == ["Hello, is anyone there?", *(f"message {n}" for n in range(allowed))]


def test_a_websocket_from_another_origin_is_refused(application, visitor_chat):
    token = chat.token_for(visitor_chat)

    async def cross() -> None:
        _visitor, ok = await socket(
            application, f"/ws/desk/chat/{token}/", origin="https://evil.example"
        )
        assert not ok

    run(cross)


def test_a_tampered_token_or_another_conversations_is_refused(application, visitor_chat):
    other = chat.start(body="Me too", email="other@example.net")
    mine = chat.token_for(visitor_chat)
    tampered = mine[:-2] + ("AA" if not mine.endswith("AA") else "BB")
    # Signed for something else (the rating links' salt), or a reference not a chat's.
    forged_salt = signing.dumps({"r": visitor_chat.reference}, salt="tidings.desk.rating")
    not_a_chat = Conversation.objects.create(
        email="x@example.net", queue=visitor_chat.queue, channel=Channel.FORM
    )

    async def tries() -> None:
        for token in (tampered, forged_salt, chat.token_for(not_a_chat), str(visitor_chat.pk)):
            _socket, ok = await socket(application, f"/ws/desk/chat/{token}/")
            assert not ok, token
        # The other visitor's valid token opens their chat, and hears nothing of mine.
        theirs, ok = await socket(application, f"/ws/desk/chat/{chat.token_for(other)}/")
        assert ok
        await next_of(theirs, "presence")  # their own arrival
        visitor, _ok = await socket(application, f"/ws/desk/chat/{mine}/")
        await visitor.send_json_to({"type": "message", "body": "private"})
        await next_of(visitor, "message")
        assert await theirs.receive_nothing(timeout=0.2)
        await theirs.disconnect()
        await visitor.disconnect()

    run(tries)


def test_a_customers_chat_needs_that_customer_logged_in(
    application, transactional_db, customer, other_customer
):
    theirs = chat.start(body="Billing question", user=customer)
    token = chat.token_for(theirs)
    intruder = Client()
    intruder.force_login(other_customer)
    owner = Client()
    owner.force_login(customer)

    async def tries() -> None:
        _s, ok = await socket(application, f"/ws/desk/chat/{token}/")
        assert not ok  # nobody logged in
        _s, ok = await socket(application, f"/ws/desk/chat/{token}/", cookie=cookie_of(intruder))
        assert not ok  # another account's customer
        own, ok = await socket(application, f"/ws/desk/chat/{token}/", cookie=cookie_of(owner))
        assert ok
        await own.disconnect()

    run(tries)


def test_the_agents_side_needs_the_consoles_rights(application, visitor_chat, customer, staff):
    customer_client = Client()
    customer_client.force_login(customer)
    unverified = Client()
    unverified.force_login(staff)
    no_reason = Client()
    log_in_verified(no_reason, UserFactory(email="b@operator.example", is_staff=True, account=None))

    async def tries() -> None:
        for cookie in ("", cookie_of(customer_client), cookie_of(unverified)):
            for path in (f"/ws/desk/agent/{visitor_chat.pk}/", "/ws/desk/queue/"):
                _s, ok = await socket(application, path, cookie=cookie)
                assert not ok, (path, cookie)
        # A visitor's token does not open the agents' side either.
        _s, ok = await socket(application, f"/ws/desk/agent/{chat.token_for(visitor_chat)}/")
        assert not ok
        _s, ok = await socket(application, "/ws/desk/queue/", cookie=cookie_of(no_reason))
        assert not ok

    run(tries)


def test_a_visitor_cannot_join_another_group_and_unknown_frames_change_nothing(
    application, visitor_chat
):
    token = chat.token_for(visitor_chat)

    async def tries() -> None:
        visitor, _ok = await socket(application, f"/ws/desk/chat/{token}/")
        for frame in ({"type": "join", "group": chat.AGENTS_GROUP}, {"type": "take"}, [1, 2]):
            await visitor.send_json_to(frame)
            assert (await next_of(visitor, "refused"))["error"]
        await visitor.send_to(text_data="not json")
        assert (await next_of(visitor, "refused"))["error"] == "bad frame"
        await visitor.disconnect()

    run(tries)
    visitor_chat.refresh_from_db()
    assert visitor_chat.assignee is None and visitor_chat.messages.count() == 1


def test_the_queue_hears_of_a_new_chat_and_of_it_being_taken(application, agent_cookie, staff):
    async def watch() -> None:
        queue, ok = await socket(application, "/ws/desk/queue/", cookie=agent_cookie)
        assert ok
        assert await database_sync(chat.agents_online) == 1
        started = await database_sync(
            lambda: chat.start(body="Hi", email="new@example.net", name="New")
        )
        waiting = await next_of(queue, "waiting")
        assert waiting["id"] == started.pk and waiting["name"] == "New"
        await database_sync(lambda: chat.take(started, by=staff))
        assert (await next_of(queue, "taken"))["id"] == started.pk
        await queue.disconnect()
        assert await database_sync(chat.agents_online) == 0

    run(watch)


async def database_sync(function: Callable[[], Any]) -> Any:
    return await database_sync_to_async(function)()


def test_an_ended_chat_goes_on_by_mail_and_mails_a_transcript_only_if_asked(
    application, transactional_db, mailoutbox, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    asked = chat.start(body="Please send me this", email="keep@example.net")
    not_asked = chat.start(body="No copy please", email="nocopy@example.net")

    async def end() -> None:
        for conversation, transcript in ((asked, True), (not_asked, False)):
            token = chat.token_for(conversation)
            visitor, _ok = await socket(application, f"/ws/desk/chat/{token}/")
            await visitor.send_json_to({"type": "end", "transcript": transcript})
            await next_of(visitor, "ended")
            await visitor.send_json_to({"type": "message", "body": "after the end"})
            assert "ended" in (await next_of(visitor, "refused"))["error"]
            await visitor.disconnect()

    run(end)
    for conversation in (asked, not_asked):
        conversation.refresh_from_db()
        assert conversation.status == Conversation.Status.WAITING
    assert [m.to for m in mailoutbox] == [["keep@example.net"]]
    assert "Please send me this" in mailoutbox[0].body


def test_when_the_agent_ends_the_chat_the_visitor_can_no_longer_write_in_it(
    application, visitor_chat, agent_cookie, staff
):
    token = chat.token_for(visitor_chat)

    async def end() -> None:
        visitor, _ok = await socket(application, f"/ws/desk/chat/{token}/")
        agent, _ok = await socket(
            application, f"/ws/desk/agent/{visitor_chat.pk}/", cookie=agent_cookie
        )
        await agent.send_json_to({"type": "take"})
        await agent.send_json_to({"type": "end"})
        await next_of(visitor, "ended")
        await visitor.send_json_to({"type": "message", "body": "one more thing"})
        assert "ended" in (await next_of(visitor, "refused"))["error"]
        await agent.send_json_to({"type": "message", "body": "late answer"})
        assert "ended" in (await next_of(agent, "refused"))["error"]
        await visitor.disconnect()
        await agent.disconnect()

    run(end)
    assert visitor_chat.messages.count() == 1
