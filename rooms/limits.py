"""Limits that keep one account, one address or one script from hurting anyone else.

- `TokenBucket`: per-connection rates (all messages; chat lines). Bursts pass
  (a mesh join sends an offer and a score of candidates to each peer at
  once); a sustained flood is refused message by message with
  `rate-limited`, and a connection that keeps flooding runs out of strikes
  and is closed with 4429. Pure arithmetic on the connection's own state: it
  never slows another room.
- Join attempts (a join over the socket, a room lookup over HTTP): each one
  *reserves* a failure, per user and per client address, before the room is
  looked at. At the cap the attempt is refused without being evaluated, so N
  parallel attempts from one account or one address evaluate at most the
  cap. An attempt that does not fail (joined, room full, locked...) gives its
  reservation back; an unknown number or a wrong PIN keeps it, so numbers and
  PINs cannot be enumerated by trying. Counted in Redis, shared by every
  worker and by the HTTP views (in process memory without Redis).
- Signaling sockets per account across every worker: `rooms.connections`.

Client addresses are the ASGI client address (behind the proxy, daphne's
`--proxy-headers` takes it from the proxy's X-Forwarded-For). An IPv6 client
is counted by its /64, which is what one subscriber line usually gets.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from config.cache import SharedConnectionPool
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


def chat_bucket() -> TokenBucket:
    return TokenBucket(rate=settings.CHAT_RATE, capacity=settings.CHAT_BURST)


def address_key(address: str | None) -> str | None:
    """The form an address is counted under: IPv4 as is, IPv6 by its /64; None if unknown."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


# --- Join attempts ------------------------------------------------------------------

# Take one attempt from every counter (KEYS), each with its limit (ARGV[2..]),
# all or nothing; ARGV[1] is the window. 1 = reserved, 0 = a counter is full.
_RESERVE_SCRIPT = """
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  if n > tonumber(ARGV[i + 1]) then
    for j = 1, i do redis.call('DECR', KEYS[j]) end
    return 0
  end
end
return 1
"""


@dataclass(frozen=True)
class Attempt:
    """A reserved join attempt: the counters it holds one unit of."""

    keys: tuple[str, ...]


def _attempt_counters(*, user_id: int, address: str | None) -> list[tuple[str, int]]:
    window = int(time.time() // settings.JOIN_FAILURE_WINDOW)
    base = f"{settings.CHANNEL_LAYER_PREFIX}:join-attempts"
    counters = [(f"{base}:user:{user_id}:{window}", settings.JOIN_FAILURE_LIMIT)]
    key = address_key(address)
    if key is not None:
        counters.append((f"{base}:addr:{key}:{window}", settings.JOIN_FAILURE_ADDRESS_LIMIT))
    return counters


class _MemoryCounters:
    """One process's counters, for running without Redis (`make run`, the unit tests)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, tuple[int, float]] = {}

    def reserve(self, counters: list[tuple[str, int]], *, window: int) -> bool:
        now = time.time()
        with self.lock:
            current = {}
            for key, limit in counters:
                count, expires = self.counts.get(key, (0, 0.0))
                if expires <= now:
                    count, expires = 0, now + window
                if count >= limit:
                    return False
                current[key] = (count + 1, expires)
            self.counts.update(current)
            return True

    def release(self, keys: tuple[str, ...]) -> None:
        with self.lock:
            for key in keys:
                count, expires = self.counts.get(key, (0, 0.0))
                if count > 0:
                    self.counts[key] = (count - 1, expires)

    def clear(self) -> None:
        with self.lock:
            self.counts.clear()


_memory = _MemoryCounters()


def clear_memory_counters() -> None:
    """Forget every in-process count (tests; Redis counters are namespaced by prefix)."""
    _memory.clear()


def _script_args(counters: list[tuple[str, int]], window: int) -> list[Any]:
    """EVAL's arguments for `_RESERVE_SCRIPT`: the key count, the keys, the window, the limits."""
    return [len(counters), *(key for key, _ in counters), window, *(n for _, n in counters)]


async def reserve_attempt(*, user_id: int, address: str | None) -> Attempt | None:
    """Reserve one failed attempt for this user and address; None when either is at its cap."""
    counters = _attempt_counters(user_id=user_id, address=address)
    window = settings.JOIN_FAILURE_WINDOW
    client = get_redis()
    if client is None:
        reserved = _memory.reserve(counters, window=window)
    else:
        # On the worker's asyncio client: every join asks, and a thread hop plus
        # a connection per call showed in the join profile.
        reserved = await client.eval(_RESERVE_SCRIPT, *_script_args(counters, window))
    return Attempt(tuple(key for key, _ in counters)) if reserved else None


async def release_attempt(attempt: Attempt) -> None:
    """Give a reservation back: the attempt did not fail."""
    client = get_redis()
    if client is None:
        _memory.release(attempt.keys)
        return
    async with client.pipeline(transaction=False) as pipe:
        for key in attempt.keys:
            pipe.decr(key)
        await pipe.execute()


def _sync_redis() -> redis.Redis:
    return redis.Redis(connection_pool=SharedConnectionPool.from_url(settings.REDIS_URL))


def _reserve_sync(counters: list[tuple[str, int]], *, window: int) -> bool:
    if not settings.REDIS_URL:
        return _memory.reserve(counters, window=window)
    return bool(_sync_redis().eval(_RESERVE_SCRIPT, *_script_args(counters, window)))


def reserve_attempt_sync(*, user_id: int, address: str | None) -> Attempt | None:
    """`reserve_attempt` for synchronous code (the HTTP views), on the same counters."""
    counters = _attempt_counters(user_id=user_id, address=address)
    if not _reserve_sync(counters, window=settings.JOIN_FAILURE_WINDOW):
        return None
    return Attempt(tuple(key for key, _ in counters))


def release_attempt_sync(attempt: Attempt) -> None:
    if not settings.REDIS_URL:
        _memory.release(attempt.keys)
        return
    with _sync_redis().pipeline(transaction=False) as pipe:
        for key in attempt.keys:
            pipe.decr(key)
        pipe.execute()


# --- Sign-ups -------------------------------------------------------------------------------


def signup_allowed(*, address: str | None) -> bool:
    """Count one sign-up from `address` this hour; False once the hour's cap is reached.

    Counted when the form is valid, just before the account is created, so a
    mistyped form costs nothing.
    """
    key = address_key(address)
    if key is None:
        return True
    window = int(time.time() // 3600)
    counter = f"{settings.CHANNEL_LAYER_PREFIX}:signups:{key}:{window}"
    return _reserve_sync([(counter, settings.SIGNUPS_PER_ADDRESS_PER_HOUR)], window=3600)
