"""One Redis connection pool per process for Django's cache.

Django keeps a cache object per thread and asyncio context, and each
`RedisCache` makes its own connection pool. Under Channels every WebSocket is
a context of its own and every database call runs in a copy of it, so the
cache (sessions, join and login counters) opened a new Redis connection for
almost every use, which showed in the join profile. redis-py's pools are
thread-safe, so one per URL and options serves the whole process.
"""

from __future__ import annotations

import threading
from typing import Any

import redis

_pools: dict[tuple[str, tuple[tuple[str, Any], ...]], redis.ConnectionPool] = {}
_lock = threading.Lock()


class SharedConnectionPool(redis.ConnectionPool):
    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> redis.ConnectionPool:
        key = (url, tuple(sorted(kwargs.items())))
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = super().from_url(url, **kwargs)
            return pool
