"""The signaling WebSocket: one consumer per browser tab.

Kept thin: `rooms.protocol` validates, `rooms.services` decides (and says
what the others must hear), `rooms.wire` writes the answers, `signaling.limits`
throttles, `signaling.presence` / `signaling.worker` keep presence honest, and this
class moves messages. The forwarding path (offer/answer/candidate) touches
neither the database nor Redis beyond the one send: the consumer keeps its
room's peers (peer id -> channel) in its `Membership`, learned from `joined`
and kept current by the room's `peer.joined` / `peer.left` / `peer.moved`
events.

A socket is in one of three states, each visible as an attribute: not
signed in (`account` is None: it is being closed), signed in and in no room
(`membership` is None), or in a room (`membership` holds the room, the peer
id and the room's peers).

A socket that drops without a close frame (network change, a dying worker)
does not leave: its peer stays for `RESUME_GRACE` seconds, during which the
client may `join` with its `resumeToken` and carry on as the same peer; its
Janus seat is parked meanwhile, and the resumed socket takes it back
(sfu/parking.py), so media through the SFU never stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from accounts import ice
from accounts.middleware import user_for_session
from infra.db import db_call
from rooms import attempts, errors, events, quality, services, wire
from rooms import protocol as p
from rooms.models import Participant, Room
from sfu import JanusError, candidate_policy, lifecycle, sdp
from sfu.parking import get_parking
from sfu.seat import SfuSeat
from sfu.videoroom import refused_sdp
from signaling import limits, observe
from signaling.connections import get_connections
from signaling.presence import get_presence
from signaling.revocation import session_hash
from signaling.sfu_listener import SocketSeatListener, tell_release
from signaling.worker import get_worker
from transport.consumer import DirectDispatch

logger = logging.getLogger(__name__)

# Consecutive invalid frames tolerated before the socket is closed (4400).
MAX_INVALID_FRAMES = 20
# Close codes that mean the client meant to go (tab closed, page left): no grace.
CLEAN_CLOSE_CODES = frozenset({1000, 1001})
# `ice-servers` messages on their way (Membership.ice_renewal).
_renewals: set[asyncio.Task] = set()


async def _tolerated(step: Awaitable[object], what: str) -> None:
    """A step of letting go of a room, whose failure must not stop the steps after it.

    What it leaves behind ends by itself (a presence entry at its deadline, a
    Janus session at its timeout, a group with its channel), while what comes
    after, the leave in the database, is what the room sees.
    """
    try:
        await step
    except Exception:
        logger.warning("signaling: %s failed", what, exc_info=True)


def _examined(text: str, *, kind: sdp.Kind, max_sections: int) -> str:
    """The browser's SDP as Janus may get it (sfu/sdp.py), or `bad-message` saying why."""
    try:
        return sdp.examine_sdp(
            text, kind=kind, policy=candidate_policy(), max_sections=max_sections
        )
    except sdp.SdpRejected as err:
        raise p.bad(f"'sdp' refused: {err.reason}") from None


def _refused_by_janus(error: JanusError) -> p.ClientError:
    """Janus refused an SDP the examiner let through: still the browser's, not an outage."""
    return p.bad(f"'sdp' refused by the SFU: {error.reason}")


@dataclass(frozen=True)
class Account:
    """Who is on this socket: set once the handshake's session proved a signed-in user."""

    user: AbstractBaseUser
    # The user as the wire shows it (chat lines carry it).
    wire_user: dict[str, Any]
    # The client's address, for the per-address limits; None when unknown.
    address: str | None
    # Which login session opened the socket (a hash: logout closes only its sockets).
    session: str | None
    messages: limits.TokenBucket
    strikes: limits.TokenBucket
    chat: limits.TokenBucket


