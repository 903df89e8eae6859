"""Windowed counters that every worker shares: take one, all or nothing, under a cap.

A counter lives for one fixed window (its key names the window); `reserve`
takes one unit from each of several counters atomically, or none when any is
at its limit; `release` gives units back. With Redis they are keys shared by
every worker and by the HTTP views; without Redis (one process) they live in
this process's memory. Used for join attempts (rooms/limits.py) and sign-ups
(accounts/limits.py).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Sequence
from typing import Any

from infra.redis import get_redis, get_sync_redis

# Take one unit from every counter (KEYS), each with its limit (ARGV[2..]), all
# or nothing; ARGV[1] is the window in seconds. 1 = taken, 0 = one is full.
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

# (key, limit) pairs.
Counters = Sequence[tuple[str, int]]


def address_key(address: str | None) -> str | None:
    """The form a client address is counted under: IPv4 as is, IPv6 by its /64; None if unknown.

    One subscriber line usually gets a /64, and choosing another address in it
    is free, so counting single IPv6 addresses would limit nothing.
    """
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


class _MemoryCounters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, tuple[int, float]] = {}

    def reserve(self, counters: Counters, *, window: int) -> bool:
        now = time.time()
        with self.lock:
            taken = {}
            for key, limit in counters:
                count, expires = self.counts.get(key, (0, 0.0))
                if expires <= now:
                    count, expires = 0, now + window
                if count >= limit:
                    return False
                taken[key] = (count + 1, expires)
            self.counts.update(taken)
            return True

    def release(self, keys: Sequence[str]) -> None:
        with self.lock:
            for key in keys:
                count, expires = self.counts.get(key, (0, 0.0))
                if count > 0:
                    self.counts[key] = (count - 1, expires)

    def clear(self) -> None:
        with self.lock:
            self.counts.clear()


_memory = _MemoryCounters()


def clear_memory() -> None:
    """Forget every in-process count (tests; Redis counters are namespaced by prefix)."""
    _memory.clear()


def _eval_args(counters: Counters, window: int) -> list[Any]:
    return [len(counters), *(key for key, _ in counters), window, *(n for _, n in counters)]


async def reserve(counters: Counters, *, window: int) -> bool:
    """Take one unit from every counter, or from none when one is at its limit."""
    client = get_redis()
    if client is None:
        return _memory.reserve(counters, window=window)
    return bool(await client.eval(_RESERVE_SCRIPT, *_eval_args(counters, window)))


async def release(keys: Sequence[str]) -> None:
    client = get_redis()
    if client is None:
        _memory.release(keys)
        return
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.decr(key)
        await pipe.execute()


def reserve_sync(counters: Counters, *, window: int) -> bool:
    """`reserve` for synchronous code (the HTTP views), on the same counters."""
    client = get_sync_redis()
    if client is None:
        return _memory.reserve(counters, window=window)
    return bool(client.eval(_RESERVE_SCRIPT, *_eval_args(counters, window)))


def release_sync(keys: Sequence[str]) -> None:
    client = get_sync_redis()
    if client is None:
        _memory.release(keys)
        return
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.decr(key)
        pipe.execute()
