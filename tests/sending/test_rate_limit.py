"""Relay rate limits are shared by every worker through Redis (sliding windows in a Lua
script), and never make a worker wait: `reserve` answers at once, with how long to wait
when the relay is at its limit."""

from __future__ import annotations

import threading
import time

import pytest

from tidings.sending import limits
from tidings.sending.relays import RelayConfig


def config(key: str, per_second: int = 0, per_hour: int = 0) -> RelayConfig:
    limits.shared_redis().delete(  # type: ignore[union-attr]
        *[f"tidings:rate:{key}:{span}" for span in ("s", "h", "seq")]
    )
    return RelayConfig(
        key=key,
        id=None,
        name=key,
        host="127.0.0.1",
        port=25,
        security="none",
        username="",
        password="",
        max_connections=2,
        rate_per_second=per_second,
        rate_per_hour=per_hour,
    )


def test_no_second_holds_more_than_the_per_second_limit_across_threads():
    relay = config("t1", per_second=20)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        granted = 0
        while granted < 15:
            wait_ms = limits.reserve(relay)
            if wait_ms:
                time.sleep(wait_ms / 1000)  # what a requeued job's countdown does
                continue
            granted += 1
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    # 60 messages at 20 a second, a second's worth at once: at least 2 s.
    assert len(stamps) == 60 and stamps[-1] - start >= 1.9
    for i, first in enumerate(stamps):
        in_window = [s for s in stamps[i:] if s - first < 0.95]
        assert len(in_window) <= 20


def test_at_the_limit_reserve_answers_at_once_with_the_wait():
    relay = config("t2", per_second=5)
    assert [limits.reserve(relay) for _ in range(5)] == [0] * 5
    start = time.monotonic()
    wait_ms = limits.reserve(relay)
    assert time.monotonic() - start < 0.05  # nothing slept
    assert 0 < wait_ms <= 1001


def test_the_hourly_limit_holds_for_the_whole_hour():
    relay = config("t3", per_hour=3)
    assert [limits.reserve(relay) for _ in range(3)] == [0, 0, 0]
    assert limits.reserve(relay) > 3_500_000  # the next one in about an hour


@pytest.mark.parametrize("per_second", [0])
def test_no_limit_means_no_wait(per_second):
    relay = config("t4", per_second=per_second)
    assert all(limits.reserve(relay) == 0 for _ in range(100))


def test_connection_slots_are_shared_and_come_back():
    relay = config("t5")  # max_connections=2
    limits.shared_redis().delete("tidings:slots:t5")  # type: ignore[union-attr]
    assert limits.take_slot(relay, "a", hold_seconds=30)
    assert limits.take_slot(relay, "b", hold_seconds=30)
    assert not limits.take_slot(relay, "c", hold_seconds=30)
    limits.give_back_slot(relay, "a")
    assert limits.take_slot(relay, "c", hold_seconds=30)
