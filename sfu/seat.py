"""One person's place in a Janus room, driven by their signaling socket (the proxy).

The browser speaks only our protocol (`sfu-offer`, `sfu-answer`,
`sfu-candidate`, `sfu-layer`); the worker holding its socket owns an
`SfuSeat`: one Janus session for that person with a publisher handle (what
the browser sends, once, with simulcast) and one multistream subscriber
handle (everyone else's streams on one PeerConnection). The seat keeps the
subscription equal to "every other feed in the room", one renegotiation at
a time, and turns Janus' events into what the browser must be told, through
its `SeatListener` (the socket's side, signaling/sfu_listener.py, makes the
wire messages): the subscriber offers to answer, and restarts.

Identity in Janus: the feed id is the `Participant` primary key and the
display name is the peer id, so a feed maps to a peer for every worker, and
nothing a browser says ever names a Janus room, feed or handle.

Failures: when the session is lost (Janus restarted, or unreachable past the
reclaim window) the seat forgets it and tells the browser `sfu-restart`; the
browser publishes again, which makes a new session (and re-creates the room
if Janus lost it), or is refused with `sfu-unavailable` while Janus is down,
and tries again a moment later. A dropped connection Janus reclaimed loses
only events: the seat re-reads the room's publishers.

Negotiating the subscription around Janus 1.1.2 (docs/sfu.md, "Why the
handover stranded people"): Janus' own offer for a renegotiation clears the
handle's "got the answer" flag, so every candidate the browser trickles from
then on is queued "until the answer", and the answer to a renegotiation never
drains that queue. A subscription renegotiated while its PeerConnection is
still being set up therefore loses the browser's candidates: Janus never
selects a pair, never starts DTLS, and the browser's PeerConnection stays
`connecting` for good. So the seat (1) holds the browser's subscriber
candidates while Janus waits for an answer and trickles them after `start`,
and (2) renegotiates a subscription only once it is up (`webrtcup`),
gathering the changes meanwhile into one update.

Watchdog (the server's side of it; the browser runs its own, static/js/sfu.js):
a subscription not up `SFU_SETUP_TIMEOUT` seconds after the browser's answer,
or an offer the browser has not answered in that time, is replaced by a fresh
one (a new handle, a new PeerConnection in the browser); a publisher not up
in that time is told to publish again (`sfu-restart`, reason `stalled`). Each
consecutive failure doubles the wait, up to `SETUP_BACKOFF_MAX`.

A dropped signaling socket is not a lost session: the seat is parked
(`park`: everything in Janus stays, events are still handled, nothing is
sent) and the socket that resumes takes it (`attach`), getting again the
subscriber offer the browser has not answered. On another worker the seat is
rebuilt from its `record` (`reclaim`: Janus' `claim` of the session, the
handles adopted), and the worker that held it lets go without ending it
(`release`). sfu/parking.py keeps a worker's seats.

Why one module of over 500 lines: the negotiation, the watchdog and the
handover all change one seat's state under one lock (what Janus waits for,
which offer is current, which PeerConnection is up); the order of those
changes is the whole point of the notes above. Split by concern, each part
would take the lock and the others' fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson
from django.conf import settings

from sfu import lifecycle
from sfu.janus import (
    ERROR_HANDLE_NOT_FOUND,
    LOST,
    RECLAIMED,
    Handle,
    JanusError,
    JanusEvent,
    PluginError,
)
from sfu.videoroom import (
    ERROR_NO_SUCH_FEED,
    ParticipantEvent,
    VideoRoomParticipant,
    candidate,
    jsep,
    room_credentials,
)

logger = logging.getLogger(__name__)

Changed = Callable[[], Awaitable[None]]

# Why the browser must publish again (`SeatListener.restart`).
RESTART_LOST = "lost"  # the Janus session is gone
RESTART_STALLED = "stalled"  # the publisher's PeerConnection never came up


@dataclass(frozen=True)
class SeatOffer:
    """Janus' offer for the browser's one receiving PeerConnection.

    `streams` is Janus' list of the subscription's m-lines (its display
    names are peer ids); `fresh` means a new subscription, so a new
    PeerConnection. The browser's answer and candidates name `offer_id`, so
    that those of a subscription already replaced never reach the new one.
    """

    offer_id: str
    sdp: str
    streams: list[dict[str, Any]]
    fresh: bool


class SeatListener(Protocol):
    """What a seat tells the browser it serves; the socket holding the seat implements it."""

    async def offer(self, offer: SeatOffer) -> None:
        """Janus offers a subscription (or a change to it): the browser must answer it."""

    async def restart(self, reason: str) -> None:
        """The seat cannot go on as it is (RESTART_*): the browser must publish again."""


class _Relay:
    """A seat's listener: the socket's while attached, nobody's while parked.

    Keeps the last subscriber offer until it is answered: the socket that
    takes the seat over gets it again (the browser may never have seen it, or
    its answer went down with the old socket).
    """

    def __init__(self, listener: SeatListener | None = None) -> None:
        self.listener = listener
        self.pending: SeatOffer | None = None
        # Told after every message: the seat's record may have changed.
        self.changed: Changed | None = None

    async def offer(self, offer: SeatOffer) -> None:
        self.pending = offer
        if self.listener is not None:
            await self.listener.offer(offer)
        if self.changed is not None:
            await self.changed()

    async def restart(self, reason: str) -> None:
        if self.listener is not None:
            await self.listener.restart(reason)
        if self.changed is not None:
            await self.changed()


@dataclass(frozen=True)
class SeatRecord:
    """What another worker needs to take a seat over: Janus' ids and the negotiation's state."""

    room: int
    feed: int
    session: int
    publisher: int
    private: int
    subscriber: int | None
    # The subscription's m-lines as Janus last listed them.
    streams: list[dict[str, Any]]
    published: bool
    awaiting: bool
    fresh: bool
    # The subscriber offer awaiting the browser's answer.
    offer: SeatOffer | None
    # The watchdog's view: which connections Janus said were up, and the
    # publishing connection's DTLS fingerprint (a new one is a new connection).
    subscriber_up: bool = False
    publisher_up: bool = False
    fingerprint: str | None = None
    # The ids of the current subscription's offers (SfuSeat.subscription_offers).
    offers: list[str] = field(default_factory=list)

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, data: bytes | str) -> SeatRecord | None:
        """The record in `data`; None for anything else (it is ours, but stored outside)."""
        try:
            fields = orjson.loads(data)
            offer = fields.pop("offer")
            return cls(**fields, offer=SeatOffer(**offer) if offer is not None else None)
        except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
            return None


# Subscriber candidates held while Janus waits for an answer: a browser sends a
# few per network interface and TURN server; what is past this is dropped.
HELD_CANDIDATES_MAX = 64
# The first subscription waits at most this long (seconds) for the feeds of
# everyone in the room: during a handover they come up over a few seconds.
FIRST_SUBSCRIBE_WAIT = 3.0
# How many of a subscription's latest offers' ids are remembered (see `_offer`).
OFFER_IDS_MAX = 8
# The longest wait of the watchdog after consecutive failures (seconds).
SETUP_BACKOFF_MAX = 60.0

_FINGERPRINT_RE = re.compile(r"^a=fingerprint:(\S+ \S+)\s*$", re.MULTILINE)


def fingerprint(sdp: str) -> str | None:
    """The DTLS fingerprint of an SDP: a new one means a new PeerConnection in the browser."""
    found = _FINGERPRINT_RE.search(sdp)
    return found.group(1).lower() if found else None


class SfuSeat:
    """A person in a Janus room: publishing, subscribed to the others, relayed to their browser."""

    def __init__(
        self,
        *,
        room_id: int,
        capacity: int,
        feed_id: int,
        peer_id: str,
        listener: SeatListener | None = None,
        expected_peers: Callable[[], int] | None = None,
    ) -> None:
        self.room_id = room_id
        # How many others are in the room (the signaling side knows): the first
        # subscription waits a moment for all their feeds, so that it is one
        # negotiation instead of one per feed (each a round trip through a busy
        # browser, and the next only once the last is up).
        self.expected_peers = expected_peers
        self.first_wait_until: float | None = None
        self.capacity = capacity
        self.feed_id = feed_id
        self.peer_id = peer_id
        # What the seat tells its browser goes through here (see attach and park).
        self.relay = _Relay(listener)
        self.participant: VideoRoomParticipant | None = None
        self.published = False
        # Other publishers in the room: feed id -> peer id.
        self.feeds: dict[int, str] = {}
        # Janus sent an offer for the subscription that the browser has not answered.
        self.awaiting_answer = False
        # The next subscriber offer starts a new PeerConnection in the browser.
        self.fresh_subscription = True
        # Janus said `webrtcup` for the current subscription / publisher PeerConnection.
        self.subscriber_up = False
        self.publisher_up = False
        # The DTLS fingerprint of the browser's publishing PeerConnection.
        self.publisher_fingerprint: str | None = None
        # The browser's subscriber candidates while Janus waits for an answer (see above).
        self.held_candidates: list[dict[str, Any] | None] = []
        # The ids of the subscriber offers of the current subscription, newest last
        # (the last one is the offer awaiting an answer, if any): the browser's
        # answer and candidates name the offer they are for, and those of a
        # subscription already replaced are dropped (see `answers`).
        self.subscription_offers: list[str] = []
        # Hangups of the publisher's PeerConnection that we asked for (republishing).
        self.expected_hangups = 0
        # Consecutive setups the watchdog had to give up on (its backoff).
        self.setup_failures = {"publisher": 0, "subscriber": 0}
        self.lock = asyncio.Lock()
        self.pump: asyncio.Task[None] | None = None
        self.resync: asyncio.Task[None] | None = None
        self.watchdogs: dict[str, asyncio.Task[None]] = {}
        self.closed = False

    # --- What the browser asks for ---------------------------------------------------

    async def publish(self, sdp: str) -> str:
        """Publish the browser's offer (or renegotiate what it publishes); return Janus' answer."""
        async with self.lock:
            await self._ensure_joined()
            offer = jsep(kind="offer", sdp=sdp)
            new = fingerprint(sdp)
            if self.published and new != self.publisher_fingerprint:
                # A new PeerConnection in the browser (it published again): Janus
                # cannot renegotiate DTLS on a live PeerConnection, so the old one
                # goes first and this offer starts a new one on the same handle.
                self.published = self.publisher_up = False
                self.expected_hangups += 1
                with contextlib.suppress(JanusError):
                    await self.participant.unpublish()
            if self.published:
                answer = await self.participant.configure(offer=offer)
            else:
                answer = await self.participant.publish(offer=offer)
                self.published = True
                self.publisher_up = False
                self.publisher_fingerprint = new
                self._watch("publisher")
            return answer["sdp"]

    def answers(self, offer_id: str | None) -> bool:
        """Whether an answer naming `offer_id` is for the offer Janus waits on.

        The browser may answer an offer after the subscription was replaced
        (its watchdog and ours, or Janus' hangup, crossed its answer): given to
        the new subscription, Janus would take another PeerConnection's ICE
        credentials and DTLS fingerprint, and the new one never comes up. An
        answer without an id (an older client) is taken as before.
        """
        if self.participant is None or not self.awaiting_answer:
            return False
        return offer_id is None or (
            bool(self.subscription_offers) and offer_id == self.subscription_offers[-1]
        )

    async def answer(self, sdp: str, *, offer_id: str | None = None) -> None:
        """The browser's answer to the subscriber offer it was sent."""
        async with self.lock:
            if not self.answers(offer_id):
                return  # an answer to an offer of a session, or a subscription, that is gone
            await self.participant.start(answer=jsep(kind="answer", sdp=sdp))
            self.awaiting_answer = False
            self._unwatch("answer")
            held, self.held_candidates = self.held_candidates, []
            for value in held:
                with contextlib.suppress(PluginError):
                    await self.participant.trickle(role="subscriber", candidate=_ice(value))
            if self.subscriber_up:
                self._unwatch("subscriber")
                await self._sync()
            else:
                self._watch("subscriber")

    async def trickle(
        self, role: str, value: dict[str, Any] | None, *, offer_id: str | None = None
    ) -> None:
        """A browser candidate; `offer_id`: the subscriber offer its connection answered."""
        if role == "publisher":
            participant = self.participant
            if participant is not None:
                with contextlib.suppress(PluginError):
                    await participant.trickle(role=role, candidate=_ice(value))
            return
        # Under the lock: no renegotiation may start between the check and the trickle.
        async with self.lock:
            participant = self.participant
            if participant is None or participant.subscriber is None:
                return
            if offer_id is not None and offer_id not in self.subscription_offers:
                return  # a candidate of a connection whose subscription was replaced
            if self.awaiting_answer:
                if len(self.held_candidates) < HELD_CANDIDATES_MAX:
                    self.held_candidates.append(value)
                return
            with contextlib.suppress(PluginError):
                await participant.trickle(role=role, candidate=_ice(value))

    async def resubscribe(self, *, ice_restart: bool, offer_id: str | None = None) -> None:
        """The browser's watchdog: restart ICE on the subscription, or replace it with a fresh one.

        An ICE restart keeps the PeerConnection and its DTLS, so it only helps
        a subscription that was up; anything else gets a fresh subscription.
        `offer_id` names the subscription the browser gave up on (its last
        offer): if ours or Janus' watchdog replaced that one meanwhile, the
        fresh offer is already on its way, and another would only discard it.
        """
        async with self.lock:
            participant = self.participant
            if participant is None or participant.subscriber is None:
                return  # none yet: the offer of the one under way is still to come
            if offer_id is not None and offer_id not in self.subscription_offers:
                return  # that subscription was replaced already
            if ice_restart and self.subscriber_up and not self.awaiting_answer:
                offer = await participant.restart_subscriber_ice()
                self.awaiting_answer = True
                self.subscriber_up = False
                await self._offer(offer.jsep, offer.streams)
                self._watch("answer")
                return
            await self._fresh_subscription("the browser asked for one")

    async def set_layer(self, peer_id: str, substream: int) -> None:
        """Receive `peer_id`'s video on simulcast layer `substream` (0 lowest)."""
        participant = self.participant
        if participant is None or participant.subscriber is None:
            return
        mids = [
            s["mid"]
            for s in participant.subscribed
            if s.get("active", True) and s.get("type") == "video"
            and s.get("feed_display") == peer_id
        ]  # fmt: skip
        if mids:
            await participant.configure_subscription(
                streams=[{"mid": mid, "substream": substream} for mid in mids]
            )

    async def close(self) -> None:
        """Leave Janus: leave the room, detach both handles, end the session. Idempotent."""
        participant = self._stop()
        if participant is not None:
            await participant.leave()
            with contextlib.suppress(JanusError):
                await participant.session.destroy()

    # --- A dropped signaling socket (docs/sfu.md section 6) ------------------------------

    async def attach(self, listener: SeatListener, *, changed: Changed | None = None) -> None:
        """Tell this socket from now on; first, the subscriber offer still unanswered.

        `changed` is awaited after everything the seat tells (its record may
        be different): see sfu/parking.py.
        """
        relay = self.relay
        relay.listener = listener
        if changed is not None:
            relay.changed = changed
        if self.participant is not None and self.awaiting_answer and relay.pending is not None:
            await listener.offer(relay.pending)

    def park(self) -> None:
        """The socket went: keep everything in Janus and handle its events, send nothing."""
        self.relay.listener = None

    async def answer_offer(self, sdp: str, *, offer_id: str | None = None) -> None:
        """`answer`; the offer it answers is then no longer owed to a socket that takes the seat."""
        relay = self.relay
        offer = relay.pending
        await self.answer(sdp, offer_id=offer_id)
        if relay.pending is offer:
            relay.pending = None

    def record(self) -> SeatRecord | None:
        """What another worker needs to `reclaim` this seat; None while it has no Janus session."""
        participant = self.participant
        if participant is None or self.closed:
            return None
        subscriber = participant.subscriber
        return SeatRecord(
            room=self.room_id,
            feed=self.feed_id,
            session=participant.session.id,
            publisher=participant.publisher.id,
            private=participant.private_id,
            subscriber=subscriber.id if subscriber is not None else None,
            streams=list(participant.subscribed),
            published=self.published,
            awaiting=self.awaiting_answer,
            fresh=self.fresh_subscription,
            offer=self.relay.pending if self.awaiting_answer else None,
            offers=list(self.subscription_offers),
            subscriber_up=self.subscriber_up,
            publisher_up=self.publisher_up,
            fingerprint=self.publisher_fingerprint,
        )

    @classmethod
    async def reclaim(cls, record: SeatRecord, *, capacity: int, peer_id: str) -> SfuSeat:
        """The seat another worker held, taken over: claim its session, adopt its handles.

        Janus hands the session over whether or not the other worker is still
        connected; the browser's PeerConnections never notice (media never
        passed through a worker). Raises `JanusError` when it cannot be had
        (`JanusSessionLost`: Janus restarted or its reclaim time passed; the
        feed left the room meanwhile); then nothing of it is held here. A
        subscriber handle that is gone costs only the subscription: a new one
        follows. The seat starts parked: `attach` it.
        """
        from sfu import get_janus

        client = get_janus()
        if client is None:
            raise JanusError(None, "no SFU configured")
        session = await client.claim_session(session_id=record.session)
        creds = room_credentials(key=settings.JANUS_ADMIN_KEY, room=record.room)
        try:
            participant = VideoRoomParticipant.adopt(
                session, room=record.room, pin=creds.pin, feed_id=record.feed,
                private_id=record.private, publisher_handle_id=record.publisher,
                subscriber_handle_id=record.subscriber,
            )  # fmt: skip
            participant.subscribed = list(record.streams)
            # Janus still has the publisher handle, and the feed is still in the room.
            present = await _listed(participant.publisher, room=record.room)
            if not any(int(p["id"]) == record.feed for p in present):
                raise JanusError(None, "the feed left the room meanwhile")
            if participant.subscriber is not None and not await _handle_alive(
                participant.subscriber, room=record.room
            ):
                participant.subscriber = None
                participant.subscribed = []
        except BaseException:
            with contextlib.suppress(JanusError):
                await session.destroy()
            raise
        seat = cls(room_id=record.room, capacity=capacity, feed_id=record.feed, peer_id=peer_id)
        seat.participant = participant
        seat.published = record.published
        seat.publisher_up = record.publisher_up
        seat.publisher_fingerprint = record.fingerprint
        if participant.subscriber is not None:
            seat.awaiting_answer = record.awaiting
            seat.fresh_subscription = record.fresh
            seat.subscriber_up = record.subscriber_up
            seat.subscription_offers = list(record.offers)
            seat.relay.pending = record.offer
        seat._add_publishers([p for p in present if p.get("publisher")])
        seat.pump = asyncio.ensure_future(seat._pump(participant))
        # Events Janus sent while nobody held the session are lost: the seat
        # re-reads the room, as after a reclaim of its own.
        participant.events.put_nowait(
            ParticipantEvent(
                "publisher",
                JanusEvent(
                    type=RECLAIMED, handle_id=record.publisher, data={"session_id": session.id}
                ),
            )
        )
        return seat

    def release(self) -> None:
        """Let go of the Janus session without ending it: another worker claimed it."""
        participant = self._stop()
        if participant is not None:
            participant.session.release()

    def _stop(self) -> VideoRoomParticipant | None:
        """Stop every task of the seat and drop its participant (returned, for the caller)."""
        self.closed = True
        for task in (self.pump, self.resync, *self.watchdogs.values()):
            if task is not None:
                task.cancel()
        self.pump = self.resync = None
        self.watchdogs = {}
        participant, self.participant = self.participant, None
        return participant

    # --- Janus ---------------------------------------------------------------------------

    async def _ensure_joined(self) -> None:
        if self.participant is not None:
            return
        from sfu import get_janus

        client = get_janus()
        if client is None:
            raise JanusError(None, "no SFU configured")
        await lifecycle.ensure_room(room_id=self.room_id, capacity=self.capacity)
        # A feed of ours another worker left behind (it died; we took the seat over).
        await lifecycle.kick(room_id=self.room_id, feed_id=self.feed_id)
        session = await client.create_session()
        creds = room_credentials(key=settings.JANUS_ADMIN_KEY, room=self.room_id)
        try:
            participant = await VideoRoomParticipant.join(
                session, room=self.room_id, pin=creds.pin, display=self.peer_id,
                feed_id=self.feed_id,
            )  # fmt: skip
        except BaseException:
            with contextlib.suppress(JanusError):
                await session.destroy()
            raise
        if self.closed:
            await participant.leave()
            with contextlib.suppress(JanusError):
                await session.destroy()
            raise JanusError(None, "left meanwhile")
        self.participant = participant
        self.published = self.publisher_up = self.subscriber_up = False
        self.awaiting_answer = False
        self.fresh_subscription = True
        self.held_candidates = []
        self.subscription_offers = []
        self.feeds = {}
        self._add_publishers(participant.publishers)
        self.pump = asyncio.ensure_future(self._pump(participant))
        await self._sync()

    def _add_publishers(self, publishers: list[dict[str, Any]]) -> None:
        for publisher in publishers:
            feed = int(publisher["id"])
            if feed != self.feed_id and publisher.get("display"):
                self.feeds[feed] = str(publisher["display"])

    def _subscribed_feeds(self) -> set[int]:
        participant = self.participant
        if participant is None:
            return set()
        return {
            int(s["feed_id"])
            for s in participant.subscribed
            if s.get("active", True) and s.get("feed_id") is not None
        }

    async def _sync(self) -> None:
        """Make the subscription cover exactly the room's other feeds (call with the lock)."""
        participant = self.participant
        if participant is None or self.awaiting_answer:
            return
        if participant.subscriber is not None and not self.subscriber_up:
            return  # not while it is being set up (see above): `webrtcup` syncs it
        current = self._subscribed_feeds()
        add = [feed for feed in self.feeds if feed not in current]
        remove = [feed for feed in current if feed not in self.feeds]
        if not add and not remove:
            return
        if participant.subscriber is None and self._wait_for_more_feeds():
            return
        try:
            if participant.subscriber is None:
                if not add:
                    return
                offer = await participant.subscribe(streams=[{"feed": f} for f in add])
            else:
                offer = await participant.update_subscription(
                    subscribe=[{"feed": f} for f in add],
                    unsubscribe=[{"feed": f} for f in remove],
                )
        except PluginError as err:
            if err.code != ERROR_NO_SUCH_FEED:
                raise
            # One of them is gone, or not publishing yet (its PeerConnection is
            # not up): ask Janus who publishes now, and try again shortly.
            await self._refresh_feeds()
            self._resync_later()
            return
        self.awaiting_answer = True
        if offer is not None:
            await self._offer(offer.jsep, offer.streams)
        # else Janus postponed it ("updating"): the offer comes as an event.
        self._watch("answer")

    async def _refresh_feeds(self) -> None:
        """Re-read the room's publishers from Janus (after lost events or a refused subscribe)."""
        listed = await lifecycle.participants(room_id=self.room_id)
        self.feeds = {}
        self._add_publishers([p for p in listed if p.get("publisher")])

    def _wait_for_more_feeds(self) -> bool:
        """Whether the first subscription should wait for feeds still to come (see __init__)."""
        if self.expected_peers is None or len(self.feeds) >= self.expected_peers():
            return False
        now = asyncio.get_running_loop().time()
        if self.first_wait_until is None:
            self.first_wait_until = now + FIRST_SUBSCRIBE_WAIT
        if now >= self.first_wait_until:
            return False
        self._resync_later(self.first_wait_until - now)  # the stragglers: go without them
        return True

    def _resync_later(self, seconds: float = 1.0) -> None:
        """Sync the subscription again in a moment (once at a time)."""
        if self.resync is not None and not self.resync.done():
            return

        async def later() -> None:
            await asyncio.sleep(seconds)
            async with self.lock:
                if self.participant is None or self.closed:
                    return
                with contextlib.suppress(JanusError):
                    await self._refresh_feeds()
                    await self._sync()

        self.resync = asyncio.ensure_future(later())

    async def _offer(self, offer: Any, streams: list[dict[str, Any]]) -> None:
        fresh, self.fresh_subscription = self.fresh_subscription, False
        offer_id = f"sfu-{secrets.token_urlsafe(9)}"
        if fresh:
            self.subscription_offers = []
        # Bounded: a subscription renegotiated all day keeps only its last offers'
        # ids (candidates come right after an answer, never for an offer this old).
        self.subscription_offers = [*self.subscription_offers[-(OFFER_IDS_MAX - 1) :], offer_id]
        await self.relay.offer(
            SeatOffer(offer_id=offer_id, sdp=offer["sdp"], streams=list(streams), fresh=fresh)
        )

    async def _pump(self, participant: VideoRoomParticipant) -> None:
        while True:
            item = await participant.events.get()
            try:
                await self._handle(participant, item)
            except asyncio.CancelledError:
                raise
            except JanusError as err:
                logger.info("sfu: room %s peer %s: %s", self.room_id, self.peer_id, err)
            except Exception:
                logger.exception("sfu: room %s peer %s: event failed", self.room_id, self.peer_id)
            if participant is not self.participant:
                return

    async def _handle(self, participant: VideoRoomParticipant, item: ParticipantEvent) -> None:
        event = item.event
        if event.type == LOST:
            await self._lost(participant, str(event.data.get("reason") or "session lost"))
            return
        async with self.lock:
            if participant is not self.participant:
                return
            if event.type == RECLAIMED:
                # Events were lost while the connection was down: re-read the room.
                await self._refresh_feeds()
                await self._sync()
                return
            if event.type == "webrtcup":
                await self._up(item.role, event.handle_id)
                return
            if event.type == "hangup" and item.role == "subscriber":
                if participant.subscriber is None or event.handle_id != participant.subscriber.id:
                    return  # a subscription already replaced
                # The subscriber PeerConnection died: a new subscription, a new one.
                await self._fresh_subscription(str(event.data.get("reason") or "hung up"))
                return
            if event.type == "hangup" and item.role == "publisher":
                if self.expected_hangups:
                    self.expected_hangups -= 1
                elif self.published:
                    # Janus gave up on it (ICE, DTLS): unless the browser publishes
                    # again by itself, the watchdog tells it to.
                    self.published = self.publisher_up = False
                    self._watch("publisher")
                return
            if event.type != "event":
                return
            data = event.data
            if item.role == "publisher":
                await self._publisher_event(data)
            elif event.jsep is not None and event.jsep.get("type") == "offer":
                # A renegotiation Janus made by itself (a subscribed feed went) or
                # the offer of an update it had postponed.
                if data.get("streams") is not None:
                    participant.subscribed = list(data["streams"])
                self.awaiting_answer = True
                await self._offer(event.jsep, participant.subscribed)
                self._watch("answer")

    async def _publisher_event(self, data: Any) -> None:
        if data.get("publishers"):
            self._add_publishers(list(data["publishers"]))
        for key in ("unpublished", "leaving", "kicked"):
            gone = data.get(key)
            if isinstance(gone, int) and not isinstance(gone, bool):
                self.feeds.pop(gone, None)
        if data.get("videoroom") == "destroyed":
            self.feeds = {}
            return
        await self._sync()

    async def _lost(self, participant: VideoRoomParticipant, reason: str) -> None:
        async with self.lock:
            if participant is not self.participant:
                return
            self.participant = None
            self.published = self.publisher_up = self.subscriber_up = False
            self.awaiting_answer = False
            self.held_candidates = []
            self.subscription_offers = []
            self.feeds = {}
            for task in self.watchdogs.values():
                task.cancel()
            self.watchdogs = {}
        lifecycle.forget_availability()
        logger.warning(
            "sfu: room %s peer %s lost its Janus session: %s", self.room_id, self.peer_id, reason
        )
        if not self.closed:
            await self.relay.restart(RESTART_LOST)

    # --- The watchdog --------------------------------------------------------------------

    async def _up(self, role: str, handle_id: int) -> None:
        """Janus' `webrtcup` for one of our PeerConnections (call with the lock)."""
        participant = self.participant
        if role == "subscriber":
            if participant.subscriber is None or handle_id != participant.subscriber.id:
                return
            self.subscriber_up = True
            self.setup_failures["subscriber"] = 0
            self._unwatch("subscriber")
            await self._sync()  # what changed while it was being set up
        else:
            self.publisher_up = True
            self.setup_failures["publisher"] = 0
            self._unwatch("publisher")

    async def _fresh_subscription(self, reason: str) -> None:
        """Replace the subscription with a new one (a new PeerConnection); call with the lock."""
        participant = self.participant
        if participant is None:
            return
        logger.info(
            "sfu: room %s peer %s: fresh subscription (%s)", self.room_id, self.peer_id, reason
        )
        old, participant.subscriber = participant.subscriber, None
        participant.subscribed = []
        self.awaiting_answer = self.subscriber_up = False
        self.held_candidates = []
        self.subscription_offers = []
        self.fresh_subscription = True
        self._unwatch("subscriber")
        self._unwatch("answer")
        if old is not None:
            with contextlib.suppress(JanusError):
                await old.detach()
        await self._sync()

    def _watch(self, what: str) -> None:
        """Give `what` (publisher, subscriber, answer) SFU_SETUP_TIMEOUT seconds to be done."""
        self._unwatch(what)
        if self.closed:
            return
        kind = "publisher" if what == "publisher" else "subscriber"
        wait = min(settings.SFU_SETUP_TIMEOUT * 2 ** self.setup_failures[kind], SETUP_BACKOFF_MAX)
        participant = self.participant
        self.watchdogs[what] = asyncio.ensure_future(self._expire(what, wait, participant))

    def _unwatch(self, what: str) -> None:
        task = self.watchdogs.pop(what, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _expire(
        self, what: str, seconds: float, participant: VideoRoomParticipant | None
    ) -> None:
        await asyncio.sleep(seconds)
        async with self.lock:
            if self.watchdogs.get(what) is not asyncio.current_task():
                return
            del self.watchdogs[what]
            if self.closed or participant is not self.participant or participant is None:
                return
            try:
                if what == "publisher":
                    if self.publisher_up:
                        return
                    self.setup_failures["publisher"] += 1
                    logger.info(
                        "sfu: room %s peer %s: publisher not up after %.0f s",
                        self.room_id, self.peer_id, seconds,
                    )  # fmt: skip
                    await self.relay.restart(RESTART_STALLED)
                    self._watch("publisher")
                elif what == "answer":
                    if self.awaiting_answer:
                        self.setup_failures["subscriber"] += 1
                        await self._fresh_subscription(f"no answer in {seconds:.0f} s")
                elif not self.subscriber_up and participant.subscriber is not None:
                    self.setup_failures["subscriber"] += 1
                    await self._fresh_subscription(f"not up {seconds:.0f} s after the answer")
            except JanusError as err:
                logger.info("sfu: room %s peer %s: watchdog: %s", self.room_id, self.peer_id, err)


def _ice(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A browser's RTCIceCandidateInit as Janus takes it (None: end of candidates)."""
    if value is None:
        return None
    return candidate(
        candidate=value["candidate"],
        sdp_mid=value.get("sdpMid"),
        sdp_mline_index=value.get("sdpMLineIndex"),
    )


async def _listed(handle: Handle, *, room: int) -> list[dict[str, Any]]:
    """Janus' participants of `room`, asked on `handle` (459 when Janus no longer has it)."""
    reply = await handle.request({"request": "listparticipants", "room": room})
    return list(reply.data.get("participants") or [])


async def _handle_alive(handle: Handle, *, room: int) -> bool:
    try:
        await _listed(handle, room=room)
    except PluginError:
        return True  # the plugin answered: the handle is there
    except JanusError as err:
        if err.code == ERROR_HANDLE_NOT_FOUND:
            return False
        raise
    return True
