"""infra/cache.py: Django's Redis cache shares one connection pool per process."""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import sync_to_async
from django.core.cache.backends.redis import RedisCache

from tests.integration.conftest import REDIS_URL

OPTIONS = {"pool_class": "infra.cache.SharedConnectionPool"}


def make_cache() -> RedisCache:
    return RedisCache(
        REDIS_URL, {"KEY_PREFIX": f"cache-test-{uuid.uuid4().hex[:8]}", "OPTIONS": OPTIONS}
    )


def test_cache_objects_share_one_pool_and_its_connections():
    """Two cache objects (as two threads or contexts get) use one pool, and it works."""
    first, second = make_cache(), make_cache()
    first.set("k", 1)
    assert first.get("k") == 1
    assert second._cache._get_connection_pool(False) is first._cache._get_connection_pool(True)


async def test_many_contexts_do_not_open_a_connection_each():
    """Cache use from 50 database-thread contexts opens a handful of connections, not 50."""
    pool = make_cache()._cache._get_connection_pool(False)

    def use() -> None:
        cache = make_cache()
        cache.set("x", 1)
        cache.get("x")

    await asyncio.gather(*(sync_to_async(use, thread_sensitive=False)() for _ in range(50)))
    assert len(pool._available_connections) + len(pool._in_use_connections) <= 10
