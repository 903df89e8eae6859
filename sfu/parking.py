"""A worker's Janus seats, kept across a dropped signaling socket until the person resumes.

Every `SfuSeat` of this worker is here, under its peer id, with the socket
that holds it (its channel name). When a socket drops without a close frame
its seat is *parked*, not closed: the Janus session, both handles and the
browser's PeerConnections stay, keepalives and Janus' events go on, only
nothing is sent (sfu/seat.py). Then, whichever comes first:

- the person resumes here: the new socket takes the seat (`resume`), and
  gets again the subscriber offer the browser had not answered;
- the person resumes on another worker: that worker claims the session in
  Janus from the seat's record and tells this one to let go of it without
  ending it (a `SeatRelease`, which the caller's `Tell` carries: signaling
  sends it as `sfu.seat_release` on the WORKERS group, and hands it back to
  `released` on the worker it names);
- whatever ends the person ends the seat (the `sfu.cleanup` every worker
  hears: the grace ran out and the sweeper expired them, a kick, the room
  closed, the account joined again);
- none of those came (an event lost to a Redis blip): after `RESUME_GRACE`
  plus one presence sweep the seat is closed here, unless its record says
  another worker has taken it meanwhile.

A socket that takes a seat over while the old socket still looks open (a
half-open TCP connection) takes it from that socket the same way; the old
socket, told `peer.replaced` with `resumed`, finds it gone and leaves it be.

The record (sfu/seat.py `SeatRecord`: session, handle, feed and
private ids, the subscription, the offer awaiting an answer) lives in Redis
under the channel-layer prefix, one hash per peer with the owning worker's
id, written when the seat is made or changes and when it is parked, and kept
for `PRESENCE_TTL` seconds, renewed with the presence: a SIGKILLed worker's
seats can be claimed for as long as its people can resume. A record can be
older than the seat (a change that sent the browser nothing); the worker
that claims checks it against Janus and falls back to `sfu-restart`. Without
Redis there is one process, so nothing to claim from: no records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from django.conf import settings

from infra.loopscoped import LoopScoped
from infra.redis import get_redis
from sfu import lifecycle
from sfu.janus import JanusError
from sfu.seat import SeatListener, SeatRecord, SfuSeat

logger = logging.getLogger(__name__)

# Write a record unless another worker owns it now (it claimed the seat).
_WRITE_SCRIPT = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'record', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
# Take the record over: its previous owner and the record, or nil without one.
_TAKE_SCRIPT = """
local record = redis.call('HGET', KEYS[1], 'record')
if not record then return nil end
local owner = redis.call('HGET', KEYS[1], 'owner')
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return {owner, record}
"""
# Forget a record, only if it is still ours.
_DROP_SCRIPT = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class SeatRelease:
    """To worker `owner`: let go of `peer_id`'s Janus session (`keep`) or end it (not `keep`)."""

    owner: str
    peer_id: str
    session_id: int
    keep: bool


# How a worker that claimed a seat tells the one that held it (never raises for a lost message).
Tell = Callable[[SeatRelease], Awaitable[None]]


