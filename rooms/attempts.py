"""Join attempts and wrong PINs: what keeps numbers and PINs from being enumerated.

- Join attempts (a join over the socket, a room lookup over HTTP): each one
  *reserves* a failure for its account (infra/counters.py) before the room
  is looked at. At the cap the attempt is refused without being evaluated,
  so N parallel attempts from one account evaluate at most the cap. An
  attempt that does not fail (joined, room full, locked...) gives its
  reservation back; an unknown number or a wrong PIN keeps it, so numbers
  and PINs cannot be enumerated by trying.
- The same failures per client address are *slowed*, not capped
  (`address_failed`): `JOIN_FAILURE_ADDRESS_LIMIT` at once, then one per
  window/limit seconds; a failure past that waits for its turn before it is
  answered, or is answered `rate-limited` when its turn is too far off.
  Only failures wait: a classmate behind the same NAT address joining a
  room that exists is never held up by someone there trying numbers.
- Wrong PINs per room (`pin_failed`, `pin_locked`): at `PIN_FAILURE_LIMIT`
  the room's PIN is locked for `PIN_LOCK_SECONDS`: joins that need the PIN
  are refused `pin-locked` unevaluated, right or wrong, and the owner is told.

Client addresses are the ASGI client address (behind the proxy, daphne's
`--proxy-headers` takes it from the proxy's X-Forwarded-For).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings

from infra import counters
from infra.counters import address_key
from rooms import errors, selectors
from rooms.models import Room


@dataclass(frozen=True)
class Attempt:
    """A reserved join attempt: the counters it holds one unit of."""

    keys: tuple[str, ...]


def _attempt_counters(*, user_id: int) -> list[tuple[str, int]]:
    window = int(time.time() // settings.JOIN_FAILURE_WINDOW)
    base = f"{settings.CHANNEL_LAYER_PREFIX}:join-attempts"
    return [(f"{base}:user:{user_id}:{window}", settings.JOIN_FAILURE_LIMIT)]


async def reserve_attempt(*, user_id: int) -> Attempt | None:
    """Reserve one failed attempt for this user; None when the user is at the cap."""
    wanted = _attempt_counters(user_id=user_id)
    if not await counters.reserve(wanted, window=settings.JOIN_FAILURE_WINDOW):
        return None
    return Attempt(tuple(key for key, _ in wanted))


async def release_attempt(attempt: Attempt) -> None:
    """Give a reservation back: the attempt did not fail."""
    await counters.release(attempt.keys)


def reserve_attempt_sync(*, user_id: int) -> Attempt | None:
    """`reserve_attempt` for synchronous code (the HTTP views), on the same counters."""
    wanted = _attempt_counters(user_id=user_id)
    if not counters.reserve_sync(wanted, window=settings.JOIN_FAILURE_WINDOW):
        return None
    return Attempt(tuple(key for key, _ in wanted))


def release_attempt_sync(attempt: Attempt) -> None:
    counters.release_sync(attempt.keys)


def _address_key(address: str | None) -> str | None:
    key = address_key(address)
    if key is None:
        return None
    return f"{settings.CHANNEL_LAYER_PREFIX}:join-failures:addr:{key}"


async def address_failed(*, address: str | None) -> counters.Turn:
    """Count a failed join from `address`: when it may be answered (its turn), or refused."""
    key = _address_key(address)
    if key is None:
        return counters.Turn(allowed=True, wait=0.0)
    return await counters.throttle(
        key,
        limit=settings.JOIN_FAILURE_ADDRESS_LIMIT,
        window=settings.JOIN_FAILURE_WINDOW,
        max_wait=settings.JOIN_FAILURE_ADDRESS_MAX_WAIT,
    )


def counted_lookup(*, user_id: int, address: str | None, number: str) -> Room | None:
    """The room with this number (`selectors.room_get_by_number`), counted like a join attempt.

    Looking numbers up over HTTP answers "found" or "not found" just as a join
    does, so it shares the join's cap per user: a miss costs one attempt, a
    hit costs nothing; `CapReached` at the cap. A miss is slowed per address
    like a failed join; a view cannot wait, so a miss whose turn has not come
    is `CapReached` with its `retry_after` (429 with Retry-After), not "not found".
    """
    attempt = reserve_attempt_sync(user_id=user_id)
    if attempt is None:
        raise errors.CapReached("Too many failed attempts to find a room; wait a while.")
    room = selectors.room_get_by_number(number=number) if number else None
    if room is not None:
        release_attempt_sync(attempt)
        return room
    key = _address_key(address)
    if key is not None:
        turn = counters.throttle_sync(
            key, limit=settings.JOIN_FAILURE_ADDRESS_LIMIT, window=settings.JOIN_FAILURE_WINDOW
        )
        if not turn.allowed:
            raise errors.CapReached(
                "Too many rooms that do not exist were looked up from your network; wait a moment.",
                retry_after=max(1, math.ceil(turn.wait)),
            )
    return None


def _pin_key(room_id: int) -> str:
    return f"{settings.CHANNEL_LAYER_PREFIX}:pin-failures:{room_id}"


def pin_locked(*, room_id: int) -> bool:
    """True while room `room_id`'s PIN is locked (PIN_FAILURE_LIMIT wrong ones lately)."""
    return counters.strikes_sync(_pin_key(room_id)) >= settings.PIN_FAILURE_LIMIT


def pin_failed(*, room_id: int) -> bool:
    """Count a wrong PIN for room `room_id`; True when this one locked its PIN."""
    count = counters.strike_sync(
        _pin_key(room_id), seconds=settings.PIN_LOCK_SECONDS, limit=settings.PIN_FAILURE_LIMIT
    )
    return count == settings.PIN_FAILURE_LIMIT
