"""What a signaling socket does with each client message and each room event it hears.

The client messages: one handler per type of the protocol, registered with
`@handles(...)` (signaling/messages.py checks that none is missing). The
room's events (rooms/events.py): one reaction per type, which the consumer
takes as its channel-layer handlers. Both see the socket as a `Client`
(declared here, implemented by the consumer) and hand the real work to
`signaling.seating`, `signaling.sfu_relay` or `rooms.services`, gathering
their collaborators here, in one place.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from django.conf import settings

from accounts import ice
from infra.db import db_call
from rooms import events, services, wire
from rooms import protocol as p
from rooms.models import Participant
from rooms.services import quality
from sfu import lifecycle
from sfu.parking import get_parking
from signaling import limits, observe, seating, sfu_relay
from signaling.membership import Membership
from signaling.messages import RELAYED, Registry
from signaling.presence import get_presence
from signaling.runtime.joins import JoinSlots
from signaling.socket import Socket


class Client(Socket, Protocol):
    """A socket as its message handlers and event reactions see it (the consumer is one)."""

    # The channel layer its channel is on.
    channel_layer: Any
    # Its worker's join slots (signaling/runtime/joins.py).
    join_slots: JoinSlots

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send a frame as it is (an event's text, encoded once for the whole room)."""
        ...

    async def send_json(self, message: wire.Message) -> None: ...

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None: ...

    async def deliver(self, outcome: seating.Outcome) -> None:
        """Send what a seating function returned, and take the membership it says."""
        ...

    def forget_room(self) -> Membership | None:
        """Drop the membership at once (later events are not its); return what it was."""
        ...


handles = Registry()
# `ice-servers` messages on their way (Membership.ice_renewal), held from the collector.
_renewals: set[asyncio.Task] = set()


# --- The collaborators, from the socket --------------------------------------------------------


def line(socket: Client) -> seating.Line:
    return seating.Line(channel=socket.channel_name, layer=socket.channel_layer)


def joining(socket: Client) -> dict[str, Any]:
    """What the seating functions that take a seat work with."""
    return {
        "account": socket.account,
        "membership": socket.membership,
        "line": line(socket),
        "presence": get_presence(),
        "slots": socket.join_slots,
        "sfu_available": lifecycle.available,
    }


def relay(socket: Client) -> sfu_relay.Relay:
    return sfu_relay.Relay(
        account=socket.account,
        membership=socket.membership,
        holder=socket.channel_name,
        send=socket.send_json,
        parking=get_parking(),
    )


async def leave_room(socket: Client, *, reason: str, announce: bool = True) -> None:
    """Leave the socket's room, if any; `announce` False when the server told the room already."""
    was = socket.forget_room()
    if was is not None:
        outcome = await seating.leave(
            user_id=socket.user_id,
            was=was,
            reason=reason,
            announce=announce,
            line=line(socket),
            presence=get_presence(),
            parking=get_parking(),
        )
        await socket.deliver(outcome)


async def detach(socket: Client) -> None:
    """The socket dropped without a close frame: keep its peer for a resume."""
    was = socket.forget_room()
    if was is not None:
        outcome = await seating.detach(
            user_id=socket.user_id,
            was=was,
            line=line(socket),
            presence=get_presence(),
            parking=get_parking(),
        )
        await socket.deliver(outcome)


def renew_ice_later(socket: Client, membership: Membership) -> None:
    """Send fresh TURN credentials half-way through the life of the ones the seat has."""

    def renew() -> None:
        if socket.membership is membership and not socket.closing:
            config = ice.seated_ice(
                user_id=socket.user_id, address=socket.account.address, now=time.time()
            )
            if config.expires is not None:
                renew_ice_later(socket, membership)
            # Held until sent: the loop keeps only weak references to tasks.
            _renewals.add(task := asyncio.ensure_future(socket.send_json(wire.ice_servers(config))))
            task.add_done_callback(_renewals.discard)

    membership.ice_renewal = asyncio.get_running_loop().call_later(settings.TURN_TTL / 2, renew)


async def publish(socket: Client, outbox: events.Outbox) -> None:
    await events.publish(outbox, socket.channel_layer)


# --- Client messages ------------------------------------------------------------------------------


