"""The signaling WebSocket, one per browser tab: it accepts, parses, dispatches and sends.

Frames are sized and rated here, validated by `rooms.protocol`, and handed to
their handler (signaling/handlers.py, one per client type), which calls the
seating functions, the SFU relay or the room's services; this class sends
what they return (`deliver`). Its state is an `Account` and a `Membership`
(signaling/membership.py); a socket that drops without a close frame keeps
its peer for `RESUME_GRACE` seconds, for the client to resume.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.middleware import user_for_session
from infra.db import db_call
from rooms import errors, events, wire
from rooms import protocol as p
from rooms.models import Participant
from signaling import handlers, limits, observe, seating, sfu_relay
from signaling.connections import get_connections
from signaling.membership import Account, Membership
from signaling.revocation import session_hash
from signaling.runtime import get_worker
from signaling.runtime.joins import JoinSlots
from transport.consumer import DirectDispatch

logger = logging.getLogger(__name__)

# Consecutive invalid frames tolerated before the socket is closed (4400).
MAX_INVALID_FRAMES = 20
# Close codes that mean the client meant to go (tab closed, page left): no grace.
CLEAN_CLOSE_CODES = frozenset({1000, 1001})


class SignalingConsumer(DirectDispatch, AsyncWebsocketConsumer):
    account: Account | None = None
    membership: Membership | None = None
    invalid_frames: int = 0
    # Set when the server closes the socket for the client to come back (1012).
    detach_on_close: bool = False
    last_refusal_notice: float = float("-inf")
    # When the socket opened, until its first join is timed from it (observe.seated).
    opened_at: float | None = None
    # Set once the server has closed the socket: queued frames go unread, nothing more is sent.
    closing: bool = False

    async def connect(self) -> None:
        await self.accept()
        self.opened_at = time.monotonic()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept first: a close before accept loses its code in the HTTP 403.
            await self.close(code=p.CLOSE_UNAUTHENTICATED)
            return
        if not await get_connections().admit(user_id=user.pk, channel=self.channel_name):
            observe.rate_limit_close(self, "connections")
            await self.close(code=p.CLOSE_RATE_LIMITED, reason="too many connections")
            return
        client = self.scope.get("client")
        self.account = Account(
            user=user,
            wire_user=wire.user(user),
            address=client[0] if client else None,
            session=session_hash(self.scope.get("session_key")),
            messages=limits.message_bucket(),
            strikes=limits.strike_bucket(),
            chat=limits.chat_bucket(),
        )
        self.worker = get_worker()
        self.join_slots: JoinSlots = self.worker.join_slots
        self.worker.add(self)
        await self.worker.ready()
        # The handshake read the session before this socket could hear a revocation:
        # one committed in between (sign out everywhere, a new password, a
        # demotion) is seen now, as every later one will be by the worker.
        now = await db_call(user_for_session)(self.scope.get("session_key"))
        if (now.pk, now.is_staff, now.is_superuser) != (user.pk, user.is_staff, user.is_superuser):
            await self.close(code=p.CLOSE_UNAUTHENTICATED)

    @property
    def user_id(self) -> int | None:
        if self.account is not None:
            return self.account.user.pk
        user = self.scope.get("user")
        return user.pk if user is not None and user.is_authenticated else None

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.closing:
            await super().send(text_data=text_data, bytes_data=bytes_data)

    async def send_json(self, message: wire.Message) -> None:
        await self.send(text_data=wire.encode(message))

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if not self.closing:
            self.closing = True
            await super().close(code=code, reason=reason)

    async def reconnect(self) -> None:
        self.detach_on_close = True
        await self.close(code=p.CLOSE_RECONNECT)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Channels' version ends with aclose_old_connections(): a hop to the
        # thread-sensitive thread on every disconnect. Database work here runs
        # through db_call, which closes stale connections around each call.
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        if self.account is not None:
            self.worker.discard(self)
            clean = code in CLEAN_CLOSE_CODES and not self.detach_on_close
            await self.worker.registry.finish(self.after_close(clean=clean))

    async def after_close(self, *, clean: bool) -> None:
        """Give back the account's socket place; leave the room (clean) or keep the peer a while.

        Run by the worker to the end (`Registry.finish`); nobody is left to hear
        a failure, so it is logged.
        """
        try:
            await get_connections().release(user_id=self.user_id, channel=self.channel_name)
        except Exception:
            # Its entry lapses after PRESENCE_TTL (signaling/connections.py); the room matters more.
            logger.warning("signaling: releasing a socket's place failed", exc_info=True)
        try:
            if clean:
                await handlers.leave_room(self, reason=Participant.LeftReason.DISCONNECTED)
            else:
                await handlers.detach(self)
        except Exception:
            logger.exception(
                "signaling: leaving the room after user %s's socket closed failed", self.user_id
            )

    # --- Incoming frames ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return  # closed by us (anonymous, refused, kicked...): what is still queued goes unread
        msg_id = None
        try:
            if text_data is None:
                raise p.bad("frames must be text (JSON), not binary")
            # Characters never outnumber bytes; only long frames need encoding.
            max_bytes = settings.SIGNALING_MAX_MESSAGE_BYTES
            if len(text_data) > max_bytes or (
                len(text_data) * 4 > max_bytes
                and len(text_data.encode("utf-8", "surrogatepass")) > max_bytes
            ):
                raise p.ClientError(p.TOO_LARGE, f"a message may be at most {max_bytes} bytes")
            if not self.account.messages.take():
                await self.refuse_flood()
                return
            msg, msg_id = p.parse(text_data)
            if msg["type"] in p.IN_ROOM_TYPES and self.membership is None:
                raise p.ClientError(p.NOT_IN_ROOM, "join a room first")
            await self.handler_for[msg["type"]](self, msg, msg_id)
        except errors.RoomsError as err:
            await self.reply_error(errors.refusal(err, msg_id=msg_id))
            return
        except p.ClientError as err:
            if err.msg_id is None:
                err.msg_id = msg_id
            await self.reply_error(err)
            return
        except Exception:
            # A fault of ours (database down, a bug): the client is told to retry
            # and the socket stays usable; the traceback goes to the log.
            logger.exception("signaling: failed to handle a message from user %s", self.user_id)
            observe.server_fault()
            await self.send_json(
                wire.error(p.SERVER_BUSY, "the server could not do that; try again", msg_id)
            )
            return
        self.invalid_frames = 0

    async def reply_error(self, err: p.ClientError) -> None:
        observe.refused(self, err)
        await self.send_json(wire.error(err.code, err.message, err.msg_id))
        if err.code in (p.BAD_MESSAGE, p.TOO_LARGE):
            self.invalid_frames += 1
            if self.invalid_frames >= MAX_INVALID_FRAMES:
                await self.close(code=p.CLOSE_BAD_INPUT)

    async def refuse_flood(self) -> None:
        observe.flooded()
        if not self.account.strikes.take():
            observe.rate_limit_close(self, "messages")
            await self.close(code=p.CLOSE_RATE_LIMITED)
            return
        # One notice a second is enough: answering every refused frame would
        # spend the worker's time on the flooder, at the other rooms' expense.
        now = time.monotonic()
        if now - self.last_refusal_notice >= 1:
            self.last_refusal_notice = now
            await self.send_json(wire.error(p.RATE_LIMITED, "too many messages; slow down"))

    # --- Sending what the handlers decided ---------------------------------------------

    async def deliver(self, outcome: seating.Outcome) -> None:
        """Publish the outcome's outbox, take its membership, send its replies, close if it says."""
        await events.publish(outcome.outbox, self.channel_layer)
        membership = self.membership = outcome.membership
        if outcome.seated is not None:
            opened, self.opened_at = self.opened_at, None
            observe.seated(
                user=self.user_id, membership=membership, kind=outcome.seated, opened_at=opened
            )
            if outcome.ice is not None and outcome.ice.expires is not None:
                handlers.renew_ice_later(self, membership)
        for reply in outcome.replies:
            await self.send_json(reply)
        if outcome.sfu_back:
            await sfu_relay.take_back(handlers.relay(self))
        if outcome.close is not None:
            await self.close(code=outcome.close)

    def forget_room(self) -> Membership | None:
        """Drop the membership first (the events after it are not ours); return what it was."""
        was, self.membership = self.membership, None
        if was is not None:
            was.ends()
        return was

    # The client messages' handlers (signaling/handlers.py), one per type of the protocol.
    handler_for = handlers.handles.table()

    # --- Channel-layer events (types in rooms.events): signaling/handlers.py reacts ---------

    signal_forward = room_broadcast = room_moderators = room_updated = handlers.heard
    peer_joined = peer_left = peer_updated = peer_moved = handlers.heard
    sfu_released = handlers.sfu_released
    peer_kicked = handlers.peer_kicked
    room_closed = handlers.room_closed
    peer_replaced = handlers.peer_replaced
    peer_expired = handlers.peer_expired
    socket_revoked = handlers.socket_revoked
