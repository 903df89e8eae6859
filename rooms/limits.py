"""Limits that keep one client from hurting anyone else.

- `TokenBucket`: the per-connection message rate. Bursts pass (a mesh join
  sends an offer and a score of candidates to each peer at once); a sustained
  flood is refused message by message with `rate-limited`, and a connection
  that keeps flooding runs out of strikes and is closed with 4429. Pure
  arithmetic on the connection's own state: it never slows another room.
- Failed joins (unknown room numbers, wrong PINs) per user, counted in the
  shared cache (Redis with several workers), so room numbers and PINs cannot
  be enumerated by trying.
"""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache


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
    return f"rooms:join-failures:{user_id}:{window}"


def _join_failures(user_id: int) -> int:
    return cache.get(_failure_key(user_id), 0)


def _record_join_failure(user_id: int) -> int:
    key = _failure_key(user_id)
    cache.add(key, 0, timeout=settings.JOIN_FAILURE_WINDOW)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.JOIN_FAILURE_WINDOW)
        return 1


async def join_blocked(*, user_id: int) -> bool:
    failures = await sync_to_async(_join_failures, thread_sensitive=False)(user_id)
    return failures >= settings.JOIN_FAILURE_LIMIT


async def record_join_failure(*, user_id: int) -> None:
    await sync_to_async(_record_join_failure, thread_sensitive=False)(user_id)
