"""The VideoRoom plugin (Janus 1.1.2): room lifecycle, and one participant's two handles.

Browsers never talk to Janus. The worker holding a person's signaling socket
owns a `VideoRoomParticipant`: a publisher handle (joined to the room, publishing what
the browser offers) and at most one multistream subscriber handle (receiving
any number of other people's streams on one PeerConnection). The worker
relays the browser's SDP and candidates into these calls and the events back
out. Room lifecycle (create, destroy, kick) goes through a `VideoRoomAdmin`
on a session of the worker's own.

Everything a browser supplies (SDP, candidates, display names) is copied into
requests built here, field by field: a browser cannot add a key to a Janus
request, pick another room, or name a feed it was not given.

Janus facts this module relies on (checked against 1.1.2's janus_videoroom.c
and a running Janus; docs/sfu.md has the message shapes):

- ``create``, ``destroy``, ``edit``, ``exists``, ``listparticipants`` and
  ``kick`` are answered synchronously; ``join``, ``publish``, ``configure``,
  ``unpublish``, ``start``, ``update`` and ``leave`` by an event carrying the
  request's transaction.
- Subscribing needs a publisher that is really publishing (its PeerConnection
  is up, ``webrtcup``); otherwise 428 "No such feed".
- A subscriber ``update`` made while Janus waits for the answer to its last
  offer is answered ``updating``: the new offer comes later, as an event.
  When a subscribed publisher leaves, Janus sends a new offer on its own
  (``autoupdate``). Every ``updated`` event with a JSEP needs a ``start``
  with the browser's answer.
- ``kick`` in a room created with ``require_pvtid`` also stops the media of
  the kicked person's own subscriptions.

Why one module of over 500 lines: it is the plugin's whole API as Janus
1.1.2 answers it, for the two roles that use it (the admin's room
lifecycle, a participant's two handles); the quirks above hold for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sfu.janus import (
    ERROR_JSEP_INVALID_SDP,
    ERROR_JSEP_UNKNOWN_TYPE,
    ERROR_UNEXPECTED_ANSWER,
    Handle,
    JanusError,
    JanusEvent,
    PluginError,
    Session,
)

PLUGIN = "janus.plugin.videoroom"

# VideoRoom error codes (janus_videoroom.c, 1.1.2).
ERROR_NO_SUCH_ROOM = 426
ERROR_ROOM_EXISTS = 427
ERROR_NO_SUCH_FEED = 428
ERROR_MISSING_ELEMENT = 429
ERROR_PUBLISHERS_FULL = 432
ERROR_UNAUTHORIZED = 433
ERROR_ALREADY_PUBLISHED = 434
ERROR_NOT_PUBLISHED = 435
ERROR_INVALID_SDP_TYPE = 431
ERROR_INVALID_SDP = 437

Role = Literal["publisher", "subscriber"]
RID_ORDERS = ("hml", "lmh")


# --- Room secrets -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomCredentials:
    """A Janus room's ``secret`` (edit, destroy, kick) and ``pin`` (join)."""

    secret: str
    pin: str


def room_credentials(*, key: str, room: int) -> RoomCredentials:
    """Derive a room's secret and PIN from ``key`` (JANUS_ADMIN_KEY).

    Every worker can compute them, so nothing is stored, and they differ per
    room: whoever holds one room's secret cannot edit another room.
    """

    def derive(purpose: str) -> str:
        message = f"videorooms-janus:{purpose}:{room}".encode()
        return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]

    return RoomCredentials(secret=derive("secret"), pin=derive("pin"))


# --- Values from the browser -------------------------------------------------


def refused_sdp(error: JanusError) -> bool:
    """Whether Janus refused the browser's SDP (its fault), rather than failed (ours, or Janus')."""
    if isinstance(error, PluginError):
        return error.code in (ERROR_INVALID_SDP_TYPE, ERROR_INVALID_SDP)
    return error.code in (ERROR_JSEP_UNKNOWN_TYPE, ERROR_JSEP_INVALID_SDP, ERROR_UNEXPECTED_ANSWER)


