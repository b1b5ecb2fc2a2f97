"""The one Redis client of a process, for what is shared between the web and worker
processes beyond Django's cache (the tracking stream, relay limits, buffered counters).
None without REDIS_URL (the embedded default): each caller then does its work in the
database or within its process."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def shared_redis() -> redis.Redis | None:
    url = settings.REDIS_URL
    return _redis(url) if url else None
