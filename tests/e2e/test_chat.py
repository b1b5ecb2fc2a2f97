"""Live chat in two browsers: a visitor on the contact page (nothing of the chat loaded,
no cookie, before they click, P29) and an agent on the desk talk through a real ASGI
server (uvicorn serving tidings.asgi, as `tidings up` and `tidings chat` do). No timing:
each step waits for the text the other side should see."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from channels.layers import channel_layers
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.staff.conftest import log_in_verified, state_reason
from tidings.asgi import application
from tidings.desk.models import Channel, Conversation, Message

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def asgi_server(transactional_db, settings, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """uvicorn in a thread of this process (it sees the test's database and settings),
    with the in-memory channel layer the embedded default runs on. Each request runs in
    a thread of its own, as under `tidings chat`; its connection is closed when it ends
    (`tidings chat` lends them from a pool), or the test database could not be dropped."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings.BASE_URL = url
    settings.CSRF_TRUSTED_ORIGINS = [url]
    # A person takes seconds to fill the form; the test does not.
    settings.DESK = {**settings.DESK, "form_min_seconds": 0}
    settings.CELERY_TASK_ALWAYS_EAGER = True
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not started.is_set():
        started.wait(0.05)
        if server.started:
            started.set()
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        channel_layers.backends.clear()


def _context(browser: Browser) -> tuple[BrowserContext, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    violations: list[str] = []
    context.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return context, violations


def _agent_context(browser: Browser, url: str, staff) -> tuple[BrowserContext, list[str]]:  # type: ignore[no-untyped-def]
    """A browser logged in as a verified agent with a stated reason (the console's rules)."""
    client = Client()
    log_in_verified(client, staff)
    state_reason(client)
    context, violations = _context(browser)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": url}]
    )
    return context, violations


@pytest.mark.promise("P29", "P3", "P2")
def test_a_visitor_and_an_agent_chat_in_two_browsers_and_it_goes_on_by_mail(
    browser: Browser, asgi_server: str, staff, mailoutbox
):
    url = asgi_server
    agent_context, agent_violations = _agent_context(browser, url, staff)
    visitor_context, visitor_violations = _context(browser)
    try:
        agent: Page = agent_context.new_page()
        agent.goto(f"{url}/staff/desk/")
        expect(agent.locator("#chat-queue-status")).to_have_text("You are online for chat.")

        visitor: Page = visitor_context.new_page()
        requested: list[str] = []
        visitor.on("request", lambda r: requested.append(r.url))
        sockets: list[str] = []
        visitor.on("websocket", lambda ws: sockets.append(ws.url))
        visitor.goto(f"{url}/contact/")
        # P29: before the click, no chat script, no WebSocket, no cookie.
        assert not [u for u in requested if "chat" in u], requested
        assert sockets == [] and visitor_context.cookies() == []
        visitor.get_by_role("link", name="Chat with us").first.click()
        visitor.get_by_label("Email").fill("vi@example.net")
        visitor.get_by_label("Name").fill("Vi")
        visitor.get_by_label("Your message").fill("Hello, my export is empty")
        visitor.get_by_role("button", name="Start the chat").click()
        expect(visitor.locator("#chat-log")).to_contain_text("Hello, my export is empty")

        # The waiting chat appears live in the agent's queue.
        agent.locator("#chat-waiting a", has_text="Vi").click()
        expect(agent.locator("#chat-log")).to_contain_text("Hello, my export is empty")
        agent.get_by_role("button", name="Take this chat").click()
        expect(visitor.locator("#chat-status")).to_have_text("Support Agent is answering you.")
        agent.locator("#chat-body").fill("Hello Vi, let me look")
        agent.locator("#chat-form").get_by_role("button", name="Send").click()
        expect(visitor.locator("#chat-log")).to_contain_text("Hello Vi, let me look")
        visitor.locator("#chat-body").fill("Thank you")
        expect(agent.locator("#chat-typing")).to_be_visible()
        visitor.locator("#chat-form").get_by_role("button", name="Send").click()
        expect(agent.locator("#chat-log")).to_contain_text("Thank you")

        visitor.get_by_label("Mail me a transcript of this chat at vi@example.net").check()
        visitor.get_by_role("button", name="End the chat").click()
        expect(visitor.locator("#chat-after")).to_be_visible()
        expect(agent.locator("#chat-status")).to_have_text("This chat has ended.")
    finally:
        agent_context.close()
        visitor_context.close()
    assert agent_violations == [] and visitor_violations == []

    conversation = Conversation.objects.get()
    assert conversation.channel == Channel.CHAT and conversation.assignee == staff
    assert conversation.status == Conversation.Status.WAITING  # it goes on by mail
    assert list(conversation.messages.values_list("body", flat=True)) == [
        "Hello, my export is empty",
        "Hello Vi, let me look",
        "Thank you",
    ]
    assert Message.objects.filter(channel=Channel.CHAT).count() == 3
    transcript = [m for m in mailoutbox if m.to == ["vi@example.net"]]
    assert len(transcript) == 1 and "Hello Vi, let me look" in transcript[0].body