def jsep(*, kind: Literal["offer", "answer"], sdp: str, rid_order: str | None = None) -> dict:
    """A JSEP for Janus from the browser's SDP: only ``type``, ``sdp`` (and ``rid_order``).

    ``rid_order`` says how the offer lists simulcast layers: Janus assumes
    ``hml`` (highest first, as janus.js sends them); a client that adds its
    encodings lowest first must say ``lmh``.
    """
    if kind not in ("offer", "answer"):
        raise ValueError(f"JSEP type must be offer or answer, not {kind!r}")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise ValueError("not an SDP")
    value: dict[str, Any] = {"type": kind, "sdp": sdp}
    if rid_order is not None:
        if rid_order not in RID_ORDERS:
            raise ValueError(f"rid_order must be one of {RID_ORDERS}")
        value["rid_order"] = rid_order
    return value


def candidate(
    *, candidate: str, sdp_mid: str | None = None, sdp_mline_index: int | None = None
) -> dict:
    """An ICE candidate for Janus' trickle, from RTCIceCandidate's fields."""
    value: dict[str, Any] = {"candidate": str(candidate)}
    if sdp_mid is not None:
        value["sdpMid"] = str(sdp_mid)
    if sdp_mline_index is not None:
        value["sdpMLineIndex"] = int(sdp_mline_index)
    return value


# --- Rooms ----------------------------------------------------------------------


