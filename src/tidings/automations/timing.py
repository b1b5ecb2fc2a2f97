"""Time in automations: the scheduler's "now", time zones, and when a contact who
reaches a step is due to run it."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings

from tidings.accounts.models import User
from tidings.automations.models import Step

K = Step.Kind
# The contact attributes that may hold a contact's own time zone (an IANA name).
CONTACT_ZONE_KEYS = ("time_zone", "timezone")
UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def account_zone(account_id: int) -> zoneinfo.ZoneInfo:
    """The account's time zone: its first user's that has one, else the operator's."""
    names = (
        User.objects.filter(account_id=account_id)
        .exclude(time_zone="")
        .order_by("pk")
        .values_list("time_zone", flat=True)
    )
    for name in names[:1]:
        if found := _zone(name):
            return found
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def contact_zone(attributes: dict[str, object], fallback: zoneinfo.ZoneInfo) -> zoneinfo.ZoneInfo:
    for key in CONTACT_ZONE_KEYS:
        value = attributes.get(key) if isinstance(attributes, dict) else None
        if isinstance(value, str) and (found := _zone(value)):
            return found
    return fallback


def next_weekday(at: datetime, weekday: int, at_time: dt.time, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first `weekday` at `at_time` (in `zone`) strictly after `at`."""
    local = at.astimezone(zone)
    for days in range(8):
        day = local.date() + timedelta(days=days)
        if day.weekday() != weekday:
            continue
        candidate = datetime.combine(day, at_time, tzinfo=zone)
        if candidate > at:
            return candidate
    raise AssertionError("a weekday comes within eight days")


def due_on_arrival(step: Step, at: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """When a contact arriving at `step` at `at` is due to run it."""
    if step.kind == K.SEND:
        return at + timedelta(days=step.wait_days)
    if step.kind == K.WAIT:
        if step.wait_weekday is not None:
            return next_weekday(at, step.wait_weekday, step.wait_time or dt.time(9, 0), zone)
        return at + timedelta(seconds=step.wait_amount * UNITS.get(step.wait_unit, 86400))
    return at
