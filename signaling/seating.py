"""Taking and leaving a seat in a room: create, join, resume, leave, kick, moderate.

Plain async functions, no socket. Each takes what it works with — the
account, the current membership, this socket's `Line` to the channel layer,
presence, the worker's join slots, the SFU parking, whether the SFU is up —
and returns an `Outcome`: the membership after it, and what to send. The
room and the others hear the `outbox` (the consumer publishes it first, so
the room knows of a newcomer before the newcomer can act); this socket gets
the `replies`. A refusal is raised: a `ClientError`, or the room's own
error (rooms/errors.py), which the consumer answers.

Subscribing to a room's group comes before the database call that seats
there, so no `peer.joined` committed after ours is missed (a duplicate of
a peer already listed is dropped, `Membership.hears`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from accounts import ice
from infra.db import db_call
from rooms import attempts, errors, events, services, wire
from rooms import protocol as p
from rooms.models import Room
from sfu.parking import Parking
from signaling import limits, observe, sfu_relay
from signaling.membership import Account, Membership
from signaling.presence import PresenceStore
from signaling.runtime.joins import JoinSlots

# The name these lines had as the consumer's: what log filters know.
logger = logging.getLogger("signaling.consumer")

# Whether the SFU can take a room now (sfu/lifecycle.py `available`).
SfuAvailable = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Line:
    """This socket's line to the rooms: its channel, and the channel layer that carries it."""

    channel: str
    layer: Any

    async def subscribed_call(self, number: str, call: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Subscribe to room `number`'s group, then run `call` on a database thread.

        The subscription stays only if `call` admitted us: not when it raises
        or returns None.
        """
        group = Room.group_name_for(number)
        await self.layer.group_add(group, self.channel)
        try:
            result = await db_call(call)(**kwargs)
        except BaseException:
            await self.layer.group_discard(group, self.channel)
            raise
        if result is None:
            await self.layer.group_discard(group, self.channel)
        return result

    async def hang_up(self, group: str) -> None:
        """Stop hearing a room's group."""
        await self.layer.group_discard(group, self.channel)


@dataclass(frozen=True)
class Outcome:
    """What a seating function did: the membership after it, and what to send."""

    membership: Membership | None
    # To the rooms' groups and other sockets, published before the replies.
    outbox: events.Outbox = ()
    # To this socket, in order.
    replies: tuple[wire.Message, ...] = ()
    # A seat was taken: `create`, `join` or `resume` (observe.seated's kind).
    seated: str | None = None
    # The TURN credentials `joined` carries, renewed by the socket half-way through their life.
    ice: ice.IceConfig | None = None
    # Resumed into a room on the SFU: the socket takes its Janus seat back (sfu_relay.take_back).
    sfu_back: bool = False
    # Close the socket with this code once the rest is sent.
    close: int | None = None


# --- Taking a seat ----------------------------------------------------------------------------


def join_slot(
    slots: JoinSlots, *, membership: Membership | None, user_id: int, msg_id: str | None
) -> contextlib.AbstractContextManager[None]:
    """One of the account's few join slots on this worker (runtime/joins.py), or a refusal.

    `already-in-room` for a socket in a room; `rate-limited` when the slots are all taken.
    """
    if membership is not None:
        raise p.ClientError(
            p.ALREADY_IN_ROOM, "leave this room before joining another", msg_id=msg_id
        )
    slot = slots.take(user_id)
    if slot is None:
        raise p.ClientError(
            p.RATE_LIMITED, "Too many joins at once from your account; try again.", msg_id=msg_id
        )
    return slot


async def count_join(*, user_id: int, msg_id: str | None) -> None:
    """One more room joined or created by this account, over all its sockets: or refused."""
    if not await limits.account_volume(user_id=user_id, kind="join"):
        raise p.ClientError(
            p.RATE_LIMITED,
            "Your account has joined too many rooms lately; wait a while.",
            msg_id=msg_id,
        )


async def create(
    *,
    account: Account,
    membership: Membership | None,
    line: Line,
    presence: PresenceStore,
    slots: JoinSlots,
    sfu_available: SfuAvailable,
    msg: dict[str, Any],
    msg_id: str | None,
) -> Outcome:
    """Create a room (a validated `create` message) and take its first seat, as its owner."""
    with join_slot(slots, membership=membership, user_id=account.user.pk, msg_id=msg_id):
        await count_join(user_id=account.user.pk, msg_id=msg_id)
        seat = await new_room(
            owner=account.user,
            line=line,
            name=msg["name"],
            capacity=msg["capacity"],
            pin=msg["pin"],
            media=msg["media"],
            sfu_available=msg["media"] == p.MEDIA_SFU and await sfu_available(),
        )
        # A room just created has nobody to tell: whoever joins it later
        # finds its owner in the database.
        return await take_seat(
            account=account, seat=seat, presence=presence, msg_id=msg_id, created=True
        )


async def new_room(
    *,
    owner: AbstractBaseUser,
    line: Line,
    name: str,
    capacity: int,
    pin: str | None,
    media: str,
    sfu_available: bool,
) -> services.Seat:
    """Draw numbers until one is free (services.room_numbers); the owner's seat in the new room."""
    numbers = services.room_numbers()
    while True:
        number = next(numbers)  # NoFreeNumber once they are used up
        try:
            return await line.subscribed_call(
                number,
                services.room_create,
                number=number,
                owner=owner,
                channel_name=line.channel,
                name=name,
                capacity=capacity,
                pin=pin,
                media=media,
                sfu_available=sfu_available,
            )
        except errors.NumberTaken:
            continue


async def join(
    *,
    account: Account,
    membership: Membership | None,
    line: Line,
    presence: PresenceStore,
    slots: JoinSlots,
    sfu_available: SfuAvailable,
    msg: dict[str, Any],
    msg_id: str | None,
) -> Outcome:
    """Join a room by number (a validated `join` message), resuming a seat when the token allows."""
    with join_slot(slots, membership=membership, user_id=account.user.pk, msg_id=msg_id):
        token = msg["resume"]
        if token is not None:
            resumed = await resume(
                account=account,
                line=line,
                presence=presence,
                number=msg["room"],
                token=token,
                msg_id=msg_id,
            )
            if resumed is not None:
                return resumed
        # No token, or an expired, foreign or forged one: an ordinary join
        # (which says it did not resume when a token was given).
        return await enter(
            account=account,
            line=line,
            presence=presence,
            sfu_available=sfu_available,
            number=msg["room"],
            pin=msg["pin"],
            msg_id=msg_id,
            resumed=False if token is not None else None,
        )


async def resume(
    *,
    account: Account,
    line: Line,
    presence: PresenceStore,
    number: str,
    token: str,
    msg_id: str | None,
) -> Outcome | None:
    """Carry on as the peer the token names, if it is still within its grace period.

    None when the token cannot be used (forged, foreign, expired): the caller
    joins anew. The seat gone to another tab or device of the account
    closes this socket instead (4409).
    """
    user = account.user
    peer_id = services.resume_token_peer(token=token, user=user)
    if peer_id is None:
        observe.resumed("invalid")
        return None
    # Taking the presence first means no sweeper can expire the peer under us.
    seat = None
    if await presence.take(peer_id, seconds=settings.PRESENCE_TTL):
        seat = await line.subscribed_call(
            number,
            services.participant_resume,
            peer_id=peer_id,
            number=number,
            user=user,
            channel_name=line.channel,
        )
    if seat is None:
        if await db_call(services.participant_was_replaced)(peer_id=peer_id, user=user):
            # The seat moved to another tab or device of this account since:
            # do not take it back; this socket is the one that goes.
            observe.resumed("replaced")
            return Outcome(membership=None, close=p.CLOSE_REPLACED)
        observe.resumed("expired")
        return None
    observe.resumed("resumed")
    return await take_seat(
        account=account, seat=seat, presence=presence, msg_id=msg_id, resumed=True
    )


async def enter(
    *,
    account: Account,
    line: Line,
    presence: PresenceStore,
    sfu_available: SfuAvailable,
    number: str,
    pin: str | None,
    msg_id: str | None,
    resumed: bool | None = None,
) -> Outcome:
    """Take a seat in room `number`, counted against the account's and the address's failures."""
    # The failure is reserved before the room is looked at, so parallel
    # attempts (many sockets, many accounts behind one address) evaluate
    # at most the cap; an attempt that does not fail gives it back.
    await count_join(user_id=account.user.pk, msg_id=msg_id)
    attempt = await attempts.reserve_attempt(user_id=account.user.pk)
    if attempt is None:
        raise p.ClientError(
            p.RATE_LIMITED, "Too many failed attempts to join; wait a while.", msg_id=msg_id
        )
    try:
        seat = await line.subscribed_call(
            number,
            services.room_join,
            number=number,
            user=account.user,
            channel_name=line.channel,
            pin=pin,
            sfu_available=await sfu_available(),
        )
    except (errors.RoomNotFound, errors.WrongPin) as err:
        await failed_join(
            err, address=account.address, layer=line.layer, number=number, msg_id=msg_id
        )
        raise
    except BaseException:
        await attempts.release_attempt(attempt)
        raise
    outcome = await take_seat(
        account=account, seat=seat, presence=presence, msg_id=msg_id, resumed=resumed
    )
    await attempts.release_attempt(attempt)
    return outcome


async def failed_join(
    err: errors.RoomsError, *, address: str | None, layer: Any, number: str, msg_id: str | None
) -> None:
    """A join failed (unknown number, wrong PIN): tell a locked PIN's owner; slow the address.

    The refusal waits for the address's turn (holding this account's join
    slot), or is `rate-limited` when that is too far off (attempts.address_failed).
    The owner hears of the lock at once, not after that wait: published here.
    """
    if isinstance(err, errors.WrongPin) and err.locked:
        until = timezone.now() + timedelta(seconds=settings.PIN_LOCK_SECONDS)
        group = Room.group_name_for(number)
        await events.publish(
            (events.pin_locked(room_id=err.room_id, group=group, until=until),), layer
        )
    turn = await attempts.address_failed(address=address)
    if not turn.allowed:
        raise p.ClientError(
            p.RATE_LIMITED,
            "Too many failed attempts to join from your network; wait a moment.",
            msg_id=msg_id,
        )
    if turn.wait:
        await asyncio.sleep(turn.wait)


async def take_seat(
    *,
    account: Account,
    seat: services.Seat,
    presence: PresenceStore,
    msg_id: str | None,
    created: bool = False,
    resumed: bool | None = None,
) -> Outcome:
    """Take up the seat: presence now; the room told and `joined` answered by the consumer."""
    participant = seat.participant
    await presence.renew([participant.peer_id], seconds=settings.PRESENCE_TTL)
    for item in seat.outbox:
        if item.event["type"] == events.PEER_LEFT:
            # A seat of ours that this join took over: no sweeper may expire it later.
            await presence.remove(item.event["peer_id"])
    room = seat.room
    membership = Membership(
        room_id=room.pk,
        number=room.number,
        peer_id=participant.peer_id,
        moderator=seat.moderator,
        participant_pk=participant.pk,
        capacity=room.capacity,
        media=room.media,
        peers={other.peer_id: other.channel_name for other in seat.present},
    )
    ice_config = ice.seated_ice(user_id=account.user.pk, address=account.address, now=time.time())
    joined = wire.joined(
        room_object=wire.room(room, participants=seat.participants),
        peer_id=participant.peer_id,
        present=seat.present,
        created=created,
        resume_token=seat.resume_token,
        history=seat.history,
        resumed=resumed,
        re=msg_id,
        ice_config=ice_config,
    )
    return Outcome(
        membership=membership,
        outbox=seat.outbox,
        replies=(joined,),
        seated="create" if created else "resume" if resumed else "join",
        ice=ice_config,
        sfu_back=bool(resumed) and room.media == p.MEDIA_SFU,
    )


# --- Leaving it ---------------------------------------------------------------------------------


async def leave(
    *,
    user_id: int,
    was: Membership,
    reason: str,
    line: Line,
    presence: PresenceStore,
    parking: Parking,
    announce: bool = True,
) -> Outcome:
    """Leave `was`'s room (`announce` False: the room knows); each step whatever the rest did."""
    observe.left(user=user_id, was=was, reason=reason)
    await sfu_relay.tolerated(
        sfu_relay.close_seat(was, holder=line.channel, parking=parking), "closing a Janus session"
    )
    await sfu_relay.tolerated(line.hang_up(was.group), "leaving a room's group")
    await sfu_relay.tolerated(presence.remove(was.peer_id), "removing a peer's presence")
    outbox: events.Outbox = ()
    if announce:
        outbox = await db_call(services.participant_leave)(peer_id=was.peer_id, reason=reason)
    return Outcome(membership=None, outbox=outbox)


async def detach(
    *, user_id: int, was: Membership, line: Line, presence: PresenceStore, parking: Parking
) -> Outcome:
    """The socket dropped: keep the peer for the grace period, for a resume; park its Janus seat."""
    observe.detached(user=user_id, was=was)
    await sfu_relay.tolerated(
        sfu_relay.park_seat(was, holder=line.channel, parking=parking), "parking a Janus seat"
    )
    await sfu_relay.tolerated(line.hang_up(was.group), "leaving a room's group")
    await presence.renew([was.peer_id], seconds=settings.RESUME_GRACE)
    return Outcome(membership=None)


async def let_go(
    *, user_id: int, was: Membership, code: int, resumed: bool, line: Line, parking: Parking
) -> Outcome:
    """The server took the seat (`peer.replaced`, `peer.expired`; the room knows): go quietly.

    A seat taken by a resume leaves its Janus seat to the socket that resumed (sfu/parking.py).
    """
    observe.let_go(user=user_id, was=was, code=code)
    if resumed:
        await sfu_relay.park_seat(was, holder=line.channel, parking=parking)
    else:
        await sfu_relay.close_seat(was, holder=line.channel, parking=parking)
    await line.hang_up(was.group)
    return Outcome(membership=None, close=code)


# --- The owner's moves ---------------------------------------------------------------------------


async def kick(
    *, actor: AbstractBaseUser, membership: Membership, target: str, msg_id: str | None
) -> Outcome:
    """Remove peer `target` from the room (its owner or staff only)."""
    if not membership.moderator:
        raise p.ClientError(p.FORBIDDEN, "Only the room's owner can remove people.", msg_id=msg_id)
    if target == membership.peer_id:
        raise p.ClientError(p.FORBIDDEN, "Use leave to leave the room yourself.", msg_id=msg_id)
    if target not in membership.peers:
        raise p.ClientError(p.UNKNOWN_PEER, "no such peer in this room", msg_id=msg_id)
    outbox = await db_call(services.participant_kick)(
        room_id=membership.room_id, actor=actor, peer_id=target
    )
    observe.kicked(user=actor.pk, membership=membership, target=target)
    return Outcome(membership=membership, outbox=outbox)


def _moderator(membership: Membership, msg_id: str | None) -> None:
    if not membership.moderator:
        raise p.ClientError(p.FORBIDDEN, "only the room's owner can do that", msg_id=msg_id)


async def set_locked(*, membership: Membership, locked: bool, msg_id: str | None) -> Outcome:
    """Lock the room to newcomers, or open it again."""
    _moderator(membership, msg_id)
    outbox = await db_call(services.room_set_locked)(room_id=membership.room_id, locked=locked)
    return Outcome(membership=membership, outbox=outbox)


async def close_room(*, user_id: int, membership: Membership, msg_id: str | None) -> Outcome:
    """End the meeting for everyone (each socket hears `room.closed` and goes)."""
    _moderator(membership, msg_id)
    outbox = await db_call(services.room_close)(room_id=membership.room_id, reason="owner")
    observe.closed_room(user=user_id, membership=membership)
    return Outcome(membership=membership, outbox=outbox)


async def set_mode(
    *, membership: Membership, mode: str, sfu_available: SfuAvailable, msg_id: str | None
) -> Outcome:
    """Pin the room's media to the mesh or the SFU, or let it follow its size (`auto`)."""
    _moderator(membership, msg_id)
    available = mode != p.MEDIA_MESH and await sfu_available()
    outbox = await db_call(services.room_set_mode)(
        room_id=membership.room_id, mode=mode, sfu_available=available
    )
    return Outcome(membership=membership, outbox=outbox)
