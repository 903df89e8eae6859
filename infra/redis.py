"""Redis clients: the worker's asyncio one (presence, limits, registry), and a synchronous one.

Redis clients belong to one event loop, so there is one per loop. A blocking
pool (`REDIS_POOL_SIZE` connections): a burst of joins waits for a connection
instead of failing with "Too many connections", for up to
`REDIS_POOL_TIMEOUT` seconds. A full pool is a busy worker, not a lost Redis:
whether Redis answers is asked on a connection of its own (`ping_redis`).

Many coroutines' small writes (a socket's presence and registry entries) go
through `RedisBatch`: whatever is asked in one turn of the loop leaves as one
pipeline, on one pooled connection.

For short commands only: redis-py's connections fail a read after 5 s
(`socket_timeout`) and disconnect. Nothing here blocks or subscribes (the
revocations and the WORKERS group ride the channel layer, whose subscription
connection has no read timeout and a heartbeat: transport/layer.py); a
blocking command (BLPOP, XREAD BLOCK...) or a subscription needs a client of
its own built the same way, not this one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

from infra.cache import SharedConnectionPool
from infra.loopscoped import LoopScoped


def _make_client() -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=settings.REDIS_POOL_SIZE,
        timeout=settings.REDIS_POOL_TIMEOUT,
    )
    return aioredis.Redis(connection_pool=pool)


def _make_probe() -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=1,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=5,
    )
    return aioredis.Redis(connection_pool=pool)


_clients: LoopScoped[aioredis.Redis] = LoopScoped(_make_client)
_probes: LoopScoped[aioredis.Redis] = LoopScoped(_make_probe)


def get_redis() -> aioredis.Redis | None:
    """The running loop's client of `REDIS_URL`; None when there is no Redis (one process)."""
    if not settings.REDIS_URL:
        return None
    return _clients.get()


class RedisBatch:
    """Plain commands (no scripts, no blocking ones) of many callers, one pipeline per turn.

    When thousands of sockets close at once, each one's ZREMs would wait for
    a pooled connection of its own; behind them the worker's other commands
    (a new socket's admission, a join) waited out the pool's timeout. Here
    they take one connection per batch, one round trip for all. A caller
    gets its own command's reply, or its own error (a WRONGTYPE fails that
    command alone); a batch that cannot be sent at all fails all its callers.
    """

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.queue: list[tuple[tuple[Any, ...], asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None

    async def call(self, *command: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((command, future))
        if self.flusher is None:
            self.flusher = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        batch: list[tuple[tuple[Any, ...], asyncio.Future]] = []
        try:
            # Let the callers of this turn of the loop join the batch.
            await asyncio.sleep(0)
            while self.queue:
                batch, self.queue = self.queue, []
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for command, _ in batch:
                            pipe.execute_command(*command)
                        replies = await pipe.execute(raise_on_error=False)
                except Exception as exc:
                    replies = [exc] * len(batch)
                for (_, future), reply in zip(batch, replies, strict=True):
                    if future.done():  # its caller was cancelled
                        continue
                    if isinstance(reply, Exception):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
                batch = []
        finally:
            # Cancelled (the loop is closing): nobody is left waiting forever.
            for _, future in (*batch, *self.queue):
                future.cancel()
            self.queue = []
            self.flusher = None


_batches: LoopScoped[RedisBatch] = LoopScoped(lambda: RedisBatch(_clients.get()))


def get_redis_batch() -> RedisBatch | None:
    """The running loop's `RedisBatch` over `get_redis()`; None when there is no Redis."""
    if get_redis() is None:
        return None
    return _batches.get()


async def ping_redis() -> None:
    """PING `REDIS_URL` on the running loop's connection kept for that; raises when unanswered.

    Not through `get_redis()`'s pool: when thousands of sockets close at once
    their leaves can hold every pooled connection past the pool's timeout, and
    a PING queued behind them would fail with "No connection available" while
    Redis answers in microseconds; the worker's watch would take that for an
    outage and close every socket (signaling/runtime/redis_watch.py). The connection reconnects
    on the next PING after a failure.
    """
    await _probes.get().ping()


def get_sync_redis() -> redis.Redis | None:
    """A client of `REDIS_URL` for synchronous code (HTTP views), on the process's one pool."""
    if not settings.REDIS_URL:
        return None
    return redis.Redis(connection_pool=SharedConnectionPool.from_url(settings.REDIS_URL))