@dataclass
class Membership:
    """The room this socket is in, as which peer, and who else is there (peer id -> channel).

    `media` is where the room's media goes now (mesh or sfu, kept current by
    `room.updated`); `sfu` this person's place in the Janus room, once their
    browser published there.
    """

    room_id: int
    number: str
    peer_id: str
    moderator: bool
    # The Participant's primary key: their feed id in Janus.
    participant_pk: int
    capacity: int
    media: str
    peers: dict[str, str] = field(default_factory=dict)
    sfu: SfuSeat | None = None
    # When this seat's TURN credentials are renewed (`ice-servers`); cancelled as it ends.
    ice_renewal: asyncio.TimerHandle | None = None

    @property
    def group(self) -> str:
        return Room.group_name_for(self.number)


class SignalingConsumer(DirectDispatch, AsyncWebsocketConsumer):
    account: Account | None = None
    membership: Membership | None = None
    invalid_frames: int = 0
    # Set when the server closes the socket for the client to come back (1012).
    detach_on_close: bool = False
    last_refusal_notice: float = float("-inf")
    worker = None
    # Set once the server has closed the socket: frames still queued are not
    # handled, and nothing more is sent.
    closing: bool = False

    # --- Connection lifecycle ----------------------------------------------------

    # --- Connection lifecycle ----------------------------------------------------

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
        self.worker.add(self)
        await self.worker.ready()
        # The handshake read the session before this socket could hear a revocation:
        # one committed in between (sign out everywhere, a new password, a
        # demotion) is seen now, as every later one will be by the worker.
        now = await db_call(user_for_session)(self.scope.get("session_key"))
        if (now.pk, now.is_staff, now.is_superuser) != (user.pk, user.is_staff, user.is_superuser):
            await self.close(code=p.CLOSE_UNAUTHENTICATED)

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.closing:
            await super().send(text_data=text_data, bytes_data=bytes_data)

    async def send_json(self, message: wire.Message) -> None:
        await self.send(text_data=wire.encode(message))

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
        if self.account is None:
            return
        self.worker.discard(self)
        clean = code in CLEAN_CLOSE_CODES and not self.detach_on_close
        await self.worker.finish(self.after_close(clean=clean))

    async def after_close(self, *, clean: bool) -> None:
        """Give back the account's socket place, and leave the room (clean) or keep the peer.

        Run by the worker to the end (`Worker.finish`); nobody is left to hear
        a failure, so it is logged.
        """
        try:
            await get_connections().release(user_id=self.user.pk, channel=self.channel_name)
        except Exception:
            # Its entry lapses after PRESENCE_TTL (signaling/connections.py); the room matters more.
            logger.warning("signaling: releasing a socket's place failed", exc_info=True)
        try:
            if clean:
                await self.leave_room(reason=Participant.LeftReason.DISCONNECTED)
            else:
                await self.detach()
        except Exception:
            logger.exception(
                "signaling: leaving the room after user %s's socket closed failed", self.user.pk
            )

    @property
    def user(self) -> AbstractBaseUser:
        return self.account.user

    @property
    def peer_id(self) -> str | None:
        """This socket's peer id while it is in a room (the worker renews their presence)."""
        return self.membership.peer_id if self.membership is not None else None

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
            handler = self.handlers[msg["type"]]
            if msg["type"] in p.IN_ROOM_TYPES and self.membership is None:
                raise p.ClientError(p.NOT_IN_ROOM, "join a room first")
            await handler(self, msg, msg_id)
        except errors.RoomsError as err:
            await self.reply_error(p.refusal(err, msg_id=msg_id))
            return
        except p.ClientError as err:
            if err.msg_id is None:
                err.msg_id = msg_id
            await self.reply_error(err)
            return
        except Exception:
            # A fault of ours (database down, a bug): the client is told to retry
            # and the socket stays usable; the traceback goes to the log.
            logger.exception("signaling: failed to handle a message from user %s", self.user.pk)
            observe.server_fault(self)
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

    # --- Client message handlers ------------------------------------------------------

    async def on_forward(self, msg: dict[str, Any], msg_id: str | None) -> None:
        membership = self.membership
        channel = membership.peers.get(msg["to"])
        if channel is None:
            raise p.ClientError(p.UNKNOWN_PEER, "no such peer in this room", msg_id=msg_id)
        text = wire.encode(wire.forwarded(msg, membership.peer_id))
        observe.forwarded(msg["type"])
        await self.channel_layer.send(channel, events.signal(room_id=membership.room_id, text=text))

    @observe.join_request("create")
    async def on_create(self, msg: dict[str, Any], msg_id: str | None) -> None:
        self.ensure_not_in_room(msg_id)
        with self.join_slot(msg_id):
            await self.count_join(msg_id)
            for number in services.room_numbers():
                try:
                    seat = await self.subscribed_call(
                        number,
                        services.room_create,
                        number=number,
                        owner=self.user,
                        channel_name=self.channel_name,
                        name=msg["name"],
                        capacity=msg["capacity"],
                        pin=msg["pin"],
                        media=msg["media"],
                        sfu_available=msg["media"] == p.MEDIA_SFU and await lifecycle.available(),
                    )
                except errors.NumberTaken:
                    continue
                break
            else:
                raise errors.NoFreeNumber()
            # A room just created has nobody to tell: whoever joins it later
            # finds its owner in the database.
            await self.take_seat(seat, msg_id=msg_id, created=True, resumed=None)

    async def count_join(self, msg_id: str | None) -> None:
        """One more room joined or created by this account, over all its sockets: or refused."""
        if not await limits.account_volume(user_id=self.user.pk, kind="join"):
            raise p.ClientError(
                p.RATE_LIMITED,
                "Your account has joined too many rooms lately; wait a while.",
                msg_id=msg_id,
            )

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

    @observe.join_request("join")
    async def on_join(self, msg: dict[str, Any], msg_id: str | None) -> None:
        self.ensure_not_in_room(msg_id)
        with self.join_slot(msg_id):
            if msg["resume"] is not None and await self.resume(
                number=msg["room"], token=msg["resume"], msg_id=msg_id
            ):
                return
            # No token, or an expired, foreign or forged one: an ordinary join
            # (which says it did not resume when a token was given).
            await self.enter_room(
                number=msg["room"],
                pin=msg["pin"],
                msg_id=msg_id,
                resumed=False if msg["resume"] is not None else None,
            )

    async def on_media(self, msg: dict[str, Any], msg_id: str | None) -> None:
        outbox = await db_call(services.participant_set_media)(
            peer_id=self.membership.peer_id,
            audio=msg["audio"],
            video=msg["video"],
            screen=msg["screen"],
        )
        await events.publish(outbox, self.channel_layer)

    async def on_chat(self, msg: dict[str, Any], msg_id: str | None) -> None:
        if not self.account.chat.take():
            raise p.ClientError(p.RATE_LIMITED, "You are sending chat too fast; slow down.")
        if not await limits.account_volume(user_id=self.user.pk, kind="chat"):
            raise p.ClientError(
                p.RATE_LIMITED, "Your account has sent too much chat lately; slow down."
            )
        membership = self.membership
        outbox = await db_call(services.chat_message_create)(
            room_id=membership.room_id, user=self.user, peer_id=membership.peer_id, text=msg["text"]
        )
        await events.publish(outbox, self.channel_layer)

    async def on_leave(self, msg: dict[str, Any], msg_id: str | None) -> None:
        await self.leave_room(reason=Participant.LeftReason.LEFT)

    async def on_kick(self, msg: dict[str, Any], msg_id: str | None) -> None:
        membership = self.membership
        if not membership.moderator:
            raise p.ClientError(p.FORBIDDEN, "Only the room's owner can remove people.")
        if msg["peer"] == membership.peer_id:
            raise p.ClientError(p.FORBIDDEN, "Use leave to leave the room yourself.")
        if msg["peer"] not in membership.peers:
            raise p.ClientError(p.UNKNOWN_PEER, "no such peer in this room")
        outbox = await db_call(services.participant_kick)(
            room_id=membership.room_id, actor=self.user, peer_id=msg["peer"]
        )
        observe.kicked(self, msg["peer"])
        await events.publish(outbox, self.channel_layer)

    async def on_lock(self, msg: dict[str, Any], msg_id: str | None) -> None:
        await self.moderate(msg_id, services.room_set_locked, locked=msg["type"] == p.LOCK)

    async def on_close(self, msg: dict[str, Any], msg_id: str | None) -> None:
        await self.moderate(msg_id, services.room_close, reason="owner")
        observe.closed_room(self)

    async def on_ping(self, msg: dict[str, Any], msg_id: str | None) -> None:
        await self.send_json(wire.pong(msg_id))

    # This socket's quality-report limits, made at its first report.
    quality_limit: limits.QualityLimit | None = None
    # The browser's SFU watchdog requests (made on the first one).
    resubscribes: limits.TokenBucket | None = None

    async def on_quality(self, msg: dict[str, Any], msg_id: str | None) -> None:
        """Keep the browser's call-quality report about one peer; no answer (extension)."""
        membership = self.membership
        if msg["peer"] == membership.peer_id:
            raise p.ClientError(p.UNKNOWN_PEER, "report on the other peers, not yourself")
        if self.quality_limit is None:
            self.quality_limit = limits.QualityLimit()
        if not self.quality_limit.take(peer=msg["peer"], final=msg["final"]):
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
        await events.publish(outbox, self.channel_layer)

    # --- The SFU (docs/protocol.md section 4): relayed to this socket's Janus seat ---------

    async def sfu_seat(self, msg_id: str | None) -> SfuSeat:
        membership = self.membership
        # A seat made on the SFU serves on after a return to the mesh, until the
        # browser leaves it (`sfu-leave`) or the grace ends (`sfu.released`).
        if membership.media != p.MEDIA_SFU and membership.sfu is None:
            raise p.ClientError(
                p.FORBIDDEN,
                "This call is direct (peer to peer), not through the SFU.",
                msg_id=msg_id,
            )
        if membership.sfu is None:
            membership.sfu = SfuSeat(
                room_id=membership.room_id,
                capacity=membership.capacity,
                feed_id=membership.participant_pk,
                peer_id=membership.peer_id,
                expected_peers=lambda: len(membership.peers),
            )
            await get_parking().add(
                peer_id=membership.peer_id,
                seat=membership.sfu,
                holder=self.channel_name,
                listener=SocketSeatListener(self.send_json),
            )
        return membership.sfu

    async def on_sfu_offer(self, msg: dict[str, Any], msg_id: str | None) -> None:
        seat = await self.sfu_seat(msg_id)
        offer = _examined(msg["sdp"], kind="offer", max_sections=sdp.OFFER_SECTIONS_MAX)
        try:
            answer = await seat.publish(offer)
        except (JanusError, TimeoutError) as err:
            if isinstance(err, JanusError) and refused_sdp(err):
                raise _refused_by_janus(err) from None
            lifecycle.forget_availability()
            logger.info("sfu: publish refused for %s: %s", self.membership.peer_id, err)
            raise p.ClientError(
                p.SFU_UNAVAILABLE, errors.SfuUnavailable.default_message, msg_id=msg_id
            ) from None
        await self.send_json(wire.sfu_answer(sdp=answer, re=msg_id))
        # The first publish made the Janus session: another worker may need it.
        await get_parking().save(self.membership.peer_id)

    async def on_sfu_answer(self, msg: dict[str, Any], msg_id: str | None) -> None:
        seat = await self.sfu_seat(msg_id)
        if not seat.answers(msg.get("re")):
            # No offer of Janus waits for it, or it answers an offer of a subscription
            # since replaced (the seat would drop it): not examined, so answers sent
            # for nothing cost no parsing.
            return
        # Janus' offer carries two sections per other publisher, and keeps those of
        # people who left until new ones reuse them: bounded by the largest room.
        answer = _examined(msg["sdp"], kind="answer", max_sections=2 * settings.SFU_CAPACITY_MAX)
        try:
            await seat.answer_offer(answer, offer_id=msg.get("re"))
        except (JanusError, TimeoutError) as err:
            if isinstance(err, JanusError) and refused_sdp(err):
                raise _refused_by_janus(err) from None
            logger.info("sfu: subscriber answer failed for %s: %s", self.membership.peer_id, err)
        await get_parking().save(self.membership.peer_id)

    async def on_sfu_candidate(self, msg: dict[str, Any], msg_id: str | None) -> None:
        seat = await self.sfu_seat(msg_id)
        candidate = msg["candidate"]
        if candidate is not None:
            try:
                if not sdp.examine_candidate(candidate, policy=candidate_policy()):
                    return  # not for Janus (sfu/sdp.py); ICE goes on with the others
            except sdp.SdpRejected as err:
                raise p.bad(f"'candidate' refused: {err.reason}") from None
        with contextlib.suppress(JanusError, TimeoutError):
            await seat.trickle(msg["role"], candidate, offer_id=msg.get("re"))

    async def on_sfu_resubscribe(self, msg: dict[str, Any], msg_id: str | None) -> None:
        seat = await self.sfu_seat(msg_id)
        if self.resubscribes is None:
            self.resubscribes = limits.resubscribe_bucket()
        if not self.resubscribes.take():
            raise p.ClientError(p.RATE_LIMITED, "too many resubscriptions; wait a moment")
        try:
            await seat.resubscribe(ice_restart=msg["iceRestart"], offer_id=msg.get("re"))
        except (JanusError, TimeoutError) as err:
            lifecycle.forget_availability()
            logger.info("sfu: resubscription failed for %s: %s", self.membership.peer_id, err)
            raise p.ClientError(
                p.SFU_UNAVAILABLE, errors.SfuUnavailable.default_message, msg_id=msg_id
            ) from None

    async def on_sfu_layer(self, msg: dict[str, Any], msg_id: str | None) -> None:
        if msg["peer"] not in self.membership.peers:
            raise p.ClientError(p.UNKNOWN_PEER, "no such peer in this room", msg_id=msg_id)
        seat = await self.sfu_seat(msg_id)
        with contextlib.suppress(JanusError, TimeoutError):
            await seat.set_layer(msg["peer"], msg["substream"])

    async def on_sfu_leave(self, msg: dict[str, Any], msg_id: str | None) -> None:
        """The browser receives everyone directly again: its Janus seat goes (no answer)."""
        membership = self.membership
        if membership.sfu is None:
            return
        await _tolerated(self.close_sfu(membership), "closing a Janus session")
        if membership.media != p.MEDIA_SFU:
            # Back on the mesh and the last one out of Janus: its room needs no more grace.
            with contextlib.suppress(JanusError, TimeoutError):
                if not await lifecycle.participants(room_id=membership.room_id):
                    await lifecycle.destroy(room_id=membership.room_id)

    async def on_mode(self, msg: dict[str, Any], msg_id: str | None) -> None:
        if not self.membership.moderator:
            raise p.ClientError(p.FORBIDDEN, "only the room's owner can do that", msg_id=msg_id)
        available = msg["mode"] != p.MEDIA_MESH and await lifecycle.available()
        await self.moderate(
            msg_id, services.room_set_mode, mode=msg["mode"], sfu_available=available
        )

    async def close_sfu(self, membership: Membership) -> None:
        """End this person's Janus session (leave, kick, close, replaced by another join)."""
        seat, membership.sfu = membership.sfu, None
        if seat is not None:
            await get_parking().close(
                peer_id=membership.peer_id, seat=seat, holder=self.channel_name
            )

    async def park_sfu(self, membership: Membership) -> None:
        """Keep this person's Janus seat for the socket that resumes them (a dropped socket)."""
        seat, membership.sfu = membership.sfu, None
        if seat is not None:
            await get_parking().park(
                peer_id=membership.peer_id, seat=seat, holder=self.channel_name
            )

    async def take_sfu_seat(self) -> bool:
        """Carry on with the resumed person's Janus seat, kept here or on another worker."""
        membership = self.membership
        try:
            membership.sfu = await get_parking().resume(
                peer_id=membership.peer_id,
                holder=self.channel_name,
                listener=SocketSeatListener(self.send_json),
                capacity=membership.capacity,
                tell=tell_release,
            )
        except Exception:
            logger.exception("sfu: taking %s's seat back failed", membership.peer_id)
            return False
        return membership.sfu is not None

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
        p.QUALITY: on_quality,
        p.SFU_OFFER: on_sfu_offer,
        p.SFU_ANSWER: on_sfu_answer,
        p.SFU_CANDIDATE: on_sfu_candidate,
        p.SFU_LAYER: on_sfu_layer,
        p.HANDOVER: on_forward,
        p.SFU_RESUBSCRIBE: on_sfu_resubscribe,
        p.MODE: on_mode,
        p.SFU_LEAVE: on_sfu_leave,
    }

    # --- Room membership --------------------------------------------------------------

    def ensure_not_in_room(self, msg_id: str | None) -> None:
        if self.membership is not None:
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
        await self.count_join(msg_id)
        attempt = await attempts.reserve_attempt(user_id=self.user.pk)
        if attempt is None:
            raise p.ClientError(
                p.RATE_LIMITED, "Too many failed attempts to join; wait a while.", msg_id=msg_id
            )
        try:
            seat = await self.subscribed_call(
                number,
                services.room_join,
                number=number,
                user=self.user,
                channel_name=self.channel_name,
                pin=pin,
                sfu_available=await lifecycle.available(),
            )
        except (errors.RoomNotFound, errors.WrongPin) as err:
            await self.failed_join(err, number=number, msg_id=msg_id)
            raise
        except BaseException:
            await attempts.release_attempt(attempt)
            raise
        await self.take_seat(seat, msg_id=msg_id, created=False, resumed=resumed)
        await attempts.release_attempt(attempt)

    async def failed_join(self, err: errors.RoomsError, *, number: str, msg_id: str | None) -> None:
        """A join failed (unknown number, wrong PIN): tell a locked PIN's owner; slow the address.

        The answer waits for the address's turn (holding this account's join
        slot), or is `rate-limited` when that is too far off (attempts.address_failed).
        """
        if isinstance(err, errors.WrongPin) and err.locked:
            until = timezone.now() + timedelta(seconds=settings.PIN_LOCK_SECONDS)
            group = Room.group_name_for(number)
            await events.publish(
                (events.pin_locked(room_id=err.room_id, group=group, until=until),),
                self.channel_layer,
            )
        turn = await attempts.address_failed(address=self.account.address)
        if not turn.allowed:
            raise p.ClientError(
                p.RATE_LIMITED,
                "Too many failed attempts to join from your network; wait a moment.",
                msg_id=msg_id,
            )
        if turn.wait:
            await asyncio.sleep(turn.wait)

    async def subscribed_call(
        self, room_number: str, call: Callable[..., Any], /, **kwargs: Any
    ) -> Any:
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

    async def resume(self, *, number: str, token: str, msg_id: str | None) -> bool:
        """Carry on as the peer the token names, if it is still within its grace period."""
        peer_id = services.resume_token_peer(token=token, user=self.user)
        if peer_id is None:
            observe.resumed("invalid")
            return False
        # Taking the presence first means no sweeper can expire the peer under us.
        seat = None
        if await get_presence().take(peer_id, seconds=settings.PRESENCE_TTL):
            seat = await self.subscribed_call(
                number,
                services.participant_resume,
                peer_id=peer_id,
                number=number,
                user=self.user,
                channel_name=self.channel_name,
            )
        if seat is None:
            if await db_call(services.participant_was_replaced)(peer_id=peer_id, user=self.user):
                # The seat moved to another tab or device of this account since:
                # do not take it back; this socket is the one that goes.
                observe.resumed("replaced")
                await self.close(code=p.CLOSE_REPLACED)
                return True
            observe.resumed("expired")
            return False
        observe.resumed("resumed")
        await self.take_seat(seat, msg_id=msg_id, created=False, resumed=True)
        return True

    async def take_seat(
        self, seat: services.Seat, *, msg_id: str | None, created: bool, resumed: bool | None
    ) -> None:
        """Take up the seat: presence, tell the room (before the client can act), answer."""
        participant = seat.participant
        await get_presence().renew([participant.peer_id], seconds=settings.PRESENCE_TTL)
        for item in seat.outbox:
            if item.event["type"] == events.PEER_LEFT:
                # A seat of ours that this join took over: no sweeper may expire it later.
                await get_presence().remove(item.event["peer_id"])
        await events.publish(seat.outbox, self.channel_layer)
        self.membership = Membership(
            room_id=seat.room.pk,
            number=seat.room.number,
            peer_id=participant.peer_id,
            moderator=seat.moderator,
            participant_pk=participant.pk,
            capacity=seat.room.capacity,
            media=seat.room.media,
            peers={other.peer_id: other.channel_name for other in seat.present},
        )
        observe.seated(self, created=created, resumed=resumed)
        ice_config = self.seat_ice(self.membership)
        await self.send_json(
            wire.joined(
                room_object=wire.room(seat.room, participants=seat.participants),
                peer_id=participant.peer_id,
                present=seat.present,
                created=created,
                resume_token=seat.resume_token,
                history=seat.history,
                resumed=resumed,
                re=msg_id,
                ice_config=ice_config,
            )
        )
        if resumed and seat.room.media == p.MEDIA_SFU and not await self.take_sfu_seat():
            # No Janus seat to carry on with (Janus lost it, or it never published): publish again.
            await self.send_json(wire.sfu_restart("resumed"))

    def forget_room(self) -> Membership | None:
        """Drop the membership; return what it was (its Janus seat is closed by the caller)."""
        was, self.membership = self.membership, None
        if was is not None and was.ice_renewal is not None:
            # No credentials for a socket that left its seat.
            was.ice_renewal.cancel()
        return was

    def seat_ice(self, membership: Membership) -> ice.IceConfig:
        """TURN credentials for this seat, and their renewal half-way through their life."""
        config = ice.seated_ice(user_id=self.user.pk, address=self.account.address, now=time.time())
        if config.expires is not None:
            membership.ice_renewal = asyncio.get_running_loop().call_later(
                settings.TURN_TTL / 2, self.renew_ice, membership
            )
        return config

    def renew_ice(self, membership: Membership) -> None:
        if self.membership is membership and not self.closing:
            task = asyncio.ensure_future(
                self.send_json(wire.ice_servers(self.seat_ice(membership)))
            )
            # Held until sent: the loop keeps only weak references to tasks.
            _renewals.add(task)
            task.add_done_callback(_renewals.discard)

    async def detach(self) -> None:
        """The socket dropped: keep the peer for the grace period, for a resume."""
        was = self.forget_room()
        if was is None:
            return
        observe.detached(self, was)
        await self.stop_hearing(was, keep_sfu=True)
        await get_presence().renew([was.peer_id], seconds=settings.RESUME_GRACE)

    async def stop_hearing(self, was: Membership, *, keep_sfu: bool = False) -> None:
        """Close or park the Janus seat, stop hearing the room: each step whatever the rest did."""
        if keep_sfu:
            await _tolerated(self.park_sfu(was), "parking a Janus seat")
        else:
            await _tolerated(self.close_sfu(was), "closing a Janus session")
        await _tolerated(
            self.channel_layer.group_discard(was.group, self.channel_name), "leaving a room's group"
        )

    async def leave_room(self, *, reason: str, announce: bool = True) -> None:
        """Leave the current room, if any; `announce` False when the server already did."""
        was = self.forget_room()
        if was is None:
            return
        observe.left(self, was, reason)
        await self.stop_hearing(was)
        await _tolerated(get_presence().remove(was.peer_id), "removing a peer's presence")
        if announce:
            outbox = await db_call(services.participant_leave)(peer_id=was.peer_id, reason=reason)
            await events.publish(outbox, self.channel_layer)

    async def moderate(self, msg_id: str | None, action: Any, **kwargs: Any) -> None:
        if not self.membership.moderator:
            raise p.ClientError(p.FORBIDDEN, "only the room's owner can do that", msg_id=msg_id)
        outbox = await db_call(action)(room_id=self.membership.room_id, **kwargs)
        await events.publish(outbox, self.channel_layer)

    # --- Channel-layer events (types in rooms.events) ------------------------------------

    def current(self, event: dict[str, Any]) -> Membership | None:
        """This socket's membership if the event is for its room, else None."""
        membership = self.membership
        if membership is not None and event["room"] == membership.room_id:
            return membership
        return None

    async def signal_forward(self, event: dict[str, Any]) -> None:
        if self.current(event):
            await self.send(text_data=event["text"])

    async def room_broadcast(self, event: dict[str, Any]) -> None:
        if self.current(event):
            await self.send(text_data=event["text"])

    async def room_moderators(self, event: dict[str, Any]) -> None:
        membership = self.current(event)
        if membership is not None and membership.moderator:
            await self.send(text_data=event["text"])

    async def room_updated(self, event: dict[str, Any]) -> None:
        membership = self.current(event)
        if membership:
            membership.media = event.get("media", membership.media)
            await self.send(text_data=event["text"])

    async def sfu_released(self, event: dict[str, Any]) -> None:
        """The room went back to the mesh and its grace is over: this socket's Janus seat goes."""
        membership = self.current(event)
        if membership is not None and membership.media != p.MEDIA_SFU:
            await _tolerated(self.close_sfu(membership), "closing a Janus session")

    async def peer_joined(self, event: dict[str, Any]) -> None:
        membership = self.current(event)
        peer_id = event["peer_id"]
        if membership is None or peer_id == membership.peer_id or peer_id in membership.peers:
            return
        membership.peers[peer_id] = event["channel"]
        await self.send(text_data=event["text"])

    async def peer_left(self, event: dict[str, Any]) -> None:
        membership = self.current(event)
        if membership is not None and membership.peers.pop(event["peer_id"], None) is not None:
            await self.send(text_data=event["text"])

    async def peer_updated(self, event: dict[str, Any]) -> None:
        membership = self.current(event)
        if membership is not None and event["peer_id"] in membership.peers:
            await self.send(text_data=event["text"])

    async def peer_kicked(self, event: dict[str, Any]) -> None:
        if self.current(event):
            await self.send(text_data=event["text"])
            await self.leave_room(reason=Participant.LeftReason.KICKED, announce=False)
            await self.close(code=p.CLOSE_KICKED)

    async def peer_moved(self, event: dict[str, Any]) -> None:
        membership = self.current(event)
        if membership is not None and event["peer_id"] in membership.peers:
            membership.peers[event["peer_id"]] = event["channel"]

    async def peer_replaced(self, event: dict[str, Any]) -> None:
        """Our seat went to another socket (a resume, or this account joining again): go."""
        await self.let_go(event, code=p.CLOSE_REPLACED)

    async def peer_expired(self, event: dict[str, Any]) -> None:
        """Our peer was expired while this socket lived on (a stall): start again."""
        await self.let_go(event, code=p.CLOSE_RECONNECT)

    async def let_go(self, event: dict[str, Any], *, code: int) -> None:
        """Leave the room without a word to it (the server told it already) and close."""
        membership = self.current(event)
        if membership is not None and event["peer_id"] == membership.peer_id:
            self.forget_room()
            observe.let_go(self, membership, code)
            if event.get("resumed"):
                await self.park_sfu(membership)  # for the socket that resumed (parking.py)
            else:
                await self.close_sfu(membership)
            await self.channel_layer.group_discard(membership.group, self.channel_name)
            await self.close(code=code)

    async def socket_revoked(self, event: dict[str, Any]) -> None:
        """The account was signed out (logout, new password, blocked, an admin): go."""
        await self.leave_room(reason=event["reason"])
        await self.close(code=p.CLOSE_UNAUTHENTICATED)

    async def room_closed(self, event: dict[str, Any]) -> None:
        if self.current(event):
            await self.send(text_data=event["text"])
            await self.leave_room(reason=Participant.LeftReason.CLOSED, announce=False)
            await self.close(code=p.CLOSE_ROOM_CLOSED)
