"""Limits that keep one account, one address or one script from hurting anyone else.

- `TokenBucket`: per-connection rates (all messages; chat lines). Bursts pass
  (a mesh join sends an offer and a score of candidates to each peer at
  once); a sustained flood is refused message by message with
  `rate-limited`, and a connection that keeps flooding runs out of strikes
  and is closed with 4429. Pure arithmetic on the connection's own state: it
  never slows another room.
- Join attempts (a join over the socket, a room lookup over HTTP): each one
  *reserves* a failure, per user and per client address (infra/counters.py),
  before the room is looked at. At the cap the attempt is refused without
  being evaluated, so N parallel attempts from one account or one address
  evaluate at most the cap. An attempt that does not fail (joined, room
  full, locked...) gives its reservation back; an unknown number or a wrong
  PIN keeps it, so numbers and PINs cannot be enumerated by trying.
- Signaling sockets per account across every worker: `rooms.connections`;
  joins in flight per account: `rooms.worker`; sign-ups: `accounts.limits`.

Client addresses are the ASGI client address (behind the proxy, daphne's
`--proxy-headers` takes it from the proxy's X-Forwarded-For).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from infra import counters
from infra.counters import address_key
from rooms import errors, selectors
from rooms.models import Room


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


def resubscribe_bucket() -> TokenBucket:
    # A browser's SFU watchdog asks at most once per SFU_SETUP-ish wait; a few
    # at once after a network change, never a stream (each costs a Janus handle).
    return TokenBucket(rate=1 / 5, capacity=4)


def chat_bucket() -> TokenBucket:
    return TokenBucket(rate=settings.CHAT_RATE, capacity=settings.CHAT_BURST)


@dataclass(frozen=True)
class Attempt:
    """A reserved join attempt: the counters it holds one unit of."""

    keys: tuple[str, ...]


def _attempt_counters(*, user_id: int, address: str | None) -> list[tuple[str, int]]:
    window = int(time.time() // settings.JOIN_FAILURE_WINDOW)
    base = f"{settings.CHANNEL_LAYER_PREFIX}:join-attempts"
    out = [(f"{base}:user:{user_id}:{window}", settings.JOIN_FAILURE_LIMIT)]
    key = address_key(address)
    if key is not None:
        out.append((f"{base}:addr:{key}:{window}", settings.JOIN_FAILURE_ADDRESS_LIMIT))
    return out


async def reserve_attempt(*, user_id: int, address: str | None) -> Attempt | None:
    """Reserve one failed attempt for this user and address; None when either is at its cap."""
    wanted = _attempt_counters(user_id=user_id, address=address)
    if not await counters.reserve(wanted, window=settings.JOIN_FAILURE_WINDOW):
        return None
    return Attempt(tuple(key for key, _ in wanted))


async def release_attempt(attempt: Attempt) -> None:
    """Give a reservation back: the attempt did not fail."""
    await counters.release(attempt.keys)


def reserve_attempt_sync(*, user_id: int, address: str | None) -> Attempt | None:
    """`reserve_attempt` for synchronous code (the HTTP views), on the same counters."""
    wanted = _attempt_counters(user_id=user_id, address=address)
    if not counters.reserve_sync(wanted, window=settings.JOIN_FAILURE_WINDOW):
        return None
    return Attempt(tuple(key for key, _ in wanted))


def release_attempt_sync(attempt: Attempt) -> None:
    counters.release_sync(attempt.keys)


def counted_lookup(*, user_id: int, address: str | None, number: str) -> Room | None:
    """The room with this number (`selectors.room_get_by_number`), counted like a join attempt.

    Looking numbers up over HTTP answers "found" or "not found" just as a join
    does, so it shares the join's cap per user and per client address: a miss
    costs one attempt, a hit costs nothing. `CapReached` at the cap.
    """
    attempt = reserve_attempt_sync(user_id=user_id, address=address)
    if attempt is None:
        raise errors.CapReached("Too many failed attempts to find a room; wait a while.")
    room = selectors.room_get_by_number(number=number) if number else None
    if room is not None:
        release_attempt_sync(attempt)
    return room


class QualityLimit:
    """How often one socket may report call quality (docs/reliability.md, Limits).

    Per remote peer, one live and one final report per `QUALITY_MIN_INTERVAL`
    seconds (browsers send one every 10 s); all reports together,
    `QUALITY_RATE` a second with bursts of `QUALITY_BURST`. Memory stays
    bounded: only reports younger than the interval are remembered, and the
    bucket bounds how many those can be.
    """

    __slots__ = ("bucket", "interval", "last")

    def __init__(self) -> None:
        self.interval = settings.QUALITY_MIN_INTERVAL
        self.bucket = TokenBucket(rate=settings.QUALITY_RATE, capacity=settings.QUALITY_BURST)
        self.last: dict[tuple[str, bool], float] = {}

    def take(self, *, peer: str, final: bool) -> bool:
        now = time.monotonic()
        last = self.last.get((peer, final))
        if last is not None and now - last < self.interval:
            return False
        if not self.bucket.take():
            return False
        if len(self.last) >= self.bucket.capacity:
            self.last = {key: at for key, at in self.last.items() if now - at < self.interval}
        self.last[(peer, final)] = now
        return True
