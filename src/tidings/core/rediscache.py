"""Django's Redis cache, with one client per connection pool kept for the process.

Django's `RedisCacheClient.get_client` builds a new `redis.Redis` around the pool for
every operation. Building one fills its table of a few hundred response callbacks:
about 0.15 ms of CPU on these machines, more than the round trip's own share, paid on
each `cache.get` of a public page (the hosted form's kept page, the preference page's
attribute names, the banner's third parties) and on each rate limit. A `redis.Redis`
holds no connection of its own (each command takes one from the pool and gives it
back), so one per pool serves every thread of the process; after a fork the pool
notices the new process and opens its own connections.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class KeptClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # id(pool) -> its client; the pools themselves are kept for the process.
        self._clients: dict[int, Any] = {}

    # The stubs leave out Django's private helpers used below (stable since Django 4.0).
    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            # Two threads may both build one at first: either serves, the other is dropped.
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(DjangoRedisCache):
    """`django.core.cache.backends.redis.RedisCache` with its clients kept."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = KeptClient
