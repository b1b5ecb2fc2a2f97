"""Brakes on what people can set off: sign-ups, confirmation mails, contacts' requests,
campaign test sends, failed logins per client. One limiter for all of them.

The strategy is `limits`'s fixed window (a window starts at the first event and lasts
`seconds`); the counters live in Django's cache, the store every web process already
shares (Redis when configured, else the database's cache table), so a limit holds across
processes and clearing the cache clears them. A subject (an IP address, an address) is
keyed by an HMAC, never stored in clear. Login throttling per address is django-axes's
(accounts.throttling adds the limit per client), and the
relay's sending rate is `sending.limits` (a sliding window in Redis): neither is this.
"""

from __future__ import annotations

import math
import pickle
import time

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.utils.crypto import salted_hmac
from limits import RateLimitItemPerSecond
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

# With Redis as the cache, a count is one round trip: the window's counter is created
# with its expiry when it is not there (its end written beside it), then incremented, in
# one script, so a window that ends between two steps never leaves a counter without
# expiry. KEYS: the counter, its end (the cache's own keys). ARGV: the amount, the
# window's seconds, its end as the cache stores a float (pickled).
_INCR = """
if redis.call('SET', KEYS[1], 0, 'EX', ARGV[2], 'NX') then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[2])
end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"""


def _redis_cache() -> RedisCache | None:
    backend = caches["default"]
    return backend if isinstance(backend, RedisCache) else None


class CacheStorage(Storage):
    """A `limits` storage on Django's default cache (fixed windows only)."""

    STORAGE_SCHEME = ["django-cache"]

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        if (backend := _redis_cache()) is not None:
            # The cache's own client (its `_cache`: Django's, stable since 4.0) and keys.
            client = backend._cache.get_client(write=True)
            ends = pickle.dumps(time.time() + expiry, pickle.HIGHEST_PROTOCOL)
            keys = [backend.make_and_validate_key(k) for k in (key, f"{key}/ends")]
            return int(client.eval(_INCR, 2, *keys, amount, max(1, int(expiry)), ends))
        if cache.add(key, amount, timeout=expiry):
            cache.set(f"{key}/ends", time.time() + expiry, timeout=expiry)
            return amount
        try:
            return int(cache.incr(key, amount))
        except ValueError:  # the window ended between add and incr: start a new one
            cache.set(key, amount, timeout=expiry)
            cache.set(f"{key}/ends", time.time() + expiry, timeout=expiry)
            return amount

    def get(self, key: str) -> int:
        return int(cache.get(key, 0))

    def get_expiry(self, key: str) -> float:
        return float(cache.get(f"{key}/ends") or time.time())

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        return None  # the cache holds more than counters: clear keys one by one

    def clear(self, key: str) -> None:
        cache.delete_many([key, f"{key}/ends"])


_storage = CacheStorage()
_limiter = FixedWindowRateLimiter(_storage)


def _item(limit: int, seconds: int) -> RateLimitItemPerSecond:
    return RateLimitItemPerSecond(limit, seconds, namespace="tidings")


def _key(name: str, subject: str) -> str:
    return salted_hmac(f"tidings.ratelimit.{name}", subject).hexdigest()[:32]


def allow(name: str, subject: str, *, limit: int, seconds: int) -> bool:
    """Count one event of `name` for `subject`; False once more than `limit` were
    counted in the window (an event refused still counts: a flood stays held back)."""
    return _limiter.hit(_item(limit, seconds), name, _key(name, subject))


def exceeded(name: str, subject: str, *, limit: int, seconds: int) -> bool:
    """Whether `subject` has used up its allowance of `name` in the window (counts
    nothing)."""
    return not _limiter.test(_item(limit, seconds), name, _key(name, subject))


def spend(name: str, subject: str, amount: int, *, limit: int, seconds: int) -> bool:
    """Spend `amount` of `subject`'s allowance if it all fits in the window; when it
    does not, nothing is spent and the answer is False."""
    item = _item(limit, seconds)
    key = _key(name, subject)
    if _limiter.hit(item, name, key, cost=amount):
        return True
    _storage.incr(item.key_for(name, key), item.get_expiry(), amount=-amount)
    return False


def seconds_left(name: str, subject: str, *, limit: int, seconds: int) -> int:
    """Whole seconds until `subject`'s window of `name` ends (at least 1): what a
    `Retry-After` header says."""
    item = _item(limit, seconds)
    stats = _limiter.get_window_stats(item, name, _key(name, subject))
    return max(1, math.ceil(stats.reset_time - time.time()))
