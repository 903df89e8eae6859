"""One person's place in a Janus room, driven by their signaling socket (the proxy).

The browser speaks only our protocol (`sfu-offer`, `sfu-answer`,
`sfu-candidate`, `sfu-layer`); the worker holding its socket owns an
`SfuSeat`: one Janus session for that person with a publisher handle (what
the browser sends, once, with simulcast) and one multistream subscriber
handle (everyone else's streams on one PeerConnection). The seat keeps the
subscription equal to "every other feed in the room", one renegotiation at
a time, and turns Janus' events into messages for the browser.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from rooms import wire
from rooms.sfu import lifecycle
from rooms.sfu.janus import LOST, RECLAIMED, JanusError, PluginError
from rooms.sfu.videoroom import (
    ERROR_NO_SUCH_FEED,
    Participant,
    ParticipantEvent,
    candidate,
    jsep,
    room_credentials,
)

logger = logging.getLogger(__name__)

Send = Callable[[wire.Message], Awaitable[None]]

# Subscriber candidates held while Janus waits for an answer: a browser sends a
# few per network interface and TURN server; what is past this is dropped.
HELD_CANDIDATES_MAX = 64
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
        self, *, room_id: int, capacity: int, feed_id: int, peer_id: str, send: Send
    ) -> None:
        self.room_id = room_id
        self.capacity = capacity
        self.feed_id = feed_id
        self.peer_id = peer_id
        self.send = send
        self.participant: Participant | None = None
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

    async def answer(self, sdp: str) -> None:
        """The browser's answer to the subscriber offer it was sent."""
        async with self.lock:
            if self.participant is None or not self.awaiting_answer:
                return  # an answer to an offer of a session that is gone
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

    async def trickle(self, role: str, value: dict[str, Any] | None) -> None:
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
            if self.awaiting_answer:
                if len(self.held_candidates) < HELD_CANDIDATES_MAX:
                    self.held_candidates.append(value)
                return
            with contextlib.suppress(PluginError):
                await participant.trickle(role=role, candidate=_ice(value))

    async def resubscribe(self, *, ice_restart: bool) -> None:
        """The browser's watchdog: restart ICE on the subscription, or replace it with a fresh one.

        An ICE restart keeps the PeerConnection and its DTLS, so it only helps
        a subscription that was up; anything else gets a fresh subscription.
        """
        async with self.lock:
            participant = self.participant
            if participant is None or participant.subscriber is None:
                return  # none yet: the offer of the one under way is still to come
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
        self.closed = True
        for task in (self.pump, self.resync, *self.watchdogs.values()):
            if task is not None:
                task.cancel()
        self.pump = self.resync = None
        self.watchdogs = {}
        participant, self.participant = self.participant, None
        if participant is not None:
            await participant.leave()
            with contextlib.suppress(JanusError):
                await participant.session.destroy()

    # --- Janus ---------------------------------------------------------------------------

    async def _ensure_joined(self) -> None:
        if self.participant is not None:
            return
        from rooms.sfu import get_janus

        client = get_janus()
        if client is None:
            raise JanusError(None, "no SFU configured")
        await lifecycle.ensure_room(room_id=self.room_id, capacity=self.capacity)
        # A feed of ours another worker left behind (it died; we took the seat over).
        await lifecycle.kick(room_id=self.room_id, feed_id=self.feed_id)
        session = await client.create_session()
        creds = room_credentials(key=settings.JANUS_ADMIN_KEY, room=self.room_id)
        try:
            participant = await Participant.join(
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
        await self.send(wire.sfu_offer(sdp=offer["sdp"], streams=streams, fresh=fresh))

    async def _pump(self, participant: Participant) -> None:
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

    async def _handle(self, participant: Participant, item: ParticipantEvent) -> None:
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

    async def _lost(self, participant: Participant, reason: str) -> None:
        async with self.lock:
            if participant is not self.participant:
                return
            self.participant = None
            self.published = self.publisher_up = self.subscriber_up = False
            self.awaiting_answer = False
            self.held_candidates = []
            self.feeds = {}
            for task in self.watchdogs.values():
                task.cancel()
            self.watchdogs = {}
        lifecycle.forget_availability()
        logger.warning(
            "sfu: room %s peer %s lost its Janus session: %s", self.room_id, self.peer_id, reason
        )
        if not self.closed:
            await self.send(wire.sfu_restart("lost"))

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

    async def _expire(self, what: str, seconds: float, participant: Participant | None) -> None:
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
                    await self.send(wire.sfu_restart("stalled"))
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
