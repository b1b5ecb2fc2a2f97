"""The time the schedulers go by: `now()`.

In production it is the real time. For trying a welcome series or an A/B test by hand
without waiting days, a development installation may run with a test clock
(`TIDINGS_TEST_CLOCK=true`, only with `TIDINGS_DEBUG=true`; settings refuse it
otherwise): `tidings clock advance 2d` moves it forward for every process at once (the
offset is kept in the shared cache: the database's on the embedded default, Redis
otherwise), `tidings clock reset` brings it back. Time only moves forward, so nothing
that was due becomes not due.

What goes by this clock: the automations' scheduler, the A/B tests' decisions and the
start of scheduled campaigns (send-time variants among them; docs/automations.md).
Everything else (sessions, tokens, audit times, retention) keeps the real time, so a
moved clock never expires a login or erases data early.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

KEY = "tidings:test-clock:offset-seconds"
_STEP = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def enabled() -> bool:
    return bool(getattr(settings, "TEST_CLOCK", False))


def offset() -> timedelta:
    """How far the test clock is ahead of the real time (zero when it is off)."""
    if not enabled():
        return timedelta(0)
    return timedelta(seconds=float(cache.get(KEY) or 0))


def now() -> datetime:
    return timezone.now() + offset()


def parse_step(text: str) -> timedelta:
    """'90m', '2d', '1w' → a duration; anything else is a ValueError that says why."""
    match = _STEP.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: a number and s, m, h, d or w (2d, 90m)")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def advance(step: timedelta) -> timedelta:
    """Move the test clock forward by `step`; returns the new offset."""
    if not enabled():
        raise RuntimeError(
            "the test clock is off (TIDINGS_TEST_CLOCK=true with TIDINGS_DEBUG=true)"
        )
    if step <= timedelta(0):
        raise ValueError("the clock only moves forward")
    new = offset() + step
    cache.set(KEY, new.total_seconds(), timeout=None)
    return new


def reset() -> None:
    cache.delete(KEY)
