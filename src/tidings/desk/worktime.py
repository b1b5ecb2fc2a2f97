"""Working time for the desk's SLA clocks: pure functions over a `Calendar` (the
operator's time zone, working days, working hours and holidays), and the calendar read
from settings.DESK_HOURS.

A calendar's working time is a clock that runs only within working hours: `add` finds
the first moment when it has run on by an amount, `between` measures how far it ran in
an interval. Hours are wall-clock times in the operator's zone, so across a change to
or from summer time a working day keeps its local hours (and a day of 00:00-24:00 is 23
or 25 hours long). `None` as the calendar is calendar time: every hour counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar whose working days never come (every day a holiday) would loop for ever:
# no due time is further than this.
HORIZON_DAYS = 3 * 366
ZERO = timedelta(0)


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    # Monday is 0.
    days: frozenset[int]
    # Local (start, end) times, sorted, not overlapping; an end of None is midnight at
    # the end of the day (24:00).
    hours: tuple[tuple[time, time | None], ...]
    holidays: frozenset[date] = frozenset()

    def periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of a local day, as UTC moments (none on a day off)."""
        if day.weekday() not in self.days or day in self.holidays:
            return []
        found = []
        for start, end in self.hours:
            begins = datetime.combine(day, start, tzinfo=self.zone)
            if end is None:
                ends = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
            else:
                ends = datetime.combine(day, end, tzinfo=self.zone)
            begins, ends = begins.astimezone(UTC), ends.astimezone(UTC)
            if ends > begins:  # a period lost in a clock change counts for nothing
                found.append((begins, ends))
        return found

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()


def add(calendar: Calendar | None, start: datetime, amount: timedelta) -> datetime:
    """The first moment when `amount` of working time has passed since `start` (before
    it, for a negative amount: the last moment `amount` of working time before)."""
    if calendar is None or not amount:
        return start + amount
    if amount < ZERO:
        return _back(calendar, start, -amount)
    remaining = amount
    day = calendar.local_day(start)
    for _n in range(HORIZON_DAYS):
        for begins, ends in calendar.periods(day):
            if ends <= start:
                continue
            begins = max(begins, start)
            if remaining <= ends - begins:
                return begins + remaining
            remaining -= ends - begins
        day += timedelta(days=1)
    raise ImproperlyConfigured("The desk's working hours leave no working time ahead")


def _back(calendar: Calendar, end: datetime, amount: timedelta) -> datetime:
    remaining = amount
    day = calendar.local_day(end)
    for _n in range(HORIZON_DAYS):
        for begins, ends in reversed(calendar.periods(day)):
            if begins >= end:
                continue
            ends = min(ends, end)
            if remaining <= ends - begins:
                return ends - remaining
            remaining -= ends - begins
        day -= timedelta(days=1)
    raise ImproperlyConfigured("The desk's working hours leave no working time behind")


def signed_between(calendar: Calendar | None, start: datetime, end: datetime) -> timedelta:
    """`between`, negative when `end` comes first."""
    if end >= start:
        return between(calendar, start, end)
    return -between(calendar, end, start)


def retarget(
    due: datetime,
    *,
    at: datetime,
    old: Calendar | None,
    new: Calendar | None,
    change: timedelta,
) -> datetime:
    """A due time when the target changes by `change` at `at` (a new priority): the
    working time left at `at` (negative when overdue), counted in the old calendar,
    changed by `change`, and counted on from `at` in the new one. What was spent stays
    spent; what is left is counted as the new priority counts."""
    return add(new, at, signed_between(old, at, due) + change)


def between(calendar: Calendar | None, start: datetime, end: datetime) -> timedelta:
    """The working time from `start` to `end` (zero when `end` is not after `start`)."""
    if end <= start:
        return ZERO
    if calendar is None:
        return end - start
    total = ZERO
    day, last = calendar.local_day(start), calendar.local_day(end)
    while day <= last:
        for begins, ends in calendar.periods(day):
            overlap = min(ends, end) - max(begins, start)
            if overlap > ZERO:
                total += overlap
        day += timedelta(days=1)
    return total


# Reading the operator's settings (TIDINGS_DESK_*): each bad value is named.


def parse_days(value: str) -> frozenset[int]:
    """Working days: "mon,tue,wed,thu,fri", or ranges: "mon-fri", "mon-thu,sat"."""
    days: set[int] = set()
    for part in filter(None, (p.strip().lower() for p in value.split(","))):
        first, _dash, last = part.partition("-")
        try:
            a = DAY_NAMES.index(first.strip())
            b = DAY_NAMES.index(last.strip()) if last else a
        except ValueError:
            raise ImproperlyConfigured(
                f"TIDINGS_DESK_WORKING_DAYS: {part!r} is not a day (mon, tue, ... sun)"
            ) from None
        if b < a:
            raise ImproperlyConfigured(f"TIDINGS_DESK_WORKING_DAYS: {part!r} runs backwards")
        days.update(range(a, b + 1))
    if not days:
        raise ImproperlyConfigured("TIDINGS_DESK_WORKING_DAYS names no day")
    return frozenset(days)


