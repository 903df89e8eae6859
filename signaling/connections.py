"""Which signaling sockets each account holds open, across every worker: the per-user cap.

A socket is admitted only while its account holds fewer than
`SOCKETS_PER_USER` sockets anywhere; otherwise it is closed at once (4429).
Each entry carries a deadline, like presence (signaling/presence.py): the worker
holding the socket pushes it forward every `PRESENCE_RENEW_INTERVAL`, and a
socket that closes takes its entry out. A worker that dies without closing
its sockets leaves entries that lapse after `PRESENCE_TTL`, so a crash can
lock an account out for at most that long, never for good.

With Redis: one sorted set per account (member = channel name, score =
deadline), checked and added to atomically by a script, so two sockets
opening at once on two workers cannot both take the last place. Without
Redis (one process), in memory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from django.conf import settings

from infra.loopscoped import LoopScoped
from infra.redis import RedisBatch, get_redis_batch

# KEYS[1] the account's set; ARGV: now, deadline, cap, channel, key lifetime.
_ADMIT_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class ConnectionRegistry(Protocol):
    async def admit(self, *, user_id: int, channel: str) -> bool: ...
    async def release(self, *, user_id: int, channel: str) -> None: ...
    async def renew(self, sockets: Mapping[int, list[str]]) -> None: ...
    async def count(self, *, user_id: int) -> int: ...


class MemoryConnections:
    def __init__(self) -> None:
        self.deadlines: dict[int, dict[str, float]] = {}

    async def admit(self, *, user_id: int, channel: str) -> bool:
        now = time.time()
        mine = {c: d for c, d in self.deadlines.get(user_id, {}).items() if d > now}
        if len(mine) >= settings.SOCKETS_PER_USER:
            self.deadlines[user_id] = mine
            return False
        mine[channel] = now + settings.PRESENCE_TTL
        self.deadlines[user_id] = mine
        return True

    async def release(self, *, user_id: int, channel: str) -> None:
        mine = self.deadlines.get(user_id)
        if mine is not None:
            mine.pop(channel, None)
            if not mine:
                del self.deadlines[user_id]

    async def renew(self, sockets: Mapping[int, list[str]]) -> None:
        deadline = time.time() + settings.PRESENCE_TTL
        for user_id, channels in sockets.items():
            mine = self.deadlines.setdefault(user_id, {})
            for channel in channels:
                mine[channel] = deadline

    async def count(self, *, user_id: int) -> int:
        now = time.time()
        return sum(1 for d in self.deadlines.get(user_id, {}).values() if d > now)


class RedisConnections:
    def __init__(self, batch: RedisBatch, prefix: str) -> None:
        # A closing socket's ZREM, batched with the others' (infra/redis.py).
        self.batch = batch
        self.redis = batch.redis
        self.prefix = prefix
        self.admit_script = self.redis.register_script(_ADMIT_SCRIPT)

    def key(self, user_id: int) -> str:
        return f"{self.prefix}:sockets:{user_id}"

    async def admit(self, *, user_id: int, channel: str) -> bool:
        now = time.time()
        ttl = settings.PRESENCE_TTL
        admitted = await self.admit_script(
            keys=[self.key(user_id)],
            args=[now, now + ttl, settings.SOCKETS_PER_USER, channel, ttl * 2],
        )
        return bool(admitted)

    async def release(self, *, user_id: int, channel: str) -> None:
        await self.batch.call("ZREM", self.key(user_id), channel)

    async def renew(self, sockets: Mapping[int, list[str]]) -> None:
        if not sockets:
            return
        ttl = settings.PRESENCE_TTL
        deadline = time.time() + ttl
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id, channels in sockets.items():
                key = self.key(user_id)
                pipe.zadd(key, dict.fromkeys(channels, deadline))
                pipe.expire(key, ttl * 2)
            await pipe.execute()

    async def count(self, *, user_id: int) -> int:
        return await self.redis.zcount(self.key(user_id), time.time(), "+inf")


def _make_registry() -> ConnectionRegistry:
    batch = get_redis_batch()
    if batch is not None:
        return RedisConnections(batch, settings.CHANNEL_LAYER_PREFIX)
    return MemoryConnections()


_registries: LoopScoped[ConnectionRegistry] = LoopScoped(_make_registry)


def get_connections() -> ConnectionRegistry:
    """The registry of the running event loop (Redis clients are per loop)."""
    return _registries.get()
