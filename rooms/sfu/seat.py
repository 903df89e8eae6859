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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
        self.lock = asyncio.Lock()
        self.pump: asyncio.Task[None] | None = None
        self.resync: asyncio.Task[None] | None = None
        self.closed = False

    # --- What the browser asks for ---------------------------------------------------

    async def publish(self, sdp: str) -> str:
        """Publish the browser's offer (or renegotiate what it publishes); return Janus' answer."""
        async with self.lock:
            await self._ensure_joined()
            offer = jsep(kind="offer", sdp=sdp)
            if self.published:
                answer = await self.participant.configure(offer=offer)
            else:
                answer = await self.participant.publish(offer=offer)
                self.published = True
            return answer["sdp"]

    async def answer(self, sdp: str) -> None:
        """The browser's answer to the subscriber offer it was sent."""
        async with self.lock:
            if self.participant is None or not self.awaiting_answer:
                return  # an answer to an offer of a session that is gone
            await self.participant.start(answer=jsep(kind="answer", sdp=sdp))
            self.awaiting_answer = False
            await self._sync()

    async def trickle(self, role: str, value: dict[str, Any] | None) -> None:
        participant = self.participant
        if participant is None or (role == "subscriber" and participant.subscriber is None):
            return
        if value is None:
            ice = None
        else:
            ice = candidate(
                candidate=value["candidate"],
                sdp_mid=value.get("sdpMid"),
                sdp_mline_index=value.get("sdpMLineIndex"),
            )
        with contextlib.suppress(PluginError):
            await participant.trickle(role=role, candidate=ice)

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
        for task in (self.pump, self.resync):
            if task is not None:
                task.cancel()
        self.pump = self.resync = None
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
        self.published = False
        self.awaiting_answer = False
        self.fresh_subscription = True
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
            if event.type == "hangup" and item.role == "subscriber":
                # The subscriber PeerConnection died: a new subscription, a new one.
                with contextlib.suppress(JanusError):
                    await participant.subscriber.detach()
                participant.subscriber = None
                participant.subscribed = []
                self.awaiting_answer = False
                self.fresh_subscription = True
                await self._sync()
                return
            if event.type == "hangup" and item.role == "publisher":
                self.published = False
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
            self.published = False
            self.awaiting_answer = False
            self.feeds = {}
        lifecycle.forget_availability()
        logger.warning(
            "sfu: room %s peer %s lost its Janus session: %s", self.room_id, self.peer_id, reason
        )
        if not self.closed:
            await self.send(wire.sfu_restart("lost"))
