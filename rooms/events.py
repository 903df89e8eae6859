"""Events between workers, carried by the channel layer, and the one way they are published.

Services are pure: they write and return, with their result, an *outbox*
(`Outbox`, a tuple of `Outgoing`) saying what the rest of the system must
hear about it. Whoever called the service publishes that outbox once the
write is committed, and only then: the consumer with `await publish(...)`
after its database call returns, synchronous code (Django admin, the JSON
API, signal receivers) with `publish_on_commit(...)`. Nothing else sends on
the channel layer, except the signaling hot path (`signal`, offers, answers
and candidates, which change nothing stored) and the worker's own traffic.

Clients never choose an event's `type`: each is one of the fixed handlers
below. Every event for a room names the room it belongs to, and a consumer
drops events for any room but its current one, so a message that races with
a leave can never reach a peer outside the sender's room. Payloads that go to
the client unchanged travel pre-encoded (`text`), so the recipient does no
JSON work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from rooms import wire
from rooms.models import Participant

PEER_JOINED = "peer.joined"
PEER_LEFT = "peer.left"
PEER_UPDATED = "peer.updated"
SIGNAL = "signal.forward"
BROADCAST = "room.broadcast"
ROOM_UPDATED = "room.updated"
ROOM_CLOSED = "room.closed"
KICKED = "peer.kicked"
# To the room's group, shown only by its moderators' sockets (owner, staff).
MODERATORS = "room.moderators"
MOVED = "peer.moved"
REPLACED = "peer.replaced"
EXPIRED = "peer.expired"
# To every worker (group WORKERS_GROUP): an account's sockets must go (logout,
# password change, deactivation, an admin signing it out).
USER_REVOKE = "user.revoke"
# From a worker to one of its own sockets: close, the account was signed out.
SOCKET_REVOKED = "socket.revoked"
# To every worker: make Janus follow Django (kick feeds, destroy a room); the
# first worker does it, the others find it done (sfu/lifecycle.py).
SFU_CLEANUP = "sfu.cleanup"
# To every worker: at `at`, see whether an `auto` room that shrank goes back to
# the mesh (services.room_media_return; the first worker decides, under the lock).
MEDIA_CHECK = "room.media_check"
# To every worker: at `at`, a room that went back to the mesh lets go of Janus:
# its sockets' seats close and the Janus room is destroyed, unless it is on the
# SFU again by then.
SFU_RELEASE = "sfu.release"
# From a worker to one of its sockets: the grace is over, close your Janus seat.
SFU_RELEASED = "sfu.released"
# To every worker: the worker `owner` lets go of a peer's parked Janus seat,
# which another worker claimed (keep the session) or could not (end it).
SFU_SEAT_RELEASE = "sfu.seat_release"

# The group every worker's Worker listens on (signaling/runtime/group.py).
WORKERS_GROUP = "workers"

Event = dict[str, Any]


@dataclass(frozen=True)
class Outgoing:
    """One event to publish: to a room's (or the workers') group, or to one socket's channel."""

    event: Event
    group: str | None = None
    channel: str | None = None


Outbox = tuple[Outgoing, ...]


async def publish(outbox: Iterable[Outgoing], layer: Any = None) -> None:
    """Send an outbox, in order. Call it once the write that produced it is committed."""
    layer = layer or get_channel_layer()
    for item in outbox:
        if item.group is not None:
            await layer.group_send(item.group, item.event)
        else:
            await layer.send(item.channel, item.event)


def publish_on_commit(outbox: Outbox) -> None:
    """`publish` for synchronous code: when the current transaction commits (now outside one)."""
    if outbox:
        transaction.on_commit(lambda: async_to_sync(publish)(outbox))


# --- The events ----------------------------------------------------------------------------


def peer_joined(*, room_id: int, group: str, participant: Participant) -> Outgoing:
    return Outgoing(
        group=group,
        event={
            "type": PEER_JOINED,
            "room": room_id,
            "peer_id": participant.peer_id,
            "channel": participant.channel_name,
            "text": wire.encode(wire.peer_joined(participant)),
        },
    )


def peer_left(*, room_id: int, group: str, peer_id: str, reason: str) -> Outgoing:
    return Outgoing(
        group=group,
        event={
            "type": PEER_LEFT,
            "room": room_id,
            "peer_id": peer_id,
            "text": wire.encode(wire.peer_left(peer_id, reason)),
        },
    )


def peer_updated(*, room_id: int, group: str, participant: Participant) -> Outgoing:
    return Outgoing(
        group=group,
        event={
            "type": PEER_UPDATED,
            "room": room_id,
            "peer_id": participant.peer_id,
            "text": wire.encode(wire.peer_updated(participant)),
        },
    )


