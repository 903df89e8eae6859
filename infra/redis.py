"""Redis clients: the worker's asyncio one (presence, limits, registry), and a synchronous one.

Redis clients belong to one event loop, so there is one per loop. A blocking
pool: a burst of joins waits for a connection instead of failing with "Too
many connections".

For short commands only: redis-py's connections fail a read after 5 s
(`socket_timeout`) and disconnect. Nothing here blocks or subscribes (the
revocations and the WORKERS group ride the channel layer, whose subscription
connection has no read timeout and a heartbeat: transport/layer.py); a
blocking command (BLPOP, XREAD BLOCK...) or a subscription needs a client of
its own built the same way, not this one.
"""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis
from django.conf import settings

from infra.cache import SharedConnectionPool

_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}


def get_redis() -> aioredis.Redis | None:
    """The running loop's client of `REDIS_URL`; None when there is no Redis (one process)."""
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=32, timeout=10
        )
        client = _clients[loop] = aioredis.Redis(connection_pool=pool)
    return client


def get_sync_redis() -> redis.Redis | None:
    """A client of `REDIS_URL` for synchronous code (HTTP views), on the process's one pool."""
    if not settings.REDIS_URL:
        return None
    return redis.Redis(connection_pool=SharedConnectionPool.from_url(settings.REDIS_URL))