def _clock(text: str, *, end: bool) -> time | None:
    hours, _colon, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(text)
    h, m = int(hours), int(minutes)
    if end and (h, m) == (24, 0):
        return None
    return time(h, m)  # ValueError past 23:59


def parse_hours(value: str) -> tuple[tuple[time, time | None], ...]:
    """Working hours: "09:00-17:00", or several periods: "08:30-12:00,13:00-17:30";
    "00:00-24:00" is the whole day."""
    periods: list[tuple[time, time | None]] = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        start_text, _dash, end_text = part.partition("-")
        try:
            start = _clock(start_text, end=False)
            end = _clock(end_text, end=True)
        except ValueError:
            raise ImproperlyConfigured(
                f"TIDINGS_DESK_WORKING_HOURS: {part!r} is not HH:MM-HH:MM"
            ) from None
        assert start is not None
        if end is not None and end <= start:
            raise ImproperlyConfigured(
                f"TIDINGS_DESK_WORKING_HOURS: {part!r} ends before it starts"
            )
        periods.append((start, end))
    if not periods:
        raise ImproperlyConfigured("TIDINGS_DESK_WORKING_HOURS names no period")
    periods.sort(key=lambda p: p[0])
    for (_s, previous_end), (next_start, _e) in pairwise(periods):
        if previous_end is None or previous_end > next_start:
            raise ImproperlyConfigured("TIDINGS_DESK_WORKING_HOURS: periods overlap")
    return tuple(periods)


def parse_holidays(value: str) -> frozenset[date]:
    """Holidays: "2026-12-25,2027-01-01", days off in the operator's time zone."""
    found = set()
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            found.add(date.fromisoformat(part))
        except ValueError:
            raise ImproperlyConfigured(
                f"TIDINGS_DESK_HOLIDAYS: {part!r} is not a date (YYYY-MM-DD)"
            ) from None
    return frozenset(found)


def parse_zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"TIDINGS_DESK_TIME_ZONE: {value!r} is not a time zone (e.g. Europe/Paris)"
        ) from None


PRIORITIES = ("low", "normal", "high", "urgent")


@dataclass(frozen=True)
class Targets:
    """One priority's clocks: the calendar they count in, and the two targets."""

    calendar: Calendar | None
    first_response: timedelta
    resolution: timedelta


def parse_targets(name: str, value: str) -> tuple[timedelta, timedelta]:
    """Targets: "4,24", hours to the first answer and to the solution (decimals allowed)."""
    parts = [p.strip() for p in value.split(",")]
    try:
        first, resolution = (float(p) for p in parts)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}: {value!r} is not two numbers of hours, e.g. 4,24"
        ) from None
    if not (0 < first <= resolution <= 24 * 366):
        raise ImproperlyConfigured(
            f"{name}: {value!r}: the first answer's hours must be more than 0 and at most "
            "the solution's"
        )
    return timedelta(hours=first), timedelta(hours=resolution)


def targets(priority: str) -> Targets:
    """The clocks of a conversation of this priority, from the settings."""
    if priority == "normal":
        first, resolution = parse_targets(
            "TIDINGS_DESK_FIRST_RESPONSE_HOURS / _RESOLUTION_HOURS",
            f"{settings.DESK['first_response_hours']},{settings.DESK['resolution_hours']}",
        )
    elif priority in PRIORITIES:
        first, resolution = parse_targets(
            f"TIDINGS_DESK_SLA_{priority.upper()}", settings.DESK_SLA[priority]
        )
    else:
        raise ValueError(f"unknown priority {priority!r}")
    calendar_time = priority == "urgent" and settings.DESK_URGENT_CALENDAR_TIME
    return Targets(None if calendar_time else operator_calendar(), first, resolution)


def check_settings() -> None:
    """Every setting of the clocks read once: a bad one stops Tidings at start."""
    operator_calendar()
    for priority in PRIORITIES:
        targets(priority)


@cache
def _calendar(zone: str, days: str, hours: str, holidays: str) -> Calendar:
    return Calendar(
        zone=parse_zone(zone),
        days=parse_days(days),
        hours=parse_hours(hours),
        holidays=parse_holidays(holidays),
    )


def operator_calendar() -> Calendar:
    """The operator's working time, from settings.DESK_HOURS."""
    config = settings.DESK_HOURS
    return _calendar(config["time_zone"], config["days"], config["hours"], config["holidays"])