def signal(*, room_id: int, text: str) -> Event:
    """An offer, answer or candidate for one peer (sent straight to its channel)."""
    return {"type": SIGNAL, "room": room_id, "text": text}


def broadcast(*, room_id: int, group: str, message: wire.Message) -> Outgoing:
    return Outgoing(
        group=group, event={"type": BROADCAST, "room": room_id, "text": wire.encode(message)}
    )


def room_updated(*, room_id: int, group: str, room_object: wire.Message) -> Outgoing:
    return Outgoing(
        group=group,
        event={
            "type": ROOM_UPDATED,
            "room": room_id,
            # Where the media goes now: a consumer refuses SFU requests on the mesh.
            "media": room_object["media"],
            "text": wire.encode(wire.room_updated(room_object)),
        },
    )


def room_closed(*, room_id: int, group: str, reason: str) -> Outgoing:
    return Outgoing(
        group=group,
        event={"type": ROOM_CLOSED, "room": room_id, "text": wire.encode(wire.room_closed(reason))},
    )


def pin_locked(*, room_id: int, group: str, until: datetime) -> Outgoing:
    """The room's PIN was locked by wrong guesses: its owner (and staff) in it are told."""
    return Outgoing(
        group=group,
        event={
            "type": MODERATORS,
            "room": room_id,
            "text": wire.encode(wire.pin_locked(until=until)),
        },
    )


def kicked(*, room_id: int, channel: str) -> Outgoing:
    return Outgoing(
        channel=channel,
        event={"type": KICKED, "room": room_id, "text": wire.encode(wire.kicked())},
    )


def peer_moved(*, room_id: int, group: str, peer_id: str, channel: str) -> Outgoing:
    """A peer resumed on a new socket: same peer id, new channel to send to."""
    return Outgoing(
        group=group, event={"type": MOVED, "room": room_id, "peer_id": peer_id, "channel": channel}
    )


def peer_replaced(*, room_id: int, peer_id: str, channel: str, resumed: bool = False) -> Outgoing:
    """To a seat's old socket: another socket carries this seat now (4409).

    `resumed`: the same peer goes on there, with its Janus seat (the old
    socket parks it for the new one rather than ending it).
    """
    return Outgoing(
        channel=channel,
        event={"type": REPLACED, "room": room_id, "peer_id": peer_id, "resumed": resumed},
    )


def peer_expired(*, room_id: int, peer_id: str, channel: str) -> Outgoing:
    """To a socket whose peer was expired (it stalled): reconnect."""
    return Outgoing(channel=channel, event={"type": EXPIRED, "room": room_id, "peer_id": peer_id})


def user_revoke(*, user_id: int, session: str | None, reason: str) -> Outgoing:
    """Close `user_id`'s sockets (only those of one session when `session` is its hash)."""
    return Outgoing(
        group=WORKERS_GROUP,
        event={"type": USER_REVOKE, "user": user_id, "session": session, "reason": reason},
    )


def socket_revoked(*, reason: str) -> Event:
    return {"type": SOCKET_REVOKED, "reason": reason}


def sfu_cleanup(*, room_id: int, feeds: tuple[int, ...] = (), destroy: bool = False) -> Outgoing:
    """Kick `feeds` (Participant primary keys) from Janus room `room_id`, or destroy it."""
    return Outgoing(
        group=WORKERS_GROUP,
        event={"type": SFU_CLEANUP, "room": room_id, "feeds": list(feeds), "destroy": destroy},
    )


def media_check(*, room_id: int, at: float) -> Outgoing:
    """Ask every worker to check at `at` (UNIX time) whether room `room_id` goes back to mesh."""
    return Outgoing(group=WORKERS_GROUP, event={"type": MEDIA_CHECK, "room": room_id, "at": at})


def sfu_release(*, room_id: int, at: float) -> Outgoing:
    """Ask every worker to let go of Janus room `room_id` at `at`, if it is still off the SFU."""
    return Outgoing(group=WORKERS_GROUP, event={"type": SFU_RELEASE, "room": room_id, "at": at})


def sfu_released(*, room_id: int) -> Event:
    return {"type": SFU_RELEASED, "room": room_id}


def sfu_seat_release(*, owner: str, peer_id: str, session_id: int, keep: bool) -> Outgoing:
    """Worker `owner`: let go of `peer_id`'s Janus session `session_id` (sfu/parking.py)."""
    return Outgoing(
        group=WORKERS_GROUP,
        event={
            "type": SFU_SEAT_RELEASE,
            "owner": owner,
            "peer_id": peer_id,
            "session": session_id,
            "keep": keep,
        },
    )
