"""Relay rate limits are shared by every worker through Redis (GCRA in a Lua script)."""

from __future__ import annotations

import threading
import time

import pytest

from tidings.sending.transport import RelayConfig, shared_redis, wait_for_rate


def config(relay_id: int, per_second: int = 0, per_hour: int = 0) -> RelayConfig:
    return RelayConfig(
        id=relay_id,
        host="127.0.0.1",
        port=25,
        security="none",
        username="",
        password="",
        max_connections=2,
        rate_per_second=per_second,
        rate_per_hour=per_hour,
        esp="",
    )


def test_the_per_second_limit_holds_across_threads():
    client = shared_redis()
    assert client is not None
    client.delete("tidings:rate:9001:s", "tidings:rate:9001:h")
    relay = config(9001, per_second=20)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            wait_for_rate(relay)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 60 messages at 20/s with a burst of one second's worth: about 2 s, never under 1.9.
    elapsed = max(stamps) - start
    assert len(stamps) == 60 and elapsed >= 1.9, elapsed


def test_the_hourly_limit_refuses_beyond_a_minutes_burst():
    client = shared_redis()
    assert client is not None
    client.delete("tidings:rate:9002:s", "tidings:rate:9002:h")
    relay = config(9002, per_hour=120)  # two a minute: a burst of two, then one each 30 s
    deadline = time.monotonic() + 0.5
    allowed = sum(wait_for_rate(relay, deadline=deadline) for _ in range(5))
    assert allowed == 2


@pytest.mark.parametrize("per_second", [0])
def test_no_limit_means_no_wait(per_second):
    start = time.monotonic()
    for _ in range(100):
        assert wait_for_rate(config(9003, per_second=per_second))
    assert time.monotonic() - start < 0.5
