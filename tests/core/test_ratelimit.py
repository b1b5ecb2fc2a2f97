"""One limiter (limits' fixed window, counted in Django's cache) for every brake."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from tidings.core import ratelimit


def test_events_past_the_limit_are_refused_and_still_counted():
    results = [ratelimit.allow("t.flood", "203.0.113.5", limit=3, seconds=60) for _ in range(5)]
    assert results == [True, True, True, False, False]
    # Another subject, or another brake, has its own count.
    assert ratelimit.allow("t.flood", "203.0.113.6", limit=3, seconds=60)
    assert ratelimit.allow("t.other", "203.0.113.5", limit=3, seconds=60)


def test_the_window_lasts_the_given_seconds():
    ratelimit.allow("t.window", "s", limit=1, seconds=3600)
    item = ratelimit._item(1, 3600)
    ends = ratelimit._storage.get_expiry(item.key_for("t.window", ratelimit._key("t.window", "s")))
    assert 3590 < ends - time.time() <= 3600


def test_a_spend_that_does_not_fit_spends_nothing():
    assert ratelimit.spend("t.quota", "7", 15, limit=20, seconds=3600)
    assert not ratelimit.spend("t.quota", "7", 10, limit=20, seconds=3600)
    assert ratelimit.spend("t.quota", "7", 5, limit=20, seconds=3600)
    assert not ratelimit.spend("t.quota", "7", 1, limit=20, seconds=3600)


def test_subjects_are_not_kept_in_clear():
    ratelimit.allow("t.clear", "198.51.100.23", limit=3, seconds=60)
    keys = redis.Redis.from_url(settings.REDIS_URL).keys("*")
    assert keys and not any(b"198.51.100.23" in k for k in keys)


def test_clearing_the_cache_lifts_every_brake():
    assert ratelimit.allow("t.reset", "x", limit=1, seconds=60)
    assert not ratelimit.allow("t.reset", "x", limit=1, seconds=60)
    cache.clear()
    assert ratelimit.allow("t.reset", "x", limit=1, seconds=60)


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.redis.RedisCache",
    ],
)
def test_any_configured_cache_holds_the_counts(settings, backend):
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": settings.REDIS_URL}}
    assert [ratelimit.allow("t.any", "y", limit=2, seconds=60) for _ in range(3)] == [
        True,
        True,
        False,
    ]


def test_with_redis_a_counter_and_its_end_always_expire_with_their_window():
    """One script creates the counter with its expiry and increments it: no counter is
    ever left without one (a window ending between two round trips once could)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for _ in range(3):
        ratelimit.allow("t.expiry", "z", limit=5, seconds=120)
    item = ratelimit._item(5, 120)
    key = cache.make_key(item.key_for("t.expiry", ratelimit._key("t.expiry", "z")))
    assert int(client.get(key)) == 3
    assert 0 < client.ttl(key) <= 120 and 0 < client.ttl(f"{key}/ends") <= 120
    # A counter whose window ended is started again, with its expiry.
    client.delete(key)
    assert ratelimit.allow("t.expiry", "z", limit=5, seconds=120)
    assert int(client.get(key)) == 1 and 0 < client.ttl(key) <= 120
