"""SLA clocks: each conversation's first answer and solution are due some hours after it
opened (settings.DESK), the clocks paused while it waits on the customer; the staff's
queue shows what is due and what is overdue (sortable), and counts the overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from tidings.desk import selectors, services
from tidings.desk.models import Conversation
from tidings.staff.models import AuditEvent

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def hours(settings):  # type: ignore[no-untyped-def]
    settings.DESK = {**settings.DESK, "first_response_hours": 8, "resolution_hours": 72}
    # Every hour a working hour unless a test says otherwise (the pausing, sorting and
    # counting of the clocks, whatever the calendar).
    settings.DESK_HOURS = {
        "time_zone": "UTC",
        "days": "mon-sun",
        "hours": "00:00-24:00",
        "holidays": "",
    }
    settings.DESK_SLA = {"low": "16,120", "high": "4,24", "urgent": "1,8"}
    settings.DESK_URGENT_CALENDAR_TIME = True


@pytest.fixture
def office(settings):  # type: ignore[no-untyped-def]
    """The operator works in Paris, Monday to Friday, 9 to 5, and not on Christmas Day."""
    settings.DESK_HOURS = {
        "time_zone": "Europe/Paris",
        "days": "mon-fri",
        "hours": "09:00-17:00",
        "holidays": "2026-12-25",
    }


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


def test_due_times_count_working_hours_only(customer, office, settings, on_commit_runs):
    settings.DESK = {**settings.DESK, "resolution_hours": 16}
    # Friday 16:00: one hour that day, the rest from Monday 9:00.
    friday = opened(customer, paris(2026, 12, 11, 16))
    assert friday.first_response_due_at == paris(2026, 12, 14, 16)
    assert friday.resolution_due_at == paris(2026, 12, 15, 16)
    # Christmas Day is a holiday, then comes the weekend.
    eve = opened(customer, paris(2026, 12, 24, 16))
    assert eve.first_response_due_at == paris(2026, 12, 28, 16)
    # Not overdue over the weekend, as 8 plain hours would be.
    assert not selectors.overdue(paris(2026, 12, 13, 12)).exists()
    assert list(selectors.overdue(paris(2026, 12, 14, 16, 1))) == [friday]


def test_a_pause_gives_back_the_working_time_it_took(
    customer, staff, office, settings, on_commit_runs
):
    settings.DESK = {**settings.DESK, "resolution_hours": 16}
    conversation = opened(customer, paris(2026, 12, 14, 10))
    assert conversation.resolution_due_at == paris(2026, 12, 16, 10)
    with time_machine.travel(paris(2026, 12, 14, 11), tick=False):
        services.reply(conversation, by=staff, body="Which export?")
    # The customer answers on Saturday: the week's 38 working hours are given back.
    with time_machine.travel(paris(2026, 12, 19, 12), tick=False):
        services.add_customer_message(conversation, body="The contacts one.", channel="form")
    conversation.refresh_from_db()
    assert conversation.resolution_due_at == paris(2026, 12, 22, 16)
    assert not selectors.overdue(paris(2026, 12, 22, 15, 59)).exists()
    assert list(selectors.overdue(paris(2026, 12, 22, 16, 1))) == [conversation]


def test_staff_set_the_priority_and_the_clocks_follow(console, staff, customer, office, db):
    friday = paris(2026, 12, 11, 16)
    calm = opened(customer, friday, subject="Calm")
    fire = opened(customer, friday, subject="Fire")
    with time_machine.travel(friday + timedelta(minutes=30), tick=False):
        client = console(staff)
        response = client.post(
            f"/staff/desk/{fire.pk}/", {"action": "priority", "priority": "urgent"}
        )
        assert response.status_code == 302
    fire.refresh_from_db()
    assert fire.priority == Conversation.Priority.URGENT
    # Urgent counts every hour: 1 to the first answer, 8 to the solution, from opening.
    assert fire.first_response_due_at == friday + timedelta(hours=1)
    assert fire.resolution_due_at == friday + timedelta(hours=8)
    event = AuditEvent.objects.filter(target_id=str(fire.pk)).latest("pk")
    assert event.fields == ["priority"] and event.actor_id == staff.pk
    client.logout()
    with time_machine.travel(paris(2026, 12, 12, 10), tick=False):
        client = console(staff)
        page = client.get("/staff/desk/?sort=due").text
        # On Saturday only the urgent one is overdue; it is listed first.
        assert "1 conversation is overdue." in page
        assert page.index("Fire") < page.index("Calm")
        assert "urgent" in page and "normal" in page
    assert calm.priority == Conversation.Priority.NORMAL


def test_an_unknown_priority_is_refused_and_changes_nothing(console, staff, customer, db):
    conversation = opened(customer, START)
    events = AuditEvent.objects.count()
    with time_machine.travel(START + timedelta(minutes=5), tick=False):
        response = console(staff).post(
            f"/staff/desk/{conversation.pk}/", {"action": "priority", "priority": "critical"}
        )
    assert response.status_code == 400 and "Unknown priority: critical" in response.text
    before = conversation.first_response_due_at
    conversation.refresh_from_db()
    assert conversation.priority == Conversation.Priority.NORMAL
    assert conversation.first_response_due_at == before
    assert not any("priority" in e.fields for e in AuditEvent.objects.all())
    assert AuditEvent.objects.count() > events  # the page itself was audited, nothing more


def test_a_lower_priority_keeps_the_time_spent(customer, staff, office, on_commit_runs):
    conversation = opened(customer, paris(2026, 12, 14, 10))
    with time_machine.travel(paris(2026, 12, 14, 12), tick=False):
        services.set_priority(conversation, priority=Conversation.Priority.LOW, by=staff)
    conversation.refresh_from_db()
    # 2 working hours spent of 16: 14 left from Monday 12:00.
    assert conversation.first_response_due_at == paris(2026, 12, 16, 10)
    with pytest.raises(services.DeskError):
        services.set_priority(conversation, priority="", by=staff)
