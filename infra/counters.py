"""Windowed counters that every worker shares: take one, all or nothing, under a cap.

A counter lives for one fixed window (its key names the window); `reserve`
takes one unit from each of several counters atomically, or none when any is
at its limit; `release` gives units back. With Redis they are keys shared by
every worker and by the HTTP views; without Redis (one process) they live in
this process's memory. Used for join attempts (rooms/attempts.py) and sign-ups
(accounts/limits.py).

`throttle` is the other kind: a rate (GCRA, the generic cell rate algorithm)
rather than a cap, for what should be slowed, not stopped: `limit` events
per `window` seconds at once, then one every `window / limit` seconds. It
says how long the caller must wait for its turn, or that its turn is further
off than it may wait (and then counts nothing). `unthrottle` gives one event
back: what is counted before the work it guards, and was not the kind of event
being limited after all (a login that succeeded).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
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

# GCRA on one key holding the theoretical arrival time (TAT, in seconds). ARGV:
# now, the interval between events, the burst tolerance, the longest wait
# allowed. Returns the wait as a string (0 when conforming), or "-<seconds>"
# (how long until a wait would be allowed) when it is too long: nothing counted.
_THROTTLE_SCRIPT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - tolerance
if wait > max_wait then return '-' .. tostring(wait - max_wait) end
tat = tat + interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
if wait < 0 then wait = 0 end
return tostring(wait)
"""

# Give one event back: the TAT moves back one interval (ARGV: now, the interval).
_UNTHROTTLE_SCRIPT = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[2])
local now = tonumber(ARGV[1])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
return 1
"""

# One strike on KEYS[1]: its count lives ARGV[1] seconds from the first strike,
# and ARGV[1] seconds again from the strike that reached the limit ARGV[2].
_STRIKE_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or n == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# (key, limit) pairs.
Counters = Sequence[tuple[str, int]]


@dataclass(frozen=True)
class Turn:
    """A throttle's answer: `allowed` after waiting `wait` seconds, else retry in `wait` seconds."""

    allowed: bool
    wait: float


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
        self.tats: dict[str, float] = {}

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

    def strike(self, key: str, *, seconds: int, limit: int) -> int:
        now = time.time()
        with self.lock:
            count, expires = self.counts.get(key, (0, 0.0))
            if expires <= now:
                count = 0
            count += 1
            if count in (1, limit):
                expires = now + seconds
            self.counts[key] = (count, expires)
            return count

    def value(self, key: str) -> int:
        with self.lock:
            count, expires = self.counts.get(key, (0, 0.0))
            return count if expires > time.time() else 0

    def throttle(self, key: str, args: list[float]) -> str:
        now, interval, tolerance, max_wait = args
        with self.lock:
            tat = max(self.tats.get(key, 0.0), now)
            wait = tat - now - tolerance
            if wait > max_wait:
                return f"-{wait - max_wait}"
            self.tats[key] = tat + interval
            return str(max(0.0, wait))

    def unthrottle(self, key: str, *, now: float, interval: float) -> None:
        with self.lock:
            tat = self.tats.get(key, 0.0) - interval
            if tat <= now:
                self.tats.pop(key, None)
            else:
                self.tats[key] = tat

    def clear(self) -> None:
        with self.lock:
            self.counts.clear()
            self.tats.clear()


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


def _throttle_args(limit: int, window: float, max_wait: float) -> list[float]:
    interval = window / limit
    return [time.time(), interval, interval * (limit - 1), max_wait]


def _turn(answer: str | bytes) -> Turn:
    text = answer.decode() if isinstance(answer, bytes) else answer
    if text.startswith("-"):
        return Turn(allowed=False, wait=float(text[1:]))
    return Turn(allowed=True, wait=float(text))


async def throttle(key: str, *, limit: int, window: float, max_wait: float = 0) -> Turn:
    """One event on `key`: `limit` at once, then one per `window / limit` s; every worker shares it.

    `Turn(True, wait)`: counted, its turn comes in `wait` seconds (0: now).
    `Turn(False, wait)`: its turn is more than `max_wait` seconds off; not
    counted; a turn within `max_wait` comes in `wait` seconds.
    """
    args = _throttle_args(limit, window, max_wait)
    client = get_redis()
    if client is None:
        return _turn(_memory.throttle(key, args))
    return _turn(await client.eval(_THROTTLE_SCRIPT, 1, key, *args))


def throttle_sync(key: str, *, limit: int, window: float, max_wait: float = 0) -> Turn:
    """`throttle` for synchronous code (the HTTP views), on the same keys."""
    args = _throttle_args(limit, window, max_wait)
    client = get_sync_redis()
    if client is None:
        return _turn(_memory.throttle(key, args))
    return _turn(client.eval(_THROTTLE_SCRIPT, 1, key, *args))


def unthrottle_sync(key: str, *, limit: int, window: float) -> None:
    """Give back one event `throttle_sync` counted on `key` (with the same limit and window)."""
    now, interval = time.time(), window / limit
    client = get_sync_redis()
    if client is None:
        _memory.unthrottle(key, now=now, interval=interval)
        return
    client.eval(_UNTHROTTLE_SCRIPT, 1, key, now, interval)


def strike_sync(key: str, *, seconds: int, limit: int) -> int:
    """Count one strike on `key`; the count lasts `seconds` from the first and from the limit's."""
    client = get_sync_redis()
    if client is None:
        return _memory.strike(key, seconds=seconds, limit=limit)
    return int(client.eval(_STRIKE_SCRIPT, 1, key, seconds, limit))


def strikes_sync(key: str) -> int:
    """The strikes counted on `key` now."""
    client = get_sync_redis()
    if client is None:
        return _memory.value(key)
    return int(client.get(key) or 0)