@handles(*RELAYED)
async def forward(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    """An offer, answer, candidate or handover for one peer: straight to its channel."""
    membership = socket.membership
    channel = membership.peers.get(msg["to"])
    if channel is None:
        raise p.ClientError(p.UNKNOWN_PEER, "no such peer in this room", msg_id=msg_id)
    text = wire.encode(wire.forwarded(msg, membership.peer_id))
    observe.forwarded(msg["type"])
    await socket.channel_layer.send(channel, events.signal(room_id=membership.room_id, text=text))


@handles(p.CREATE)
@observe.join_request("create")
async def create(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    await socket.deliver(await seating.create(msg=msg, msg_id=msg_id, **joining(socket)))


@handles(p.JOIN)
@observe.join_request("join")
async def join(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    await socket.deliver(await seating.join(msg=msg, msg_id=msg_id, **joining(socket)))


@handles(p.LEAVE)
async def leave(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    await leave_room(socket, reason=Participant.LeftReason.LEFT)


@handles(p.KICK)
async def kick(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    outcome = await seating.kick(
        actor=socket.account.user, membership=socket.membership, target=msg["peer"], msg_id=msg_id
    )
    await socket.deliver(outcome)


@handles(p.LOCK, p.UNLOCK)
async def lock(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    locked = msg["type"] == p.LOCK
    outcome = await seating.set_locked(membership=socket.membership, locked=locked, msg_id=msg_id)
    await socket.deliver(outcome)


@handles(p.CLOSE)
async def close(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    outcome = await seating.close_room(
        user_id=socket.user_id, membership=socket.membership, msg_id=msg_id
    )
    await socket.deliver(outcome)


@handles(p.MODE)
async def mode(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    outcome = await seating.set_mode(
        membership=socket.membership,
        mode=msg["mode"],
        sfu_available=lifecycle.available,
        msg_id=msg_id,
    )
    await socket.deliver(outcome)


@handles(*sfu_relay.HANDLERS)
async def sfu(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    await sfu_relay.HANDLERS[msg["type"]](relay(socket), msg, msg_id)


@handles(p.MEDIA)
async def media(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    outbox = await db_call(services.participant_set_media)(
        peer_id=socket.membership.peer_id,
        audio=msg["audio"],
        video=msg["video"],
        screen=msg["screen"],
    )
    await publish(socket, outbox)


@handles(p.CHAT)
async def chat(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    if not socket.account.chat.take():
        raise p.ClientError(p.RATE_LIMITED, "You are sending chat too fast; slow down.")
    if not await limits.account_volume(user_id=socket.user_id, kind="chat"):
        raise p.ClientError(
            p.RATE_LIMITED, "Your account has sent too much chat lately; slow down."
        )
    membership = socket.membership
    outbox = await db_call(services.chat_message_create)(
        room_id=membership.room_id,
        user=socket.account.user,
        peer_id=membership.peer_id,
        text=msg["text"],
    )
    await publish(socket, outbox)


@handles(p.PING)
async def ping(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    await socket.send_json(wire.pong(msg_id))


@handles(p.QUALITY)
async def quality_report(socket: Client, msg: dict[str, Any], msg_id: str | None) -> None:
    """Keep the browser's call-quality report about one peer; no answer (extension)."""
    membership = socket.membership
    if msg["peer"] == membership.peer_id:
        raise p.ClientError(p.UNKNOWN_PEER, "report on the other peers, not yourself")
    if not socket.account.quality_limit().take(peer=msg["peer"], final=msg["final"]):
        raise p.ClientError(
            p.RATE_LIMITED, "too many quality reports; send one per peer every 10 s"
        )
    outbox = await db_call(quality.quality_record)(
        room_id=membership.room_id,
        peer_id=membership.peer_id,
        remote_peer_id=msg["peer"],
        final=msg["final"],
        summary=quality.Summary.from_message(msg),
    )
    await publish(socket, outbox)


# --- Room events (rooms/events.py), as the consumer's channel-layer handlers ------------------


async def heard(socket: Client, event: dict[str, Any]) -> None:
    """A room event the membership takes in; its text goes on to the browser when it says so."""
    membership = socket.membership
    if membership is not None and membership.hears(event):
        await socket.send(text_data=event["text"])


def _current(socket: Client, event: dict[str, Any]) -> Any:
    """The socket's membership if the event is for its room, else None."""
    membership = socket.membership
    if membership is not None and event["room"] == membership.room_id:
        return membership
    return None


async def sfu_released(socket: Client, event: dict[str, Any]) -> None:
    """The room went back to the mesh and its grace is over: this socket's Janus seat goes."""
    membership = _current(socket, event)
    if membership is not None:
        await sfu_relay.released(membership, holder=socket.channel_name, parking=get_parking())


async def _sent_away(socket: Client, event: dict[str, Any], *, reason: str, code: int) -> None:
    """Kicked, or the room closed: tell the browser, leave without a word to the room, close."""
    if _current(socket, event):
        await socket.send(text_data=event["text"])
        await leave_room(socket, reason=reason, announce=False)
        await socket.close(code=code)


async def peer_kicked(socket: Client, event: dict[str, Any]) -> None:
    await _sent_away(socket, event, reason=Participant.LeftReason.KICKED, code=p.CLOSE_KICKED)


async def room_closed(socket: Client, event: dict[str, Any]) -> None:
    reason = Participant.LeftReason.CLOSED
    await _sent_away(socket, event, reason=reason, code=p.CLOSE_ROOM_CLOSED)


async def _let_go(socket: Client, event: dict[str, Any], *, code: int) -> None:
    """Leave the room without a word to it (the server told it already) and close."""
    membership = _current(socket, event)
    if membership is not None and event["peer_id"] == membership.peer_id:
        socket.forget_room()
        outcome = await seating.let_go(
            user_id=socket.user_id,
            was=membership,
            code=code,
            resumed=bool(event.get("resumed")),
            line=line(socket),
            parking=get_parking(),
        )
        await socket.deliver(outcome)


async def peer_replaced(socket: Client, event: dict[str, Any]) -> None:
    """Our seat went to another socket (a resume, or this account joining again): go."""
    await _let_go(socket, event, code=p.CLOSE_REPLACED)


async def peer_expired(socket: Client, event: dict[str, Any]) -> None:
    """Our peer was expired while this socket lived on (a stall): start again."""
    await _let_go(socket, event, code=p.CLOSE_RECONNECT)


async def socket_revoked(socket: Client, event: dict[str, Any]) -> None:
    """The account was signed out (logout, new password, blocked, an admin): go."""
    await leave_room(socket, reason=event["reason"])
    await socket.close(code=p.CLOSE_UNAUTHENTICATED)
