"""A relay's limits, shared by every worker through Redis: connection slots and the
sending rate. Nothing here waits: a caller told to wait gives its work back and comes
again later (a task requeued with a countdown), so one tenant's slow relay never holds
a worker that another tenant's mail could use.

Without REDIS_URL (the embedded default: one worker) both hold within the process.
"""

from __future__ import annotations

import threading
import time
from collections import deque

# The Redis client lives in core now (the consent app, below, uses it too).
from tidings.core.sharedredis import shared_redis as shared_redis
from tidings.sending.relays import RelayConfig

# A sliding window per limit (a second, an hour): a message goes only if fewer than the
# limit went within the window before it, in every window; then it is recorded in each.
# So no second ever holds more than `rate_per_second` messages and no hour more than
# `rate_per_hour`, however the windows are laid, while a second's worth may still go at
# once. Time is Redis's own, so every machine agrees. Returns 0, or the milliseconds to
# wait. KEYS: the two windows' sorted sets, a sequence. ARGV: the two limits (0: none).
WINDOWS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local spans = {1000, 3600000}
local wait = 0
for i = 1, 2 do
  local limit = tonumber(ARGV[i])
  if limit > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - spans[i])
    local n = redis.call('ZCARD', KEYS[i])
    if n >= limit then
      local oldest = redis.call('ZRANGE', KEYS[i], n - limit, n - limit, 'WITHSCORES')
      local w = tonumber(oldest[2]) + spans[i] - now + 1
      if w > wait then wait = w end
    end
  end
end
if wait > 0 then return wait end
local member = now .. ':' .. redis.call('INCR', KEYS[3])
for i = 1, 2 do
  if tonumber(ARGV[i]) > 0 then
    redis.call('ZADD', KEYS[i], now, member)
    redis.call('PEXPIRE', KEYS[i], spans[i] + 1000)
  end
end
return 0
"""

# A semaphore of connection slots per relay: members are connection tokens, scores
# their expiry (ms). Returns 1 if the token holds a slot now.
SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
  return 1
end
return 0
"""


class _Local:
    """The same two mechanisms within this process, when no Redis is configured."""

    SPANS = (1000.0, 3_600_000.0)

    def __init__(self) -> None:
        self.sent: dict[str, list[deque[float]]] = {}
        self.slots: dict[str, dict[str, float]] = {}
        self.lock = threading.Lock()

    def wait_ms(self, key: str, limits: tuple[int, int]) -> int:
        with self.lock:
            now = time.monotonic() * 1000
            windows = self.sent.setdefault(key, [deque(), deque()])
            wait = 0.0
            for window, limit, span in zip(windows, limits, self.SPANS, strict=True):
                while window and window[0] <= now - span:
                    window.popleft()
                if limit and len(window) >= limit:
                    wait = max(wait, window[len(window) - limit] + span - now + 1)
            if wait > 0:
                return int(wait) + 1
            for window, limit in zip(windows, limits, strict=True):
                if limit:
                    window.append(now)
            return 0

    def take(self, key: str, token: str, size: int, hold_ms: float) -> bool:
        with self.lock:
            now = time.monotonic() * 1000
            held = {t: until for t, until in self.slots.get(key, {}).items() if until > now}
            if token not in held and len(held) >= size:
                self.slots[key] = held
                return False
            held[token] = now + hold_ms
            self.slots[key] = held
            return True

    def give_back(self, key: str, token: str) -> None:
        with self.lock:
            self.slots.get(key, {}).pop(token, None)


_local = _Local()


def reserve(config: RelayConfig) -> int:
    """Record one message against the relay's rate if it allows one now: 0. Otherwise
    nothing is recorded and the milliseconds until it would are returned."""
    limits = (config.rate_per_second, config.rate_per_hour)
    if not any(limits):
        return 0
    client = shared_redis()
    if client is None:
        return _local.wait_ms(config.key, limits)
    keys = [f"tidings:rate:{config.key}:{span}" for span in ("s", "h", "seq")]
    return int(client.eval(WINDOWS, 3, *keys, *limits))


def take_slot(config: RelayConfig, token: str, *, hold_seconds: float) -> bool:
    """Hold one of the relay's `max_connections` slots (all workers together) for at
    most `hold_seconds` (a dead worker's slot comes back then). Taking it again with
    the same token extends it."""
    key = f"tidings:slots:{config.key}"
    client = shared_redis()
    if client is None:
        return _local.take(key, token, config.max_connections, hold_seconds * 1000)
    ok = client.eval(SLOT, 1, key, token, config.max_connections, int(hold_seconds * 1000))
    return bool(ok)


def give_back_slot(config: RelayConfig, token: str) -> None:
    key = f"tidings:slots:{config.key}"
    client = shared_redis()
    if client is None:
        _local.give_back(key, token)
    else:
        client.zrem(key, token)
