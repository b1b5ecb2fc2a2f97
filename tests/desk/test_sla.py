"""SLA clocks: each conversation's first answer and solution are due some hours after it
opened (settings.DESK), the clocks paused while it waits on the customer; the staff's
queue shows what is due and what is overdue (sortable), and counts the overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tidings.desk import selectors, services
from tidings.desk.models import Conversation

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def hours(settings):  # type: ignore[no-untyped-def]
    settings.DESK = {**settings.DESK, "first_response_hours": 8, "resolution_hours": 72}


def opened(customer, at: datetime, subject: str = "Help") -> Conversation:  # type: ignore[no-untyped-def]
    with time_machine.travel(at, tick=False):
        return services.open_conversation(user=customer, subject=subject, body="Please")


def test_a_new_conversation_gets_both_due_times(customer, on_commit_runs):
    conversation = opened(customer, START)
    assert conversation.first_response_due_at == START + timedelta(hours=8)
    assert conversation.resolution_due_at == START + timedelta(hours=72)
    assert conversation.first_response_at is None


def test_the_first_answer_is_recorded_once(customer, staff, on_commit_runs):
    conversation = opened(customer, START)
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        services.reply(conversation, by=staff, body="Looking into it.")
    with time_machine.travel(START + timedelta(hours=5), tick=False):
        services.add_customer_message(conversation, body="Thanks", channel="form")
        services.reply(conversation, by=staff, body="Done.")
    conversation.refresh_from_db()
    assert conversation.first_response_at == START + timedelta(hours=2)


def test_waiting_on_the_customer_pauses_the_clocks(customer, staff, on_commit_runs):
    conversation = opened(customer, START)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        services.reply(conversation, by=staff, body="Which export?")
    # The customer answers four days later: those days are not staff's.
    with time_machine.travel(START + timedelta(days=4, hours=1), tick=False):
        assert not selectors.overdue(START + timedelta(days=4, hours=1)).exists()
        services.add_customer_message(conversation, body="The contacts one.", channel="form")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN and conversation.paused_at is None
    assert conversation.resolution_due_at == START + timedelta(hours=72, days=4)
    late = START + timedelta(hours=72, days=4, minutes=1)
    assert list(selectors.overdue(late)) == [conversation]


def test_staff_setting_waiting_pauses_and_solved_stops(customer, staff, on_commit_runs):
    conversation = opened(customer, START)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        services.set_status(conversation, status=Conversation.Status.WAITING, by=staff)
    with time_machine.travel(START + timedelta(hours=11), tick=False):
        services.set_status(conversation, status=Conversation.Status.OPEN, by=staff)
    conversation.refresh_from_db()
    assert conversation.first_response_due_at == START + timedelta(hours=18)
    with time_machine.travel(START + timedelta(hours=12), tick=False):
        services.set_status(conversation, status=Conversation.Status.SOLVED, by=staff)
    assert not selectors.overdue(START + timedelta(days=30)).exists()


def test_the_queue_shows_due_and_overdue_sorted_and_counted(console, staff, customer, db):
    calm = opened(customer, START, subject="Calm")
    urgent = opened(customer, START + timedelta(hours=1), subject="Urgent")
    late = opened(customer, START - timedelta(hours=10), subject="Late")
    with time_machine.travel(START + timedelta(hours=2), tick=False):
        client = console(staff)
        page = client.get("/staff/desk/?sort=due").text
        # Overdue first, then the nearest due; the overdue one is said so and counted.
        assert page.index("Late") < page.index("Calm") < page.index("Urgent")
        assert "1 conversation is overdue." in page
        assert "overdue by 4\xa0hours" in page and 'class="desk-overdue"' in page
        assert "in 6\xa0hours" in page and "in 7\xa0hours" in page
        reverse = client.get("/staff/desk/?sort=-due").text
        assert reverse.index("Urgent") < reverse.index("Calm") < reverse.index("Late")
    client.logout()  # the staff session would have ended by then
    with time_machine.travel(START + timedelta(hours=9, minutes=30), tick=False):
        client = console(staff)
        page = client.get("/staff/desk/").text
        assert "3 conversations are overdue." in page
        shown = client.get(f"/staff/desk/{calm.pk}/").text
        assert "overdue by 1\xa0hour" in shown
    assert urgent.pk and late.pk


def test_the_queue_shows_no_overdue_when_none_is(console, staff, customer, db):
    opened(customer, START)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        page = console(staff).get("/staff/desk/").text
    assert "No conversation is overdue." in page and "desk-overdue" not in page