class VideoRoomAdmin:
    """Room lifecycle on one handle: what only the server may do."""

    def __init__(self, handle: Handle, *, admin_key: str) -> None:
        self.handle = handle
        self.admin_key = admin_key

    @classmethod
    async def attach(cls, session: Session, *, admin_key: str) -> VideoRoomAdmin:
        """Attach a VideoRoom handle for room management to ``session``."""
        return cls(await session.attach(plugin=PLUGIN), admin_key=admin_key)

    async def create_room(
        self,
        *,
        room: int,
        secret: str,
        pin: str | None,
        publishers: int,
        description: str = "",
        bitrate: int = 0,
        fir_freq: int = 10,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Create room ``room``; fails with `PluginError` 427 when it exists.

        Settings for a simulcast call: VP8 (every browser simulcasts it), Opus;
        ``bitrate`` 0 sends publishers no REMB cap, so their bandwidth estimate
        decides how many layers they send; a keyframe request every
        ``fir_freq`` seconds so late subscribers and layer switches recover
        quickly. ``notify_joining`` makes Janus announce participants that do
        not publish, ``require_pvtid`` ties every subscription to a
        participant (so ``kick`` stops their incoming media too), and
        ``lock_record`` keeps recording off without the room secret.
        ``extra`` adds VideoRoom create properties (tests use it).
        """
        body: dict[str, Any] = {
            "request": "create",
            "room": room,
            "admin_key": self.admin_key,
            "permanent": False,
            "secret": secret,
            "description": description or f"room {room}",
            "is_private": True,
            "publishers": publishers,
            "bitrate": bitrate,
            "fir_freq": fir_freq,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "notify_joining": True,
            "require_pvtid": True,
            "record": False,
            "lock_record": True,
        }
        if pin is not None:
            body["pin"] = pin
        if extra:
            body.update(extra)
        await self.handle.request(body)

    async def destroy_room(self, *, room: int, secret: str) -> None:
        """Destroy room ``room``: Janus tells every participant ``destroyed`` and drops them."""
        await self.handle.request(
            {"request": "destroy", "room": room, "secret": secret, "permanent": False}
        )

    async def edit_room(
        self,
        *,
        room: int,
        secret: str,
        new_description: str | None = None,
        new_pin: str | None = None,
        new_publishers: int | None = None,
    ) -> None:
        """Change a room's description, PIN or publisher limit (needs the room secret)."""
        body: dict[str, Any] = {"request": "edit", "room": room, "secret": secret}
        for name, value in (
            ("new_description", new_description),
            ("new_pin", new_pin),
            ("new_publishers", new_publishers),
        ):
            if value is not None:
                body[name] = value
        await self.handle.request(body)

    async def room_exists(self, *, room: int) -> bool:
        """Whether Janus has room ``room`` (after a Janus restart it has none)."""
        reply = await self.handle.request({"request": "exists", "room": room})
        return bool(reply.data.get("exists"))

    async def list_participants(self, *, room: int) -> list[dict[str, Any]]:
        """Janus' view of who is in ``room``: ``id``, ``display``, ``publisher`` (media up)."""
        reply = await self.handle.request({"request": "listparticipants", "room": room})
        return list(reply.data.get("participants") or [])

    async def kick(self, *, room: int, secret: str, feed_id: int) -> None:
        """Remove participant ``feed_id``: their PeerConnection closes, everyone sees them leave."""
        body = {"request": "kick", "room": room, "secret": secret, "id": feed_id}
        await self.handle.request(body)


# --- Participants -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantEvent:
    """An event on one of a participant's two handles."""

    role: Role
    event: JanusEvent


@dataclass(frozen=True, slots=True)
class SubscriberOffer:
    """Janus' SDP offer for the subscriber PeerConnection, and what each m-line carries."""

    jsep: Mapping[str, Any]
    streams: list[dict[str, Any]]


@dataclass(slots=True)
class VideoRoomParticipant:
    """One person in one Janus room: their publisher handle and one subscriber handle.

    Create with `VideoRoomParticipant.join`. Events from both handles arrive on
    ``events`` as `ParticipantEvent` (publishers appearing and leaving, the
    subscriber's renegotiation offers, ``webrtcup``, ``hangup``, ``media``,
    ``slowlink``, ``reclaimed``, ``lost`` ...).
    """

    session: Session
    room: int
    pin: str | None
    publisher: Handle
    feed_id: int
    private_id: int
    # Active publishers at join time, and (notify_joining) the others.
    publishers: list[dict[str, Any]]
    attendees: list[dict[str, Any]]
    events: asyncio.Queue[ParticipantEvent]
    subscriber: Handle | None = None
    subscribed: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def join(
        cls,
        session: Session,
        *,
        room: int,
        pin: str | None,
        display: str,
        feed_id: int | None = None,
        opaque_id: str | None = None,
    ) -> VideoRoomParticipant:
        """Attach a publisher handle and join ``room`` (not publishing yet)."""
        events: asyncio.Queue[ParticipantEvent] = asyncio.Queue()
        handle = await session.attach(
            plugin=PLUGIN,
            opaque_id=opaque_id,
            deliver=lambda event: events.put_nowait(ParticipantEvent("publisher", event)),
        )
        body: dict[str, Any] = {
            "request": "join",
            "ptype": "publisher",
            "room": room,
            "display": str(display),
        }
        if pin is not None:
            body["pin"] = pin
        if feed_id is not None:
            body["id"] = feed_id
        try:
            reply = await handle.request(body)
        except JanusError:
            with contextlib.suppress(JanusError):
                await handle.detach()
            raise
        return cls(
            session=session,
            room=room,
            pin=pin,
            publisher=handle,
            feed_id=int(reply.data["id"]),
            private_id=int(reply.data["private_id"]),
            publishers=list(reply.data.get("publishers") or []),
            attendees=list(reply.data.get("attendees") or []),
            events=events,
        )

    # --- Publishing -----------------------------------------------------------

    @classmethod
    def adopt(
        cls,
        session: Session,
        *,
        room: int,
        pin: str | None,
        feed_id: int,
        private_id: int,
        publisher_handle_id: int,
        subscriber_handle_id: int | None = None,
    ) -> VideoRoomParticipant:
        """Take over a participant another worker created, after `JanusClient.claim_session`.

        The ids are what that worker stored with the person (docs/sfu.md,
        "Worker death"); the handles and the media are untouched. Events sent
        while nobody held the session are lost: re-read what matters
        (`VideoRoomAdmin.list_participants`).
        """
        events: asyncio.Queue[ParticipantEvent] = asyncio.Queue()
        publisher = session.adopt(
            handle_id=publisher_handle_id,
            plugin=PLUGIN,
            deliver=lambda event: events.put_nowait(ParticipantEvent("publisher", event)),
        )
        participant = cls(
            session=session,
            room=room,
            pin=pin,
            publisher=publisher,
            feed_id=feed_id,
            private_id=private_id,
            publishers=[],
            attendees=[],
            events=events,
        )
        if subscriber_handle_id is not None:
            participant.subscriber = session.adopt(
                handle_id=subscriber_handle_id,
                plugin=PLUGIN,
                deliver=lambda event: events.put_nowait(ParticipantEvent("subscriber", event)),
            )
        return participant

    async def publish(
        self,
        *,
        offer: Mapping[str, Any],
        descriptions: Sequence[Mapping[str, str]] = (),
        bitrate: int | None = None,
    ) -> Mapping[str, Any]:
        """Publish what the browser's ``offer`` (see `jsep`) sends; return Janus' answer."""
        body: dict[str, Any] = {"request": "publish"}
        if descriptions:
            body["descriptions"] = [
                {"mid": str(d["mid"]), "description": str(d["description"])} for d in descriptions
            ]
        if bitrate is not None:
            body["bitrate"] = int(bitrate)
        try:
            reply = await self.publisher.request(body, jsep=_offer(offer))
        except JanusError as err:
            if refused_sdp(err):
                # Janus keeps the half-made PeerConnection of an offer it refused and
                # answers every later offer on this handle 490 ("Error setting ICE
                # locally"): hang it up, so the next offer starts clean.
                with contextlib.suppress(JanusError):
                    await self.publisher.hangup()
            raise
        if reply.jsep is None:
            raise PluginError(None, "Janus answered publish without an SDP answer")
        return reply.jsep

    async def configure(
        self,
        *,
        offer: Mapping[str, Any] | None = None,
        bitrate: int | None = None,
        keyframe: bool | None = None,
        streams: Sequence[Mapping[str, Any]] = (),
        display: str | None = None,
    ) -> Mapping[str, Any] | None:
        """Change the published session; with ``offer`` (renegotiation) return the answer.

        ``streams`` entries: ``mid`` plus ``send`` (stop/resume relaying that
        m-line, e.g. camera off) and/or ``keyframe``.
        """
        body: dict[str, Any] = {"request": "configure"}
        if bitrate is not None:
            body["bitrate"] = int(bitrate)
        if keyframe is not None:
            body["keyframe"] = bool(keyframe)
        if display is not None:
            body["display"] = str(display)
        if streams:
            body["streams"] = [_pick(s, mid=str, send=bool, keyframe=bool) for s in streams]
        reply = await self.publisher.request(body, jsep=_offer(offer) if offer else None)
        return reply.jsep

    async def unpublish(self) -> None:
        """Stop publishing (the PeerConnection closes); still in the room."""
        await self.publisher.request({"request": "unpublish"})

    # --- Subscribing ----------------------------------------------------------

    async def subscribe(self, *, streams: Sequence[Mapping[str, Any]]) -> SubscriberOffer | None:
        """Receive ``streams`` (``feed``, optionally ``mid``, ``substream``) on one PeerConnection.

        The first call attaches the subscriber handle and joins it (Janus
        answers with an offer); later calls add streams with ``update``. None
        means Janus postponed the offer (``updating``): it arrives as an event.
        """
        wanted = [_stream(s) for s in streams]
        if self.subscriber is None:
            handle = await self.session.attach(
                plugin=PLUGIN,
                deliver=lambda event: self.events.put_nowait(ParticipantEvent("subscriber", event)),
            )
            body: dict[str, Any] = {
                "request": "join",
                "ptype": "subscriber",
                "room": self.room,
                "private_id": self.private_id,
                "streams": wanted,
            }
            if self.pin is not None:
                body["pin"] = self.pin
            try:
                reply = await handle.request(body)
            except JanusError:
                with contextlib.suppress(JanusError):
                    await handle.detach()
                raise
            self.subscriber = handle
            return self._subscriber_offer(reply.data, reply.jsep)
        return await self.update_subscription(subscribe=wanted)

    async def update_subscription(
        self,
        *,
        subscribe: Sequence[Mapping[str, Any]] = (),
        unsubscribe: Sequence[Mapping[str, Any]] = (),
    ) -> SubscriberOffer | None:
        """Add and remove streams in one renegotiation.

        ``unsubscribe`` entries name a ``feed`` (all its streams), a ``feed``
        and ``mid``, or a ``sub_mid`` (one m-line of the subscription).
        """
        if not subscribe and not unsubscribe:
            raise ValueError("nothing to update")
        body: dict[str, Any] = {"request": "update"}
        if subscribe:
            body["subscribe"] = [_stream(s) for s in subscribe]
        if unsubscribe:
            body["unsubscribe"] = [_pick(s, feed=int, mid=str, sub_mid=str) for s in unsubscribe]
        reply = await self._subscriber().request(body)
        return self._subscriber_offer(reply.data, reply.jsep)

    async def start(self, *, answer: Mapping[str, Any]) -> None:
        """Complete Janus' last subscriber offer with the browser's ``answer`` (see `jsep`)."""
        value = dict(answer)
        if value.get("type") != "answer":
            raise ValueError("start needs the browser's answer")
        await self._subscriber().request({"request": "start"}, jsep=value)

    async def configure_subscription(self, *, streams: Sequence[Mapping[str, Any]]) -> None:
        """Per subscribed m-line (``mid``): ``substream``, ``temporal``, ``send``.

        ``substream`` picks the simulcast layer (0 lowest, 2 highest);
        ``temporal`` the frame-rate layer (0-2); Janus falls back to a lower
        layer on its own when the chosen one stops arriving (``fallback`` us).
        """
        body = {
            "request": "configure",
            "streams": [
                _pick(s, mid=str, send=bool, substream=int, temporal=int, fallback=int)
                for s in streams
            ],
        }
        await self._subscriber().request(body)

    async def restart_subscriber_ice(self) -> SubscriberOffer:
        """Ask Janus for an ICE-restart offer on the subscriber PeerConnection."""
        reply = await self._subscriber().request({"request": "configure", "restart": True})
        offer = self._subscriber_offer(reply.data, reply.jsep)
        if offer is None:
            raise PluginError(None, "Janus sent no ICE restart offer")
        return offer

    # --- Both ------------------------------------------------------------------

    async def trickle(self, *, role: Role, candidate: Mapping[str, Any] | None) -> None:
        """Relay a browser candidate (see `candidate`) to the ``role`` PeerConnection."""
        handle = self.publisher if role == "publisher" else self._subscriber()
        await handle.trickle(candidate=candidate)

    async def leave(self) -> None:
        """Leave the room and detach both handles; safe to call more than once, or after a loss."""
        handles = [h for h in (self.subscriber, self.publisher) if h is not None]
        with contextlib.suppress(JanusError):
            if not self.publisher.closed:
                await self.publisher.request({"request": "leave"})
        for handle in handles:
            with contextlib.suppress(JanusError):
                await handle.detach()

    def _subscriber(self) -> Handle:
        if self.subscriber is None:
            raise PluginError(None, "no subscription yet: call subscribe() first")
        return self.subscriber

    def _subscriber_offer(
        self, data: Mapping[str, Any], jsep_value: Mapping[str, Any] | None
    ) -> SubscriberOffer | None:
        if data.get("streams") is not None:
            self.subscribed = list(data["streams"])
        if jsep_value is None:
            return None
        return SubscriberOffer(jsep=jsep_value, streams=list(self.subscribed))


def _offer(value: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(value)
    if result.get("type") != "offer":
        raise ValueError("publishing needs the browser's offer")
    return result


def _stream(value: Mapping[str, Any]) -> dict[str, Any]:
    if "feed" not in value:
        raise ValueError("a subscription stream needs its feed")
    return _pick(value, feed=int, mid=str, substream=int, temporal=int, crossrefid=str)


def _pick(value: Mapping[str, Any], **fields: type) -> dict[str, Any]:
    """Copy only the named fields, converted, so nothing else reaches Janus."""
    unknown = set(value) - set(fields)
    if unknown:
        raise ValueError(f"unexpected fields {sorted(unknown)}")
    return {name: kind(value[name]) for name, kind in fields.items() if value.get(name) is not None}