class SeatRecords:
    """The seats' records in Redis (see the module docstring); `owner` is this worker's id."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def _key(self, peer_id: str) -> str:
        return f"{settings.CHANNEL_LAYER_PREFIX}:sfu-seat:{peer_id}"

    async def write(self, peer_id: str, data: bytes) -> None:
        await get_redis().eval(
            _WRITE_SCRIPT, 1, self._key(peer_id), self.owner, data, settings.PRESENCE_TTL
        )

    async def take(self, peer_id: str) -> tuple[str | None, bytes] | None:
        """Make the record ours; (its previous owner, the record), or None without one."""
        taken = await get_redis().eval(_TAKE_SCRIPT, 1, self._key(peer_id), self.owner)
        if not taken:
            return None
        owner, record = taken
        return (owner.decode() if owner is not None else None), record

    async def owner_of(self, peer_id: str) -> str | None:
        owner = await get_redis().hget(self._key(peer_id), "owner")
        return owner.decode() if owner is not None else None

    async def drop(self, peer_id: str) -> None:
        await get_redis().eval(_DROP_SCRIPT, 1, self._key(peer_id), self.owner)

    async def renew(self, peer_ids: Iterable[str]) -> None:
        async with get_redis().pipeline(transaction=False) as pipe:
            for peer_id in peer_ids:
                pipe.expire(self._key(peer_id), settings.PRESENCE_TTL)
            await pipe.execute()


@dataclass(eq=False)
class _Place:
    seat: SfuSeat
    # The channel of the socket the seat sends to; None while parked.
    holder: str | None
    expiry: asyncio.Task[None] | None = None
    # The record as last written.
    saved: bytes | None = None


class Parking:
    """This worker's seats by peer id: attached to a socket, or parked until a resume."""

    def __init__(self) -> None:
        self.places: dict[str, _Place] = {}
        # Which worker owns a record: a fresh id per process (a restarted worker owns nothing).
        self.owner = secrets.token_hex(8)
        self.records = SeatRecords(self.owner) if settings.REDIS_URL else None
        self.renewer: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.records is not None:
            self.renewer = asyncio.ensure_future(self._renew())

    # --- The sockets' side ---------------------------------------------------------------

    async def add(
        self, *, peer_id: str, seat: SfuSeat, holder: str, listener: SeatListener
    ) -> None:
        """A seat a socket made: it tells `listener`."""
        place = self.places.get(peer_id)
        if place is not None and place.seat is not seat:
            await self._end(place)  # an earlier seat of this peer that nobody holds any more
        self.places[peer_id] = _Place(seat=seat, holder=holder)
        await seat.attach(listener, changed=lambda: self.save(peer_id))

    async def park(self, *, peer_id: str, seat: SfuSeat, holder: str) -> None:
        """`holder`'s socket dropped: keep its seat for a resume (close it if nothing to keep)."""
        place = self.places.get(peer_id)
        if place is None or place.seat is not seat:
            await seat.close()  # not this worker's any more: released, or never kept
            return
        if place.holder != holder:
            return  # another socket took it over already
        if seat.participant is None:
            await self._end(place)  # nothing in Janus to keep
            return
        seat.park()
        place.holder = None
        place.expiry = asyncio.ensure_future(self._expire_later(peer_id, place))
        await self.save(peer_id)

    async def close(self, *, peer_id: str, seat: SfuSeat, holder: str) -> None:
        """`holder` is done with its seat (leave, kick, close, replaced): end it in Janus."""
        place = self.places.get(peer_id)
        if place is None or place.seat is not seat:
            await seat.close()
            return
        if place.holder != holder:
            return  # another socket took it over: it is that socket's now
        await self._end(place)

    async def resume(
        self, *, peer_id: str, holder: str, listener: SeatListener, capacity: int, tell: Tell
    ) -> SfuSeat | None:
        """The seat of a resumed peer, now `holder`'s: kept here, or claimed from another worker.

        None when there is none to keep: the browser must publish again.
        `tell` reaches the worker a seat is claimed from.
        """
        place = self.places.get(peer_id)
        if place is not None:
            if place.seat.participant is None:
                await self._end(place)  # its session was lost while parked
                return None
            if place.expiry is not None:
                place.expiry.cancel()
                place.expiry = None
            place.holder = holder
            await place.seat.attach(listener)
            return place.seat
        return await self._claim(
            peer_id=peer_id, holder=holder, listener=listener, capacity=capacity, tell=tell
        )

    async def save(self, peer_id: str) -> None:
        """Write the seat's record if it changed (never fails: a claim checks it against Janus)."""
        place = self.places.get(peer_id)
        if place is None or self.records is None:
            return
        record = place.seat.record()
        if record is None:
            return
        data = record.dumps()
        if data == place.saved:
            return
        try:
            await self.records.write(peer_id, data)
        except Exception:
            logger.warning("sfu: could not store the seat record of %s", peer_id, exc_info=True)
            return
        place.saved = data

    # --- The WORKERS group's side ------------------------------------------------------------

    async def cleanup(self, *, room_id: int, feeds: Iterable[int], destroy_room: bool) -> None:
        """Django ended people (expired, kicked, replaced) or the room: end their parked seats."""
        feeds = set(feeds)
        ended = [
            place
            for place in self.places.values()
            if place.holder is None
            and place.seat.room_id == room_id
            and (destroy_room or place.seat.feed_id in feeds)
        ]
        for place in ended:
            if self.places.get(place.seat.peer_id) is place:
                await self._end(place)

    async def released(self, *, owner: str, peer_id: str, session_id: int, keep: bool) -> None:
        """Another worker claimed this peer's session (`keep`: let go), or could not (close it)."""
        place = self.places.get(peer_id)
        participant = place.seat.participant if place is not None else None
        if owner != self.owner or participant is None or participant.session.id != session_id:
            return
        if keep:
            self._forget(peer_id, place)
            place.seat.release()
        else:
            await self._end(place)
        logger.info(
            "sfu: %s resumed on another worker; Janus session %s %s",
            peer_id,
            session_id,
            "handed over" if keep else "ended",
        )

    # --- Inside ----------------------------------------------------------------------------------

    async def _claim(
        self, *, peer_id: str, holder: str, listener: SeatListener, capacity: int, tell: Tell
    ) -> SfuSeat | None:
        if self.records is None:
            return None
        try:
            taken = await self.records.take(peer_id)
        except Exception:
            logger.warning("sfu: could not read the seat record of %s", peer_id, exc_info=True)
            return None
        if taken is None:
            return None
        previous, data = taken
        record = SeatRecord.loads(data)
        if record is None or previous == self.owner:
            # Ours, yet not here: the seat ended here (and its record outlived it).
            await self._drop_record(peer_id)
            return None
        try:
            seat = await SfuSeat.reclaim(record, capacity=capacity, peer_id=peer_id)
        except (JanusError, TimeoutError) as err:
            logger.info(
                "sfu: could not claim %s's Janus session %s: %s", peer_id, record.session, err
            )
            await self._drop_record(peer_id)
            await _tell(tell, previous, peer_id=peer_id, session_id=record.session, keep=False)
            return None
        await _tell(tell, previous, peer_id=peer_id, session_id=record.session, keep=True)
        await self.add(peer_id=peer_id, seat=seat, holder=holder, listener=listener)
        await self.save(peer_id)
        logger.info("sfu: claimed %s's Janus session %s", peer_id, record.session)
        return seat

    async def _end(self, place: _Place) -> None:
        peer_id = place.seat.peer_id
        self._forget(peer_id, place)
        await place.seat.close()
        await self._drop_record(peer_id)

    def _forget(self, peer_id: str, place: _Place) -> None:
        if self.places.get(peer_id) is place:
            del self.places[peer_id]
        if place.expiry is not None and place.expiry is not asyncio.current_task():
            place.expiry.cancel()
        place.expiry = None

    async def _drop_record(self, peer_id: str) -> None:
        if self.records is not None:
            with contextlib.suppress(Exception):
                await self.records.drop(peer_id)

    async def _expire_later(self, peer_id: str, place: _Place) -> None:
        """Close a seat still parked after the grace and a sweep (no `sfu.cleanup` came)."""
        await asyncio.sleep(settings.RESUME_GRACE + settings.PRESENCE_SWEEP_INTERVAL)
        if self.places.get(peer_id) is not place or place.holder is not None:
            return
        owner = None
        if self.records is not None:
            with contextlib.suppress(Exception):
                owner = await self.records.owner_of(peer_id)
        if owner is not None and owner != self.owner:
            # Another worker is claiming it: its `sfu.seat_release` was lost or is on its way.
            self._forget(peer_id, place)
            place.seat.release()
            return
        logger.info("sfu: %s did not come back; ending their parked Janus seat", peer_id)
        await self._end(place)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(settings.PRESENCE_RENEW_INTERVAL)
            if self.places:
                try:
                    await self.records.renew(list(self.places))
                except Exception:
                    logger.warning("sfu: could not renew the seat records", exc_info=True)


async def cleanup(*, room_id: int, feeds: Iterable[int], destroy_room: bool) -> None:
    """What Django decided, in Janus (`sfu.cleanup`): parked seats here first, then the feeds.

    Never raises: every worker runs it, and the first one does Janus' part.
    """
    feeds = list(feeds)
    try:
        await get_parking().cleanup(room_id=room_id, feeds=feeds, destroy_room=destroy_room)
    except Exception:
        logger.warning("sfu: ending parked seats of room %s failed", room_id, exc_info=True)
    await lifecycle.cleanup(room_id=room_id, feeds=feeds, destroy_room=destroy_room)


async def _tell(
    tell: Tell, owner: str | None, *, peer_id: str, session_id: int, keep: bool
) -> None:
    if owner is None:
        return
    with contextlib.suppress(Exception):
        # Lost with Redis: the owner's own expiry finds the record taken.
        await tell(SeatRelease(owner=owner, peer_id=peer_id, session_id=session_id, keep=keep))


def _start_parking() -> Parking:
    parking = Parking()
    parking.start()
    return parking


_parkings: LoopScoped[Parking] = LoopScoped(_start_parking)


def get_parking() -> Parking:
    """The running loop's seats (one per worker process, like `get_worker()`)."""
    return _parkings.get()
