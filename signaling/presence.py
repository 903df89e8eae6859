"""Who is really still here: presence with a deadline, so dead peers cannot linger.

Every peer in a room has a deadline. The worker that holds a peer's socket
pushes the deadlines of all its peers forward every `PRESENCE_RENEW_INTERVAL`
seconds in one round trip; a peer whose socket dropped without a goodbye
gets `RESUME_GRACE` seconds to come back. When a worker dies (SIGKILL, a lost
machine) nobody renews its peers, their deadlines pass, and any surviving
worker's sweeper claims them -- atomically, so exactly one worker announces
each `peer-left` (reason `timeout`).

With Redis the deadlines live in one sorted set shared by all workers; without
it (one process, `make run`), in memory. Channels' own `group_expiry` plays no
part: the pub/sub layer keeps no group keys, and a day is far too long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Protocol

from django.conf import settings

from infra.loopscoped import LoopScoped
from infra.redis import RedisBatch, get_redis_batch

logger = logging.getLogger(__name__)

# Claim at most this many expired peers per sweep step; the rest wait a step.
CLAIM_BATCH = 200

# Take over a live peer (resume): only while its deadline has not passed, and
# atomically against the sweepers' claims, so a peer is resumed or expired, never both.
_TAKE_SCRIPT = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""

_CLAIM_SCRIPT = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
"""


class PresenceStore(Protocol):
    async def renew(self, peer_ids: Iterable[str], *, seconds: float) -> None: ...
    async def take(self, peer_id: str, *, seconds: float) -> bool: ...
    async def remove(self, peer_id: str) -> None: ...
    async def deadline(self, peer_id: str) -> float | None: ...
    async def claim_expired(self) -> list[str]: ...
    async def missing(self, peer_ids: list[str]) -> list[str]: ...


class MemoryPresence:
    """One process's presence: fine for the in-memory channel layer, which is one process too."""

    def __init__(self) -> None:
        self.deadlines: dict[str, float] = {}

    async def take(self, peer_id: str, *, seconds: float) -> bool:
        now = time.time()
        if self.deadlines.get(peer_id, 0) <= now:
            return False
        self.deadlines[peer_id] = now + seconds
        return True

    async def renew(self, peer_ids: Iterable[str], *, seconds: float) -> None:
        deadline = time.time() + seconds
        for peer_id in peer_ids:
            self.deadlines[peer_id] = deadline

    async def remove(self, peer_id: str) -> None:
        self.deadlines.pop(peer_id, None)

    async def deadline(self, peer_id: str) -> float | None:
        return self.deadlines.get(peer_id)

    async def claim_expired(self) -> list[str]:
        now = time.time()
        expired = [peer for peer, deadline in self.deadlines.items() if deadline <= now]
        for peer_id in expired[:CLAIM_BATCH]:
            del self.deadlines[peer_id]
        return expired[:CLAIM_BATCH]

    async def missing(self, peer_ids: list[str]) -> list[str]:
        return [peer_id for peer_id in peer_ids if peer_id not in self.deadlines]


class RedisPresence:
    """Deadlines in one Redis sorted set (member = peer id, score = deadline)."""

    def __init__(self, batch: RedisBatch, key: str) -> None:
        # One socket's writes, batched with the other sockets' (infra/redis.py).
        self.batch = batch
        self.redis = batch.redis
        self.key = key
        self.claim = self.redis.register_script(_CLAIM_SCRIPT)
        self.take_script = self.redis.register_script(_TAKE_SCRIPT)

    async def take(self, peer_id: str, *, seconds: float) -> bool:
        now = time.time()
        taken = await self.take_script(keys=[self.key], args=[peer_id, now, now + seconds])
        return bool(taken)

    async def renew(self, peer_ids: Iterable[str], *, seconds: float) -> None:
        deadline = time.time() + seconds
        scored = [arg for peer_id in peer_ids for arg in (deadline, peer_id)]
        if scored:
            await self.batch.call("ZADD", self.key, *scored)

    async def remove(self, peer_id: str) -> None:
        await self.batch.call("ZREM", self.key, peer_id)

    async def deadline(self, peer_id: str) -> float | None:
        return await self.redis.zscore(self.key, peer_id)

    async def claim_expired(self) -> list[str]:
        ids = await self.claim(keys=[self.key], args=[time.time(), CLAIM_BATCH])
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    async def missing(self, peer_ids: list[str]) -> list[str]:
        if not peer_ids:
            return []
        scores = await self.redis.zmscore(self.key, peer_ids)
        return [peer for peer, score in zip(peer_ids, scores, strict=True) if score is None]


def _make_store() -> PresenceStore:
    batch = get_redis_batch()
    if batch is not None:
        return RedisPresence(batch, f"{settings.CHANNEL_LAYER_PREFIX}:presence")
    return MemoryPresence()


_stores: LoopScoped[PresenceStore] = LoopScoped(_make_store)


def get_presence() -> PresenceStore:
    """The presence store of the running event loop (Redis clients are per loop)."""
    return _stores.get()
