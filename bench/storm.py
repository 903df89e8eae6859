"""The room storm: many rooms whose members all join at once and negotiate a full mesh.

Each room's owner creates it first (not timed). Then, at t0, every other
member of every room of this shard opens its socket and joins; each newcomer
offers to every peer `joined` listed (a ~5 KB Chromium SDP) and trickles
`candidates` candidates after it; each peer that gets an offer answers (an
SDP of the same size) and trickles as many back. A pair is negotiated when
both sides hold the other's SDP and all its candidates; a room when all its
pairs are, i.e. when its members together received
size * (size - 1) * (1 + candidates) frames. The figure per room is the time
from t0 to that last frame.

This is what the browser client does (static/js: the newcomer is impolite and
offers; the peer already in the room answers), minus the media. Every system
runs the same script with its own join (create/join over its own wire format)
and the same frames; only the peers' forwarding differs.

Frames carry the benchmark tag (bench/payloads.py) as `phase:sender:kind:t`:
kind 0 is an offer, 1 an answer, 2+ a candidate. The receiver needs no JSON
parse: the sender's number names its socket, which is in this same shard (a
room never spans shards).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from picows import WSMsgType

from bench.payloads import Templates, parse_tag

OFFER, ANSWER = 0, 1
TEXT = WSMsgType.TEXT


@dataclass
class StormRoom:
    index: int
    size: int
    expected: int
    members: list = field(default_factory=list)
    number: str | None = None
    received: int = 0
    done_ms: float | None = None


class Storm:
    """One shard's part of one room storm."""

    def __init__(self, shard, target, cookies, n_rooms, size, candidates, phase) -> None:
        self.shard = shard
        self.target = target
        self.cookies = list(cookies)
        self.size = size
        self.candidates = candidates
        self.phase = phase
        self.templates = Templates(target.socketio)
        self.rooms = [
            StormRoom(index=r, size=size, expected=size * (size - 1) * (1 + candidates))
            for r in range(n_rooms)
        ]
        self.senders: dict[int, object] = {}  # sender number -> Peer
        self.t0 = 0.0
        self.join_ms: list[float] = []
        self.errors: list[str] = []
        self.failed_joins = 0
        self.stale = 0
        self.all_done = asyncio.Event()
        self.pending = n_rooms

    def sender_number(self, room: StormRoom, member: int) -> int:
        return self.shard.index * 1_000_000 + room.index * 100 + member

    def setup(self, room: StormRoom, member: int):
        """Tie a socket to its room before it can receive anything."""
        number = self.sender_number(room, member)

        def attach(peer) -> None:
            peer.storm_room = room
            peer.storm_index = number
            self.senders[number] = peer

        return attach

    async def prepare(self) -> dict:
        sem = asyncio.Semaphore(20)

        async def owner(room: StormRoom) -> None:
            async with sem:
                cookie = self.cookies[room.index * self.size]
                peer, _ = await self.shard.enter(
                    self.target, room.index, cookie, None, self.size, setup=self.setup(room, 0)
                )
                room.number = peer.room
                room.members.append(peer)

        results = await asyncio.gather(*(owner(r) for r in self.rooms), return_exceptions=True)
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        self.rooms = [r for r in self.rooms if r.number is not None]
        self.pending = len(self.rooms)
        self.errors += errors[:3]
        return {"rooms": len(self.rooms), "failed": len(errors)}

    # --- the storm --------------------------------------------------------------

    def send_sdp(self, peer, kind: int, to: str) -> None:
        """An offer or answer to `to`, then this side's candidates."""
        tag = b"%d:%d:%d:%d" % (self.phase, peer.storm_index, kind, time.monotonic_ns())
        to_b = to.encode()
        frame = (self.templates.offer if kind == OFFER else self.templates.answer)(to_b, tag)
        send = peer.transport.send
        send(TEXT, frame)
        for c in range(self.candidates):
            tag = b"%d:%d:%d:%d" % (self.phase, peer.storm_index, 2 + c, time.monotonic_ns())
            send(TEXT, self.templates.candidate(to_b, tag))

    def on_frame(self, payload: bytes, receiver) -> None:
        tag = parse_tag(payload)
        room = receiver.storm_room
        if tag is None or room is None or tag[0] != self.phase:
            self.stale += 1
            return
        _, sender, kind, _ = tag
        if kind == OFFER:
            offerer = self.senders.get(sender)
            if offerer is not None and offerer.peer_id:
                self.send_sdp(receiver, ANSWER, offerer.peer_id)
        room.received += 1
        if room.received == room.expected and room.done_ms is None:
            room.done_ms = (time.perf_counter() - self.t0) * 1000
            self.pending -= 1
            if self.pending == 0:
                self.all_done.set()

    async def newcomer(self, room: StormRoom, member: int) -> None:
        cookie = self.cookies[room.index * self.size + member]
        try:
            peer, ms = await self.shard.enter(
                self.target,
                room.index + member,
                cookie,
                room.number,
                self.size,
                setup=self.setup(room, member),
            )
        except Exception as exc:
            self.failed_joins += 1
            if len(self.errors) < 5:
                self.errors.append(f"join: {type(exc).__name__}: {exc}")
            return
        room.members.append(peer)
        self.join_ms.append(ms)
        for other in peer.present:
            self.send_sdp(peer, OFFER, other)

    async def go(self, within: float) -> dict:
        if not self.rooms:
            return self.figures(0.0)
        cpu0 = time.process_time()
        self.t0 = time.perf_counter()
        joins = [
            asyncio.ensure_future(self.newcomer(room, m))
            for m in range(1, self.size)
            for room in self.rooms
        ]
        await asyncio.gather(*joins)
        left = within - (time.perf_counter() - self.t0)
        if left > 0 and self.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_done.wait(), left)
        took = time.perf_counter() - self.t0
        out = self.figures(took)
        out["client_cpu"] = time.process_time() - cpu0
        return out

    def figures(self, took: float) -> dict:
        server_errors: dict[str, int] = {}
        for room in self.rooms:
            for peer in room.members:
                for event in peer.events:
                    if event.get("type") == "error":
                        code = str(event.get("code"))
                        server_errors[code] = server_errors.get(code, 0) + 1
        done = [r.done_ms for r in self.rooms if r.done_ms is not None]
        return {
            "rooms": len(self.rooms),
            "room_ms": done,
            "incomplete": len(self.rooms) - len(done),
            "join_ms": self.join_ms,
            "failed_joins": self.failed_joins,
            "server_errors": server_errors,
            "errors": self.errors[:5],
            "took": took,
            "stale": self.stale,
        }

    def peers_by_room(self) -> list[list]:
        return [room.members for room in self.rooms]
