"""The signaling WebSocket: one consumer per browser tab.

Kept thin: `rooms.protocol` validates, `rooms.services` decides, `rooms.limits`
throttles, `rooms.presence` / `rooms.worker` keep presence honest, and this
class moves messages. The forwarding path (offer/answer/candidate) touches
neither the database nor Redis beyond the one send: the consumer keeps its
room's peers (peer id -> channel) in memory, learned from `joined` and kept
current by the room's `peer.joined` / `peer.left` / `peer.moved` events.

A socket that drops without a close frame (network change, a dying worker)
does not leave: its peer stays for `RESUME_GRACE` seconds, during which the
client may `join` with its `resumeToken` and carry on as the same peer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from rooms import events, limits, services
from rooms import protocol as p
from rooms.connections import get_connections
from rooms.db import db_call
from rooms.models import Participant, Room
from rooms.presence import get_presence
from rooms.revocation import session_hash
from rooms.selectors import peer_to_dict, room_get, user_to_dict
from rooms.worker import get_worker
from transport.consumer import DirectDispatch

logger = logging.getLogger(__name__)

# Consecutive invalid frames tolerated before the socket is closed (4400).
MAX_INVALID_FRAMES = 20
# Close codes that mean the client meant to go (tab closed, page left): no grace.
CLEAN_CLOSE_CODES = frozenset({1000, 1001})


class SignalingConsumer(DirectDispatch, AsyncWebsocketConsumer):
    room_id: int | None = None
    group: str | None = None
    peer_id: str | None = None
    peers: dict[str, str]
    moderator: bool = False
    invalid_frames: int = 0
    # Set when the server closes the socket for the client to come back (1012).
    detach_on_close: bool = False
    last_refusal_notice: float = float("-inf")
    worker = None
    # Set once the server has closed the socket: frames still queued are not
    # handled, and nothing more is sent.
    closing: bool = False
    admitted: bool = False

    # --- Connection lifecycle ----------------------------------------------------

    async def connect(self) -> None:
        self.peers = {}
        self.user = self.scope.get("user")
        self.max_bytes = settings.SIGNALING_MAX_MESSAGE_BYTES
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            # Accept first: a close before accept loses its code in the HTTP 403.
            await self.close(code=p.CLOSE_UNAUTHENTICATED)
            return
        if not await get_connections().admit(user_id=self.user.pk, channel=self.channel_name):
            await self.close(code=p.CLOSE_RATE_LIMITED, reason="too many connections")
            return
        self.admitted = True
        client = self.scope.get("client")
        self.address = client[0] if client else None
        self.session_hash = session_hash(self.scope.get("session_key"))
        self.user_dict = user_to_dict(self.user)
        self.bucket = limits.message_bucket()
        self.strikes = limits.strike_bucket()
        self.chat_bucket = limits.chat_bucket()
        self.worker = get_worker()
        self.worker.add(self)
        await self.worker.ready()

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.closing:
            await super().send(text_data=text_data, bytes_data=bytes_data)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if self.closing:
            return
        self.closing = True
        await super().close(code=code, reason=reason)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Channels' version ends with aclose_old_connections(): a hop to the
        # thread-sensitive thread on every disconnect. Database work here runs
        # through db_call, which closes stale connections around each call.
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        if self.worker is not None:
            self.worker.discard(self)
        if self.admitted:
            self.admitted = False
            await get_connections().release(user_id=self.user.pk, channel=self.channel_name)
        if self.room_id is None:
            return
        if code in CLEAN_CLOSE_CODES and not self.detach_on_close:
            await self.leave_room(reason=Participant.LeftReason.DISCONNECTED)
        else:
            await self.detach()

    # --- Incoming frames ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return  # closed by us (anonymous, refused, kicked...): what is still queued goes unread
        msg_id = None
        try:
            if text_data is None:
                raise p.bad("frames must be text (JSON), not binary")
            # Characters never outnumber bytes; only long frames need encoding.
            if len(text_data) > self.max_bytes or (
                len(text_data) * 4 > self.max_bytes
                and len(text_data.encode("utf-8", "surrogatepass")) > self.max_bytes
            ):
                raise p.ClientError(p.TOO_LARGE, f"a message may be at most {self.max_bytes} bytes")
            if not self.bucket.take():
                await self.refuse_flood()
                return
            msg, msg_id = p.parse(text_data)
            handler = self.handlers[msg["type"]]
            if msg["type"] in p.IN_ROOM_TYPES and self.room_id is None:
                raise p.ClientError(p.NOT_IN_ROOM, "join a room first")
            await handler(self, msg, msg_id)
        except p.ClientError as err:
            if err.msg_id is None:
                err.msg_id = msg_id
            await self.reply_error(err)
            return
        except Exception:
            # A fault of ours (database down, a bug): the client is told to retry
            # and the socket stays usable; the traceback goes to the log.
            logger.exception("signaling: failed to handle a message from user %s", self.user.pk)
            await self.send_json(
                p.error(p.SERVER_BUSY, "the server could not do that; try again", msg_id)
            )
            return
        self.invalid_frames = 0

    async def reply_error(self, err: p.ClientError) -> None:
        await self.send(text_data=p.encode(p.error(err.code, err.message, err.msg_id)))
        if err.code in (p.BAD_MESSAGE, p.TOO_LARGE):
            self.invalid_frames += 1
            if self.invalid_frames >= MAX_INVALID_FRAMES:
                await self.close(code=p.CLOSE_BAD_INPUT)

    async def refuse_flood(self) -> None:
        if not self.strikes.take():
            await self.close(code=p.CLOSE_RATE_LIMITED)
            return
        # One notice a second is enough: answering every refused frame would
        # spend the worker's time on the flooder, at the other rooms' expense.
        now = time.monotonic()
        if now - self.last_refusal_notice >= 1:
            self.last_refusal_notice = now
            await self.send_json(p.error(p.RATE_LIMITED, "too many messages; slow down"))

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send(text_data=p.encode(message))

    # --- Client message handlers ------------------------------------------------------

    async def on_forward(self, msg: dict[str, Any], msg_id: str | None) -> None:
        channel = self.peers.get(msg["to"])
        if channel is None:
            raise p.ClientError(p.UNKNOWN_PEER, "no such peer in this room", msg_id=msg_id)
        text = p.encode(p.forwarded(msg, self.peer_id))
        await self.channel_layer.send(channel, events.signal(room_id=self.room_id, text=text))

    async def on_create(self, msg: dict[str, Any], msg_id: str | None) -> None:
        self.ensure_not_in_room(msg_id)
        with self.join_slot(msg_id):
            await self.create_room(msg, msg_id)

    def join_slot(self, msg_id: str | None) -> contextlib.AbstractContextManager[None]:
        """One of the account's few join slots on this worker, or `rate-limited` at once.

        A socket handles one frame at a time, so it has one join in flight at
        most; this bounds an account's many sockets too, before any Redis or
        database work: a script's burst of joins costs this worker almost
        nothing, and the database sees at most a few at a time.
        """
        slot = self.worker.join_slot(self.user.pk)
        if slot is None:
            raise p.ClientError(
                p.RATE_LIMITED,
                "Too many joins at once from your account; try again.",
                msg_id=msg_id,
            )
        return slot

    async def create_room(self, msg: dict[str, Any], msg_id: str | None) -> None:
        for _ in range(services.NUMBER_ATTEMPTS):
            number = services.new_room_number()
            result = await self.subscribed_call(
                number,
                services.room_create_and_join,
                number=number,
                owner=self.user,
                channel_name=self.channel_name,
                name=msg["name"],
                capacity=msg["capacity"],
                pin=msg["pin"],
            )
            if result is not None:
                break
        else:
            raise p.ClientError(
                p.SERVER_BUSY, "Could not find a free room number; try again.", msg_id=msg_id
            )
        await self.entered(result, msg_id=msg_id, created=True, resumed=None)

    async def on_join(self, msg: dict[str, Any], msg_id: str | None) -> None:
        self.ensure_not_in_room(msg_id)
        with self.join_slot(msg_id):
            await self.join_room(msg, msg_id)

    async def join_room(self, msg: dict[str, Any], msg_id: str | None) -> None:
        if msg["resume"] is not None and await self.resume(
            number=msg["room"], token=msg["resume"], msg_id=msg_id
        ):
            return
        # No token, or an expired, foreign or forged one: an ordinary join (which
        # says it did not resume when a token was given).
        await self.enter_room(
            number=msg["room"],
            pin=msg["pin"],
            msg_id=msg_id,
            resumed=False if msg["resume"] is not None else None,
        )

    async def on_media(self, msg: dict[str, Any], msg_id: str | None) -> None:
        participant = await db_call(services.participant_set_media)(
            peer_id=self.peer_id, audio=msg["audio"], video=msg["video"], screen=msg["screen"]
        )
        if participant is not None:
            peer = peer_to_dict(participant)
            await self.channel_layer.group_send(
                self.group, events.peer_updated(room_id=self.room_id, peer=peer)
            )

    async def on_chat(self, msg: dict[str, Any], msg_id: str | None) -> None:
        if not self.chat_bucket.take():
            raise p.ClientError(p.RATE_LIMITED, "You are sending chat too fast; slow down.")
        saved = await db_call(services.chat_message_create)(
            room_id=self.room_id, user=self.user, peer_id=self.peer_id, text=msg["text"]
        )
        line = p.chat(
            sender=self.peer_id,
            user=self.user_dict,
            text=saved.text,
            ts=saved.created_at.isoformat().replace("+00:00", "Z"),
        )
        await self.channel_layer.group_send(
            self.group, events.broadcast(room_id=self.room_id, message=line)
        )

    async def on_leave(self, msg: dict[str, Any], msg_id: str | None) -> None:
        await self.leave_room(reason=Participant.LeftReason.LEFT)

    async def on_kick(self, msg: dict[str, Any], msg_id: str | None) -> None:
        if not self.moderator:
            raise p.ClientError(p.FORBIDDEN, "Only the room's owner can remove people.")
        if msg["peer"] == self.peer_id:
            raise p.ClientError(p.FORBIDDEN, "Use leave to leave the room yourself.")
        if msg["peer"] not in self.peers:
            raise p.ClientError(p.UNKNOWN_PEER, "no such peer in this room")
        await db_call(services.participant_kick)(
            room_id=self.room_id, actor=self.user, peer_id=msg["peer"]
        )

    async def on_lock(self, msg: dict[str, Any], msg_id: str | None) -> None:
        await self.moderate(msg_id, services.room_set_locked, locked=msg["type"] == p.LOCK)

    async def on_close(self, msg: dict[str, Any], msg_id: str | None) -> None:
        await self.moderate(msg_id, services.room_close, reason="owner")

    async def on_ping(self, msg: dict[str, Any], msg_id: str | None) -> None:
        await self.send_json(p.pong(msg_id))

    handlers = {
        p.CREATE: on_create,
        p.JOIN: on_join,
        p.OFFER: on_forward,
        p.ANSWER: on_forward,
        p.CANDIDATE: on_forward,
        p.MEDIA: on_media,
        p.CHAT: on_chat,
        p.LEAVE: on_leave,
        p.KICK: on_kick,
        p.LOCK: on_lock,
        p.UNLOCK: on_lock,
        p.CLOSE: on_close,
        p.PING: on_ping,
    }

    # --- Room membership --------------------------------------------------------------

    def ensure_not_in_room(self, msg_id: str | None) -> None:
        if self.room_id is not None:
            raise p.ClientError(
                p.ALREADY_IN_ROOM, "leave this room before joining another", msg_id=msg_id
            )

    async def enter_room(
        self,
        *,
        number: str,
        pin: str | None,
        msg_id: str | None,
        resumed: bool | None = None,
    ) -> None:
        # The failure is reserved before the room is looked at, so parallel
        # attempts (many sockets, many accounts behind one address) evaluate
        # at most the cap; an attempt that does not fail gives it back.
        attempt = await limits.reserve_attempt(user_id=self.user.pk, address=self.address)
        if attempt is None:
            raise p.ClientError(
                p.RATE_LIMITED, "Too many failed attempts to join; wait a while.", msg_id=msg_id
            )
        try:
            result = await self.subscribed_call(
                number,
                services.room_join,
                number=number,
                user=self.user,
                channel_name=self.channel_name,
                pin=pin,
            )
        except p.ClientError as err:
            if err.code not in (p.ROOM_NOT_FOUND, p.BAD_PIN):
                await limits.release_attempt(attempt)
            err.msg_id = msg_id
            raise
        except BaseException:
            await limits.release_attempt(attempt)
            raise
        await self.entered(result, msg_id=msg_id, created=False, resumed=resumed)
        await limits.release_attempt(attempt)

    async def subscribed_call(
        self, room_number: str, call: Callable[..., Any], /, **kwargs: Any
    ) -> Any | None:
        """Subscribe to room `room_number`'s group, then run `call` on a database thread.

        Subscribing first means no `peer.joined` committed after ours is missed
        (duplicates of peers already listed are dropped in peer_joined()). The
        subscription stays only if `call` admitted us: not when it raises or
        returns None.
        """
        group = Room.group_name_for(room_number)
        await self.channel_layer.group_add(group, self.channel_name)
        try:
            result = await db_call(call)(**kwargs)
        except BaseException:
            await self.channel_layer.group_discard(group, self.channel_name)
            raise
        if result is None:
            await self.channel_layer.group_discard(group, self.channel_name)
        return result

    async def entered(
        self,
        result: services.JoinResult,
        *,
        msg_id: str | None,
        created: bool,
        resumed: bool | None,
    ) -> None:
        await get_presence().renew([result.participant.peer_id], seconds=settings.PRESENCE_TTL)
        # One seat per account: the seat this join took over leaves the room
        # (the others see it go before they see the newcomer) and its socket,
        # wherever it is, is closed with 4409.
        for peer_id, channel in result.replaced:
            await get_presence().remove(peer_id)
            await self.channel_layer.group_send(
                result.room.group_name,
                events.peer_left(
                    room_id=result.room.pk,
                    peer_id=peer_id,
                    reason=Participant.LeftReason.REPLACED,
                ),
            )
            await self.channel_layer.send(
                channel, events.peer_replaced(room_id=result.room.pk, peer_id=peer_id)
            )
        # A room just created has nobody to tell: whoever joins it later finds
        # its owner in the database.
        if not created:
            # Before answering: by the time the newcomer can act on `joined`,
            # the others' workers have been told where it is.
            await self.channel_layer.group_send(
                result.room.group_name,
                events.peer_joined(
                    room_id=result.room.pk, peer=result.peer_dict, channel=self.channel_name
                ),
            )
        await self.settle(result, msg_id=msg_id, created=created, resumed=resumed)

    async def resume(self, *, number: str, token: str, msg_id: str | None) -> bool:
        """Carry on as the peer the token names, if it is still within its grace period."""
        peer_id = services.resume_token_peer(token=token, user=self.user)
        if peer_id is None:
            return False
        # Taking the presence first means no sweeper can expire the peer under us.
        result = None
        if await get_presence().take(peer_id, seconds=settings.PRESENCE_TTL):
            result = await self.subscribed_call(
                number,
                services.participant_resume,
                peer_id=peer_id,
                number=number,
                user=self.user,
                channel_name=self.channel_name,
            )
        if result is None:
            if await db_call(services.participant_was_replaced)(peer_id=peer_id, user=self.user):
                # The seat moved to another tab or device of this account since:
                # do not take it back; this socket is the one that goes.
                await self.close(code=p.CLOSE_REPLACED)
                return True
            return False
        room_id, peer_id = result.room.pk, result.participant.peer_id
        # Tell the room where the peer is now before telling the client, so an
        # offer the client provokes cannot go to the old socket.
        await self.channel_layer.group_send(
            result.room.group_name,
            events.peer_moved(room_id=room_id, peer_id=peer_id, channel=self.channel_name),
        )
        if result.previous_channel and result.previous_channel != self.channel_name:
            await self.channel_layer.send(
                result.previous_channel, events.peer_replaced(room_id=room_id, peer_id=peer_id)
            )
        await self.settle(result, msg_id=msg_id, created=False, resumed=True)
        return True

    async def settle(
        self,
        result: services.JoinResult,
        *,
        msg_id: str | None,
        created: bool,
        resumed: bool | None,
    ) -> None:
        """Take up the room `result` admitted us to, and tell the client."""
        self.room_id = result.room.pk
        self.group = result.room.group_name
        self.peer_id = result.participant.peer_id
        self.moderator = result.is_moderator
        self.peers = {peer["peerId"]: channel for peer, channel in result.peers}
        answer = p.joined(
            room=result.room_dict,
            peer_id=self.peer_id,
            peers=[peer for peer, _ in result.peers],
            created=created,
            resume_token=result.resume_token,
            history=result.history,
            re=msg_id,
        )
        if resumed is not None:
            answer["resumed"] = resumed
            if resumed:
                # What was sent to the old socket while it was away is gone;
                # the client restarts ICE to recover anything it missed.
                answer["replayed"] = False
        await self.send_json(answer)

    def forget_room(self) -> tuple[int, str, str] | None:
        """Drop the room state; return what it was (room id, group, peer id)."""
        if self.room_id is None:
            return None
        was = (self.room_id, self.group, self.peer_id)
        self.room_id = self.group = self.peer_id = None
        self.peers = {}
        self.moderator = False
        return was

    async def detach(self) -> None:
        """The socket dropped: keep the peer for the grace period, for a resume."""
        was = self.forget_room()
        if was is None:
            return
        _, group, peer_id = was
        await self.channel_layer.group_discard(group, self.channel_name)
        await get_presence().renew([peer_id], seconds=settings.RESUME_GRACE)

    async def leave_room(self, *, reason: str, announce: bool = True) -> None:
        """Leave the current room, if any; `announce` False when the server already did."""
        was = self.forget_room()
        if was is None:
            return
        room_id, group, peer_id = was
        await self.channel_layer.group_discard(group, self.channel_name)
        await get_presence().remove(peer_id)
        if announce:
            still_there = await db_call(services.participant_leave)(peer_id=peer_id, reason=reason)
            if still_there:
                await self.channel_layer.group_send(
                    group, events.peer_left(room_id=room_id, peer_id=peer_id, reason=reason)
                )

    async def moderate(self, msg_id: str | None, action: Any, **kwargs: Any) -> None:
        if not self.moderator:
            raise p.ClientError(p.FORBIDDEN, "only the room's owner can do that", msg_id=msg_id)
        room = await db_call(room_get)(room_id=self.room_id)
        await db_call(action)(room=room, **kwargs)

    # --- Channel-layer events (types in rooms.events) ------------------------------------

    def current(self, event: dict[str, Any]) -> bool:
        return event["room"] == self.room_id and self.room_id is not None

    async def signal_forward(self, event: dict[str, Any]) -> None:
        if self.current(event):
            await self.send(text_data=event["text"])

    async def room_broadcast(self, event: dict[str, Any]) -> None:
        if self.current(event):
            await self.send(text_data=event["text"])

    async def room_updated(self, event: dict[str, Any]) -> None:
        if self.current(event):
            await self.send(text_data=event["text"])

    async def peer_joined(self, event: dict[str, Any]) -> None:
        peer_id = event["peer_id"]
        if not self.current(event) or peer_id == self.peer_id or peer_id in self.peers:
            return
        self.peers[peer_id] = event["channel"]
        await self.send(text_data=event["text"])

    async def peer_left(self, event: dict[str, Any]) -> None:
        if self.current(event) and self.peers.pop(event["peer_id"], None) is not None:
            await self.send(text_data=event["text"])

    async def peer_updated(self, event: dict[str, Any]) -> None:
        if self.current(event) and event["peer_id"] in self.peers:
            await self.send(text_data=event["text"])

    async def peer_kicked(self, event: dict[str, Any]) -> None:
        if self.current(event):
            await self.send(text_data=event["text"])
            await self.leave_room(reason=Participant.LeftReason.KICKED, announce=False)
            await self.close(code=p.CLOSE_KICKED)

    async def peer_moved(self, event: dict[str, Any]) -> None:
        if self.current(event) and event["peer_id"] in self.peers:
            self.peers[event["peer_id"]] = event["channel"]

    async def peer_replaced(self, event: dict[str, Any]) -> None:
        """Our peer resumed on another socket: let go of it without a word to the room."""
        if self.current(event) and event["peer_id"] == self.peer_id:
            was = self.forget_room()
            await self.channel_layer.group_discard(was[1], self.channel_name)
            await self.close(code=p.CLOSE_REPLACED)

    async def socket_revoked(self, event: dict[str, Any]) -> None:
        """The account was signed out (logout, new password, blocked, an admin): go."""
        await self.leave_room(reason=event["reason"])
        await self.close(code=p.CLOSE_UNAUTHENTICATED)

    async def peer_expired(self, event: dict[str, Any]) -> None:
        """Our peer was expired while this socket lived on (a stall): start again."""
        if self.current(event) and event["peer_id"] == self.peer_id:
            was = self.forget_room()
            await self.channel_layer.group_discard(was[1], self.channel_name)
            await self.close(code=p.CLOSE_RECONNECT)

    async def room_closed(self, event: dict[str, Any]) -> None:
        if self.current(event):
            await self.send(text_data=event["text"])
            await self.leave_room(reason=Participant.LeftReason.CLOSED, announce=False)
            await self.close(code=p.CLOSE_ROOM_CLOSED)
