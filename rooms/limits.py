"""Limits that keep one client from hurting anyone else.

- `TokenBucket`: the per-connection message rate. Bursts pass (a mesh join
  sends an offer and a score of candidates to each peer at once); a sustained
  flood is refused message by message with `rate-limited`, and a connection
  that keeps flooding runs out of strikes and is closed with 4429. Pure
  arithmetic on the connection's own state: it never slows another room.
- Failed joins (unknown room numbers, wrong PINs) per user, counted in Redis
  (shared by the workers; the in-process cache without Redis), so room
  numbers and PINs cannot be enumerated by trying.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from rooms.redis_client import get_redis


class TokenBucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, *, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def message_bucket() -> TokenBucket:
    return TokenBucket(rate=settings.SIGNALING_RATE, capacity=settings.SIGNALING_BURST)


def strike_bucket() -> TokenBucket:
    # Refusals tolerated in a row before the connection is closed; one forgiven per second.
    return TokenBucket(rate=1, capacity=settings.SIGNALING_RATE_STRIKES)


def _failure_key(user_id: int) -> str:
    window = int(time.time() // settings.JOIN_FAILURE_WINDOW)
    return f"{settings.CHANNEL_LAYER_PREFIX}:join-failures:{user_id}:{window}"


async def join_blocked(*, user_id: int) -> bool:
    key = _failure_key(user_id)
    redis = get_redis()
    # On the worker's own asyncio client: a join asks this every time, and a
    # thread hop plus a connection per call showed in the join profile.
    failures = cache.get(key, 0) if redis is None else int(await redis.get(key) or 0)
    return failures >= settings.JOIN_FAILURE_LIMIT


async def record_join_failure(*, user_id: int) -> None:
    key = _failure_key(user_id)
    window = settings.JOIN_FAILURE_WINDOW
    redis = get_redis()
    if redis is None:
        # One process, in-memory cache: nothing to race with between add and incr.
        cache.add(key, 0, timeout=window)
        cache.incr(key)
        return
    async with redis.pipeline(transaction=True) as pipe:
        await pipe.incr(key).expire(key, window, nx=True).execute()
