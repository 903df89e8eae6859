"""The load client: picows sockets on uvloop, one Shard per client process.

Every system is driven by this same code. The socket.io peer is spoken to in
the engine.io v4 / socket.io v5 wire format over the same raw WebSocket
(`0{...}` open, `40` connect, `2`/`3` ping/pong, `42["msg",{...}]` events) so
that the client's cost per message is identical for all systems: the only
difference is a 9-byte prefix and a 1-byte suffix on each frame.

Forwarded frames are not parsed as JSON on the hot path: the receiver finds the
benchmark tag (bench/payloads.py) with one bytes search. Control frames
(joined, peer-joined, errors) are parsed with orjson.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from dataclasses import dataclass, field

import orjson
from picows import WSListener, WSMsgType, WSTransport, ws_connect

from bench.payloads import MARK, Templates, parse_tag

now_ns = time.monotonic_ns


@dataclass
class Target:
    """How to reach one system: its two worker URLs and how to speak to it."""

    ports: list[int]
    socketio: bool = False
    path: str = "/ws/signaling/"

    def url(self, worker: int) -> str:
        port = self.ports[worker % len(self.ports)]
        if self.socketio:
            return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        return f"ws://127.0.0.1:{port}{self.path}"

    def headers(self, worker: int, cookie: str | None) -> dict[str, str]:
        port = self.ports[worker % len(self.ports)]
        headers = {"Origin": f"http://127.0.0.1:{port}"}
        if cookie:
            headers["Cookie"] = f"sessionid={cookie}"
        return headers


class ProtocolError(Exception):
    """The server answered something the benchmark did not expect."""


@dataclass
class Stats:
    """What one receiving shard saw in one phase, per sender."""

    phase: int = 0
    lat_us: list[int] = field(default_factory=list)
    received: dict[int, int] = field(default_factory=dict)
    max_seq: dict[tuple[int, int], int] = field(default_factory=dict)
    reordered: int = 0
    stale: int = 0


class Peer(WSListener):
    """One client socket; forwarded frames go to the shard's Stats, the rest to `events`."""

    def __init__(self, shard: Shard, socketio: bool) -> None:
        self.shard = shard
        self.socketio = socketio
        self.transport: WSTransport | None = None
        self.events: list[dict] = []
        self.waiter: asyncio.Future | None = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.peer_id = ""
        self.room: str | None = None
        self.frag = bytearray()
        # The peer ids `joined` listed (the room storm offers to each).
        self.present: list[str] = []
        # Room storm: this socket's room and its sender number (bench/storm.py).
        self.storm_room = None
        self.storm_index = -1

    # picows callbacks
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if not self.socketio:
            self.opened.set_result(True)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed {self.close_code}"))
        self._wake()

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code()
            transport.send_close(self.close_code)
            transport.disconnect()
            return
        if kind not in (WSMsgType.TEXT, WSMsgType.CONTINUATION):
            return
        payload = frame.get_payload_as_bytes()
        if not frame.fin or self.frag:
            self.frag += payload
            if not frame.fin:
                return
            payload, self.frag = bytes(self.frag), bytearray()
        if MARK in payload:
            self.shard.record(payload, self)
            return
        if self.socketio:
            payload = self._engineio(payload)
            if payload is None:
                return
        message = orjson.loads(payload)
        if self.socketio:
            message = message[1]
        self.events.append(message)
        self._wake()

    def _engineio(self, payload: bytes) -> bytes | None:
        if payload.startswith(b"42"):
            return payload[2:]
        if payload == b"2":  # engine.io ping from the server
            self.transport.send(WSMsgType.TEXT, b"3")
        elif payload.startswith(b"0"):  # engine.io open: connect to namespace "/"
            self.transport.send(WSMsgType.TEXT, b"40")
        elif payload.startswith(b"40") and not self.opened.done():
            self.opened.set_result(True)
        elif payload.startswith(b"44"):
            raise ProtocolError(f"socket.io connect error {payload!r}")
        return None

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # client API
    def send(self, message: dict) -> None:
        data = orjson.dumps(message)
        if self.socketio:
            data = b'42["msg",' + data + b"]"
        self.transport.send(WSMsgType.TEXT, data)

    async def expect(self, *types: str, within: float = 30.0) -> dict:
        """Return (and remove) the first buffered or future event of one of `types`."""
        deadline = time.monotonic() + within
        while True:
            for i, event in enumerate(self.events):
                if event.get("type") in types:
                    return self.events.pop(i)
                if event.get("type") == "error" and "error" not in types:
                    raise ProtocolError(f"server error {event}")
            if self.transport is None or self.transport.is_disconnected:
                raise ProtocolError(f"socket closed ({self.close_code}) waiting for {types}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {types} within {within}s")
            self.waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.waiter, left)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close()
            self.transport.disconnect()


