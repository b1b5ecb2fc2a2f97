"""Working time for the SLA clocks (desk/worktime.py): adding and measuring working time
across evenings, weekends, holidays, lunch breaks and changes of summer time in the
operator's zone; reading the operator's settings, each bad value named."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tidings.desk import worktime
from tidings.desk.worktime import Calendar, add, between, retarget, signed_between

PARIS = ZoneInfo("Europe/Paris")
OFFICE = Calendar(
    zone=PARIS,
    days=frozenset(range(5)),
    hours=((time(9), time(17)),),
    holidays=frozenset({date(2026, 12, 25)}),
)
LUNCH = Calendar(
    zone=PARIS,
    days=frozenset(range(5)),
    hours=((time(8, 30), time(12)), (time(13), time(17, 30))),
)
ALWAYS_PARIS = Calendar(zone=PARIS, days=frozenset(range(7)), hours=((time(0), None),))
H = timedelta(hours=1)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        (paris(2026, 12, 7, 10), 3, paris(2026, 12, 7, 13)),  # Monday, within the day
        (paris(2026, 12, 7, 16), 2, paris(2026, 12, 8, 10)),  # over the evening
        (paris(2026, 12, 7, 9), 8, paris(2026, 12, 7, 17)),  # exactly the day: 17:00
        (paris(2026, 12, 7, 7), 1, paris(2026, 12, 7, 10)),  # before the office opens
        (paris(2026, 12, 11, 16), 2, paris(2026, 12, 14, 10)),  # Friday over the weekend
        (paris(2026, 12, 12, 12), 1, paris(2026, 12, 14, 10)),  # opened on Saturday
        (paris(2026, 12, 24, 16), 2, paris(2026, 12, 28, 10)),  # Christmas, then weekend
        (paris(2026, 12, 7, 10), 72, paris(2026, 12, 18, 10)),  # 9 working days
    ],
)
def test_adding_working_time(start, hours, due):
    assert add(OFFICE, start, hours * H) == due
    # Measuring it back gives the same amount.
    assert between(OFFICE, start, due) == hours * H


def test_nothing_to_add_leaves_the_moment_as_it_is():
    saturday = paris(2026, 12, 12, 12)
    assert add(OFFICE, saturday, timedelta(0)) == saturday


def test_a_lunch_break_does_not_count():
    assert add(LUNCH, paris(2026, 12, 7, 11), 2 * H) == paris(2026, 12, 7, 14)
    assert between(LUNCH, paris(2026, 12, 7, 11, 30), paris(2026, 12, 7, 13, 30)) == H
    assert between(LUNCH, paris(2026, 12, 7), paris(2026, 12, 8)) == 8 * H


def test_spring_forward_keeps_local_office_hours():
    # Summer time starts in Paris on Sunday 28 March 2027 (UTC+1 to UTC+2).
    friday = paris(2027, 3, 26, 16)
    due = add(OFFICE, friday, 2 * H)
    assert due == paris(2027, 3, 29, 10)
    assert due.astimezone(UTC) == datetime(2027, 3, 29, 8, tzinfo=UTC)
    assert friday.astimezone(UTC) == datetime(2027, 3, 26, 15, tzinfo=UTC)


def test_fall_back_keeps_local_office_hours():
    # Summer time ends on Sunday 25 October 2026 (UTC+2 to UTC+1).
    due = add(OFFICE, paris(2026, 10, 23, 16), 2 * H)
    assert due.astimezone(UTC) == datetime(2026, 10, 26, 9, tzinfo=UTC)


def test_a_whole_day_is_23_or_25_hours_when_the_clocks_change():
    assert between(ALWAYS_PARIS, paris(2027, 3, 28), paris(2027, 3, 29)) == 23 * H
    assert between(ALWAYS_PARIS, paris(2026, 10, 25), paris(2026, 10, 26)) == 25 * H
    # Calendar time in the zone is real elapsed time.
    assert add(ALWAYS_PARIS, paris(2027, 3, 28), 24 * H) == paris(2027, 3, 29, 1)


def test_working_time_backwards_and_signed():
    monday = paris(2026, 12, 14, 10)
    assert add(OFFICE, monday, -2 * H) == paris(2026, 12, 11, 16)
    assert signed_between(OFFICE, monday, paris(2026, 12, 11, 16)) == -2 * H
    assert between(OFFICE, monday, paris(2026, 12, 11, 16)) == timedelta(0)


def test_calendar_time_counts_every_hour():
    start = datetime(2026, 12, 12, 12, tzinfo=UTC)
    assert add(None, start, 5 * H) == start + 5 * H
    assert between(None, start, start + 30 * H) == 30 * H


@hsettings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 30),
    calendar=st.sampled_from([OFFICE, LUNCH, ALWAYS_PARIS]),
)
def test_add_and_between_agree(start, minutes, calendar):
    amount = timedelta(minutes=minutes)
    due = add(calendar, start, amount)
    assert due >= start
    assert between(calendar, start, due) == amount
    # The first such moment: just before it, less had passed.
    if amount:
        assert between(calendar, start, due - timedelta(seconds=1)) < amount
        assert add(calendar, due, -amount) >= start


def test_a_pause_moves_the_due_time_by_the_working_time_it_took():
    # Due Tuesday 12:00; paused Friday 16:00, resumed Monday 10:00: 2 working hours.
    due = paris(2026, 12, 15, 12)
    paused = between(OFFICE, paris(2026, 12, 11, 16), paris(2026, 12, 14, 10))
    assert paused == 2 * H
    assert add(OFFICE, due, paused) == paris(2026, 12, 15, 14)


def test_a_new_target_keeps_what_was_spent():
    # Opened Friday 16:00 with 8 working hours, made urgent (1 hour, calendar time) at
    # 16:30: half an hour is left, counted in calendar time.
    opened = paris(2026, 12, 11, 16)
    due = add(OFFICE, opened, 8 * H)
    at = opened + H / 2
    assert retarget(due, at=at, old=OFFICE, new=None, change=-7 * H) == opened + H
    # Made low (16 hours) instead: 8 more working hours.
    assert retarget(due, at=at, old=OFFICE, new=OFFICE, change=8 * H) == paris(2026, 12, 15, 16)


def test_a_calendar_with_no_working_time_ahead_is_refused():
    mondays = frozenset(date(2026, 12, 7) + timedelta(weeks=n) for n in range(200))
    empty = Calendar(
        zone=PARIS, days=frozenset({0}), hours=((time(9), time(17)),), holidays=mondays
    )
    with pytest.raises(ImproperlyConfigured):
        add(empty, paris(2026, 12, 7), H)


def test_the_settings_are_read():
    assert worktime.parse_days("mon-fri") == frozenset(range(5))
    assert worktime.parse_days("Mon, wed-thu ,sun") == frozenset({0, 2, 3, 6})
    assert worktime.parse_hours("13:00-17:30, 08:30-12:00") == (
        (time(8, 30), time(12)),
        (time(13), time(17, 30)),
    )
    assert worktime.parse_hours("00:00-24:00") == ((time(0), None),)
    assert worktime.parse_holidays("2026-12-25, 2027-01-01,") == {
        date(2026, 12, 25),
        date(2027, 1, 1),
    }
    assert worktime.parse_targets("X", "0.5, 4") == (H / 2, 4 * H)


@pytest.mark.parametrize(
    ("parse", "value", "says"),
    [
        (worktime.parse_days, "mon-fry", "TIDINGS_DESK_WORKING_DAYS: 'mon-fry'"),
        (worktime.parse_days, "fri-mon", "runs backwards"),
        (worktime.parse_days, " , ", "names no day"),
        (worktime.parse_hours, "9-17", "TIDINGS_DESK_WORKING_HOURS: '9-17'"),
        (worktime.parse_hours, "17:00-09:00", "ends before it starts"),
        (worktime.parse_hours, "09:00-25:00", "not HH:MM-HH:MM"),
        (worktime.parse_hours, "09:00-13:00,12:00-17:00", "overlap"),
        (worktime.parse_hours, "", "names no period"),
        (worktime.parse_holidays, "2026-13-01", "TIDINGS_DESK_HOLIDAYS: '2026-13-01'"),
        (worktime.parse_zone, "Mars/Olympus", "TIDINGS_DESK_TIME_ZONE"),
        (lambda v: worktime.parse_targets("TIDINGS_DESK_SLA_HIGH", v), "4", "two numbers"),
        (lambda v: worktime.parse_targets("TIDINGS_DESK_SLA_HIGH", v), "8,4", "at most"),
        (lambda v: worktime.parse_targets("TIDINGS_DESK_SLA_HIGH", v), "0,4", "more than 0"),
    ],
)
def test_a_bad_setting_is_named(parse, value, says):
    with pytest.raises(ImproperlyConfigured, match=says.replace("(", r"\(")):
        parse(value)


def test_a_bad_setting_stops_tidings_at_start(settings):
    settings.DESK_HOURS = {**settings.DESK_HOURS, "holidays": "25/12/2026"}
    with pytest.raises(SystemCheckError, match="TIDINGS_DESK_HOLIDAYS"):
        call_command("check")
    settings.DESK_HOURS = {**settings.DESK_HOURS, "holidays": ""}
    settings.DESK_SLA = {**settings.DESK_SLA, "urgent": "soon"}
    with pytest.raises(SystemCheckError, match="TIDINGS_DESK_SLA_URGENT"):
        call_command("check")


def test_each_priority_has_its_targets(settings):
    settings.DESK = {**settings.DESK, "first_response_hours": 8, "resolution_hours": 72}
    settings.DESK_SLA = {"low": "16,120", "high": "4,24", "urgent": "1,8"}
    settings.DESK_URGENT_CALENDAR_TIME = True
    normal = worktime.targets("normal")
    assert (normal.first_response, normal.resolution) == (8 * H, 72 * H)
    assert normal.calendar is not None
    assert worktime.targets("high").first_response == 4 * H
    assert worktime.targets("urgent").calendar is None
    settings.DESK_URGENT_CALENDAR_TIME = False
    assert worktime.targets("urgent").calendar is not None
    with pytest.raises(ValueError, match="unknown priority"):
        worktime.targets("critical")
