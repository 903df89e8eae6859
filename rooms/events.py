"""Events between consumers, carried by the channel layer.

Clients never choose an event's `type`: each protocol message maps to one of
these fixed handlers. Every event names the room it belongs to, and a
consumer drops events for any room but its current one, so a message that
races with a leave can never reach a peer outside the sender's room.
Payloads that go to the client unchanged travel pre-encoded (`text`), so the
recipient does no JSON work.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from rooms import protocol as p

PEER_JOINED = "peer.joined"
PEER_LEFT = "peer.left"
PEER_UPDATED = "peer.updated"
SIGNAL = "signal.forward"
BROADCAST = "room.broadcast"
ROOM_UPDATED = "room.updated"
ROOM_CLOSED = "room.closed"
KICKED = "peer.kicked"
MOVED = "peer.moved"
REPLACED = "peer.replaced"
EXPIRED = "peer.expired"
# To every worker (group WORKERS): an account's sockets must go (logout,
# password change, deactivation, an admin signing it out).
USER_REVOKE = "user.revoke"
# From a worker to one of its own sockets: close, the account was signed out.
SOCKET_REVOKED = "socket.revoked"

# The group every worker's Worker listens on (rooms/worker.py).
WORKERS_GROUP = "workers"

# Why someone left, as the others are told: the protocol's four reasons
# (docs/protocol.md); the database keeps the finer ones for the call history.
_WIRE_LEFT_REASON = {"replaced": "left", "signed-out": "left"}


def peer_joined(*, room_id: int, peer: dict[str, Any], channel: str) -> dict[str, Any]:
    return {
        "type": PEER_JOINED,
        "room": room_id,
        "peer_id": peer["peerId"],
        "channel": channel,
        "text": p.encode(p.peer_joined(peer)),
    }


def peer_left(*, room_id: int, peer_id: str, reason: str) -> dict[str, Any]:
    return {
        "type": PEER_LEFT,
        "room": room_id,
        "peer_id": peer_id,
        "text": p.encode(p.peer_left(peer_id, _WIRE_LEFT_REASON.get(reason, reason))),
    }


def peer_updated(*, room_id: int, peer: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": PEER_UPDATED,
        "room": room_id,
        "peer_id": peer["peerId"],
        "text": p.encode(p.peer_updated(peer)),
    }


def signal(*, room_id: int, text: str) -> dict[str, Any]:
    return {"type": SIGNAL, "room": room_id, "text": text}


def broadcast(*, room_id: int, message: dict[str, Any]) -> dict[str, Any]:
    return {"type": BROADCAST, "room": room_id, "text": p.encode(message)}


def room_updated(*, room_id: int, room: dict[str, Any]) -> dict[str, Any]:
    return {"type": ROOM_UPDATED, "room": room_id, "text": p.encode(p.room_updated(room))}


def room_closed(*, room_id: int, reason: str) -> dict[str, Any]:
    return {"type": ROOM_CLOSED, "room": room_id, "text": p.encode(p.room_closed(reason))}


def kicked(*, room_id: int) -> dict[str, Any]:
    return {"type": KICKED, "room": room_id, "text": p.encode(p.kicked())}


def peer_moved(*, room_id: int, peer_id: str, channel: str) -> dict[str, Any]:
    """A peer resumed on a new socket: same peer id, new channel to send to."""
    return {"type": MOVED, "room": room_id, "peer_id": peer_id, "channel": channel}


def peer_replaced(*, room_id: int, peer_id: str) -> dict[str, Any]:
    """To a resumed peer's old socket: another socket carries this peer now."""
    return {"type": REPLACED, "room": room_id, "peer_id": peer_id}


def peer_expired(*, room_id: int, peer_id: str) -> dict[str, Any]:
    """To a socket whose peer was expired (it stalled): reconnect."""
    return {"type": EXPIRED, "room": room_id, "peer_id": peer_id}


def user_revoke(*, user_id: int, session: str | None, reason: str) -> dict[str, Any]:
    """Close `user_id`'s sockets (only those of one session when `session` is its hash)."""
    return {"type": USER_REVOKE, "user": user_id, "session": session, "reason": reason}


def socket_revoked(*, reason: str) -> dict[str, Any]:
    return {"type": SOCKET_REVOKED, "reason": reason}


def _group_send(group: str, event: dict[str, Any]) -> None:
    async_to_sync(get_channel_layer().group_send)(group, event)


def _send(channel: str, event: dict[str, Any]) -> None:
    async_to_sync(get_channel_layer().send)(channel, event)


def on_commit_group_send(group: str, event: dict[str, Any]) -> None:
    """Send to a room's group once the change that caused it is committed."""
    transaction.on_commit(partial(_group_send, group, event))


def on_commit_send(channel: str, event: dict[str, Any]) -> None:
    transaction.on_commit(partial(_send, channel, event))
