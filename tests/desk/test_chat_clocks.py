"""A chat runs the desk's SLA clocks as mail does: the agent's first answer in the chat is
the conversation's first answer, and a chat that ends waits on the customer, its clocks
paused until they write again (found walking the chat by hand: the queue would have
shown an answered chat overdue eight hours later)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from tidings.desk import chat, services
from tidings.desk.models import Channel, Conversation

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_an_answer_in_the_chat_is_the_first_answer_and_its_end_pauses_the_clocks(
    db, staff, settings, on_commit_runs
):
    settings.DESK = {**settings.DESK, "first_response_hours": 8, "resolution_hours": 72}
    with time_machine.travel(START, tick=False):
        conversation = chat.start(body="Hello?", email="vi@example.net", name="Vi")
    with time_machine.travel(START + timedelta(minutes=2), tick=False):
        chat.take(conversation, by=staff)
        chat.agent_says(conversation, by=staff, body="Hello Vi")
    with time_machine.travel(START + timedelta(minutes=5), tick=False):
        chat.agent_says(conversation, by=staff, body="Anything else?")
    with time_machine.travel(START + timedelta(minutes=10), tick=False):
        chat.end(conversation)
    conversation.refresh_from_db()
    assert conversation.first_response_at == START + timedelta(minutes=2)
    assert conversation.status == Conversation.Status.WAITING
    assert conversation.paused_at == START + timedelta(minutes=10)

    # Vi writes back two days later: those days are not staff's.
    with time_machine.travel(START + timedelta(days=2, minutes=10), tick=False):
        services.add_customer_message(conversation, body="It broke again", channel=Channel.MAIL)
    conversation.refresh_from_db()
    assert conversation.paused_at is None
    assert conversation.resolution_due_at == START + timedelta(hours=72, days=2)