class Shard:
    """One client process's share of the load; commands come from the coordinator."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.stats = Stats()
        self.rooms: list[list[Peer]] = []
        self.idle: list[Peer] = []
        self.target: Target | None = None
        self.storm = None  # a bench.storm.Storm while the room storm runs

    # receiving side of the forward workload
    def record(self, payload: bytes, receiver: Peer) -> None:
        if self.storm is not None:
            self.storm.on_frame(payload, receiver)
            return
        t_recv = now_ns()
        tag = parse_tag(payload)
        stats = self.stats
        if tag is None:
            return
        phase, sender, seq, t_sent = tag
        if phase != stats.phase:
            stats.stale += 1
            return
        stats.lat_us.append((t_recv - t_sent) // 1000)
        stats.received[sender] = stats.received.get(sender, 0) + 1
        pair = (sender, id(receiver))  # order is promised per sender and recipient
        if seq < stats.max_seq.get(pair, -1):
            stats.reordered += 1
        else:
            stats.max_seq[pair] = seq

    async def connect(self, target: Target, worker: int, cookie: str | None, setup=None) -> Peer:
        """Open a socket; `setup(peer)` runs before any frame can arrive."""
        socketio = target.socketio

        def make() -> Peer:
            peer = Peer(self, socketio)
            if setup is not None:
                setup(peer)
            return peer

        _, peer = await ws_connect(
            make,
            target.url(worker),
            extra_headers=target.headers(worker, cookie),
            websocket_handshake_timeout=30,
            max_frame_size=1 << 20,
        )
        if peer is None:  # the server dropped the connection during the handshake
            raise ConnectionError("handshake failed (connection dropped)")
        await asyncio.wait_for(peer.opened, 30)
        return peer

    async def enter(
        self,
        target: Target,
        worker: int,
        cookie: str | None,
        room: str | None,
        capacity: int,
        setup=None,
    ) -> tuple[Peer, float]:
        """Open a socket and create or join a room; return the peer and ms to `joined`."""
        t0 = time.perf_counter()
        peer = await self.connect(target, worker, cookie, setup)
        if room is None:
            peer.send({"type": "create", "capacity": capacity, "id": "c"})
        else:
            peer.send({"type": "join", "room": room, "id": "j"})
        joined = await peer.expect("joined")
        ms = (time.perf_counter() - t0) * 1000
        peer.peer_id = joined["peerId"]
        peer.room = joined["room"]["number"]
        peer.present = [other["peerId"] for other in joined.get("peers", ())]
        return peer, ms

    # commands ---------------------------------------------------------------
    async def cmd_setup_rooms(self, target, cookies, n_rooms, size, concurrency=20):
        """Create `n_rooms` rooms of `size` peers, spread over both workers."""
        self.target = target
        sem = asyncio.Semaphore(concurrency)
        cookie_iter = iter(cookies)

        async def one_room(r: int) -> list[Peer]:
            async with sem:
                owner, _ = await self.enter(target, r, next(cookie_iter), None, max(size, 2))
                peers = [owner]
                for j in range(1, size):
                    p, _ = await self.enter(target, r + j, next(cookie_iter), owner.room, size)
                    peers.append(p)
                for p in peers[:-1]:
                    await p.expect("peer-joined", within=10)
                return peers

        results = await asyncio.gather(
            *(one_room(r) for r in range(n_rooms)), return_exceptions=True
        )
        self.rooms = [r for r in results if not isinstance(r, BaseException)]
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        if not self.rooms and errors:
            raise ProtocolError(f"no room could be set up: {errors[0]}")
        return {"rooms": len(self.rooms), "failed": len(errors), "error": errors[:1]}

    async def cmd_storm_prepare(self, target, cookies, n_rooms, size, candidates, phase):
        """Room storm, part one: every room's owner creates it (not timed)."""
        from bench.storm import Storm

        self.target = target
        self.storm = Storm(self, target, cookies, n_rooms, size, candidates, phase)
        return await self.storm.prepare()

    async def cmd_storm_go(self, within):
        """Room storm, part two: everyone else joins at once and negotiates; the figures."""
        storm = self.storm
        try:
            return await storm.go(within)
        finally:
            self.rooms = storm.peers_by_room()
            self.storm = None

    async def cmd_teardown(self):
        for room in self.rooms:
            for p in room:
                p.close()
        for p in self.idle:
            p.close()
        self.rooms, self.idle = [], []
        await asyncio.sleep(0.5)
        return {}

    async def cmd_forward(self, phase, rate, duration, offer_every, drain=10.0):
        """Send `rate` msgs/s (this shard's share) open-loop for `duration` s; count arrivals."""
        templates = Templates(self.target.socketio)
        senders = []  # (peer, [recipient ids], sender index)
        for room in self.rooms:
            for i, p in enumerate(room):
                others = [q.peer_id.encode() for j, q in enumerate(room) if j != i]
                senders.append((p, others, self.index * 100_000 + len(senders)))
        self.stats = Stats(phase=phase)
        for room in self.rooms:
            for p in room:
                p.events.clear()
        seqs = [0] * len(senders)
        total = int(rate * duration)
        interval = 1e9 / rate
        lags = []
        rng = random.Random(phase)
        cpu0 = time.process_time()
        start = now_ns() + 20_000_000
        i = 0
        text = WSMsgType.TEXT
        while i < total:
            t = now_ns()
            due = start + int(i * interval)
            if due > t:
                await asyncio.sleep((due - t) / 1e9)
                t = now_ns()
            lags.append(t - due)
            while i < total and start + int(i * interval) <= t:
                k = i % len(senders)
                peer, others, sid = senders[k]
                seq = seqs[k]
                seqs[k] = seq + 1
                to = others[seq % len(others)] if len(others) > 1 else others[0]
                tag = b"%d:%d:%d:%d" % (phase, sid, seq, now_ns())
                if offer_every and (seq + k) % offer_every == 0:  # 1 in N, staggered
                    frame = templates.offer(to, tag)
                else:
                    frame = templates.candidate(to, tag)
                peer.transport.send(text, frame)
                i += 1
            if rng.random() < 0.01:
                await asyncio.sleep(0)  # let receivers run even when behind
        send_wall = (now_ns() - start) / 1e9
        sent_total = sum(seqs)
        # Wait for stragglers until nothing has arrived for a second (at most `drain` s).
        deadline = time.monotonic() + drain
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:  # the picows callbacks bump the counters
            got = sum(self.stats.received.values())
            if got >= sent_total:
                break
            if got != last:
                last, quiet_since = got, time.monotonic()
            elif time.monotonic() - quiet_since > 1.0:
                break
            await asyncio.sleep(0.05)
        cpu = time.process_time() - cpu0
        stats = self.stats
        received = sum(stats.received.values())
        lost_senders = sum(
            1 for k, (_, _, sid) in enumerate(senders) if stats.received.get(sid, 0) < seqs[k]
        )
        closed = sum(1 for room in self.rooms for p in room if p.transport.is_disconnected)
        lags.sort()
        server_errors: dict[str, int] = {}
        for room in self.rooms:
            for p in room:
                for event in p.events:
                    if event.get("type") == "error":
                        code = str(event.get("code"))
                        server_errors[code] = server_errors.get(code, 0) + 1
                p.events.clear()
        return {
            "server_errors": server_errors,
            "sent": sent_total,
            "received": received,
            "lost": max(sent_total - received, 0),
            "lost_senders": lost_senders,
            "senders": len(senders),
            "reordered": stats.reordered,
            "stale": stats.stale,
            "lat_us": stats.lat_us,
            "send_wall": send_wall,
            "lag_p99_ms": lags[int(len(lags) * 0.99)] / 1e6 if lags else 0.0,
            "client_cpu": cpu,
            "closed": closed,
        }

    async def cmd_join_seq(self, target, cookies, n, max_seconds=60.0):
        """Sequential joins with nothing else going on: create on worker 1, join on worker 2."""
        samples, held = [], []
        cookie_iter = iter(cookies)
        deadline = time.monotonic() + max_seconds
        for _ in range(n):
            owner, ms = await self.enter(target, 0, next(cookie_iter), None, 6)
            samples.append(ms)
            guest, ms = await self.enter(target, 1, next(cookie_iter), owner.room, 6)
            samples.append(ms)
            held += [owner, guest]
            if time.monotonic() > deadline:
                break
        for p in held:
            p.close()
        await asyncio.sleep(0.3)
        return {"ms": samples}

    async def cmd_join_burst(self, target, cookies, n_rooms, per_room):
        """`n_rooms` owners first, then n_rooms*per_room joins all at once."""
        cookie_iter = iter(cookies)
        owners = []
        sem = asyncio.Semaphore(20)

        async def make_owner(r):
            async with sem:
                p, _ = await self.enter(target, r, next(cookie_iter), None, per_room + 1)
                return p

        owners = await asyncio.gather(*(make_owner(r) for r in range(n_rooms)))
        joins = [
            (owners[k % n_rooms].room, k, next(cookie_iter)) for k in range(n_rooms * per_room)
        ]
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(self.enter(target, k + 1, c, room, per_room + 1) for room, k, c in joins),
            return_exceptions=True,
        )
        took = time.perf_counter() - t0
        ok = [r for r in results if not isinstance(r, BaseException)]
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        for p in owners:
            p.close()
        for p, _ in ok:
            p.close()
        await asyncio.sleep(0.5)
        return {
            "ms": [ms for _, ms in ok],
            "took": took,
            "errors": errors[:5],
            "failed": len(errors),
        }

    async def cmd_hold_idle(self, target, cookies, n_pairs, concurrency=10):
        """Open 2*n_pairs sockets in rooms of two (one per worker) and keep them open.

        Gently (a few at a time, one retry): this measures memory, not a burst.
        """
        cookie_iter = iter(cookies)
        sem = asyncio.Semaphore(concurrency)
        failed, first_error = 0, ""

        async def enter(worker, cookie, room, capacity):
            try:
                return await self.enter(target, worker, cookie, room, capacity)
            except (ConnectionError, ProtocolError, TimeoutError, OSError):
                await asyncio.sleep(0.5)
                return await self.enter(target, worker, cookie, room, capacity)

        async def pair():
            nonlocal failed, first_error
            owner_cookie, guest_cookie = next(cookie_iter), next(cookie_iter)
            async with sem:
                try:
                    owner, _ = await enter(0, owner_cookie, None, 2)
                    self.idle.append(owner)
                    guest, _ = await enter(1, guest_cookie, owner.room, 2)
                    self.idle.append(guest)
                except Exception as exc:
                    failed += 1
                    first_error = first_error or f"{type(exc).__name__}: {exc}"

        await asyncio.gather(*(pair() for _ in range(n_pairs)))
        return {
            "open": sum(1 for p in self.idle if not p.transport.is_disconnected),
            "failed": failed,
            "error": first_error,
        }

    async def cmd_count_idle(self):
        return {"open": sum(1 for p in self.idle if not p.transport.is_disconnected)}


def shard_main(index: int, conn) -> None:
    """Entry point of a client process: run commands from the pipe until told to stop."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    runner(_serve(index, conn))


async def _serve(index: int, conn) -> None:
    shard = Shard(index)
    loop = asyncio.get_running_loop()
    while True:
        name, kwargs = await loop.run_in_executor(None, conn.recv)
        if name == "stop":
            await shard.cmd_teardown()
            conn.send(("ok", {}))
            os._exit(0)
        try:
            result = await getattr(shard, "cmd_" + name)(**kwargs)
            conn.send(("ok", result))
        except Exception as exc:  # reported to the coordinator, which decides
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
