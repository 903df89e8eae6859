"""A socket that stops reading, against one real daphne worker (Redis, PostgreSQL).

The attack of issue 22: someone in the room sends a socket that does not read
offers of the largest size at the rate the server allows. Before
SOCKET_SEND_BUFFER_MAX the worker queued every byte for it (+3 MB/s, never
given back); now the socket is closed with 4408 once a few MB wait for it,
and a socket that reads, sent the same, is never closed. Figures are printed
(`-s`).
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from tests.integration.conftest import WsClient

pytestmark = pytest.mark.slow

RATE = 50  # SIGNALING_RATE's default: offers a second one sender may send
SECONDS = 8
# The largest offer a frame of SIGNALING_MAX_MESSAGE_BYTES (65,536) holds.
SDP = "v=0 " + "x" * 65_380


def rss_kib(pid: int) -> int:
    """The process's resident memory (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def not_reading_socket(base: str, key: str) -> WsClient:
    """A signaling socket with a 4 KiB receive buffer, whose reading the test can stop."""
    from websockets.asyncio.client import connect

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = base.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    sock.setblocking(False)
    ws = await connect(
        base.replace("http://", "ws://") + "/ws/signaling/",
        sock=sock,
        origin=base,
        additional_headers={"Cookie": f"sessionid={key}"},
        max_queue=None,
        max_size=None,
    )
    return WsClient(ws, base)


async def send_offers(sender: WsClient, to: str, *, count: int) -> None:
    """`count` max-size offers to `to`, paced at RATE a second (what the server allows)."""
    started = time.monotonic()
    for n in range(count):
        await sender.send({"type": "offer", "to": to, "sdp": SDP})
        await asyncio.sleep(max(0.0, started + (n + 1) / RATE - time.monotonic()))


async def test_a_socket_that_stops_reading_is_closed_before_it_costs_the_worker_memory(
    make_stack, ws_connect
):
    """Max-size offers at the allowed rate to a non-reader: closed 4408, the worker's RSS bounded.

    A second socket in the same room, sent exactly the same by a second sender,
    reads: it gets every offer and is never closed.
    """
    stack = make_stack(workers=1)
    [base] = stack.workers
    pid = stack.by_base[base].pid
    (_, key_slow), (_, key_fast), (_, key_s1), (_, key_s2) = stack.sessions(4)
    slow = await not_reading_socket(base, key_slow)
    number = (await slow.create())["room"]["number"]
    fast = await ws_connect(base, key_fast, max_size=None)
    sender_1 = await ws_connect(base, key_s1)
    sender_2 = await ws_connect(base, key_s2)
    for client in (fast, sender_1, sender_2):
        assert (await client.join(number))["type"] == "joined"
    await slow.until(lambda: len(slow.seen("peer-joined")) == 3, timeout=10)
    # Warm the worker's paths up with a few offers each way, read by both.
    await asyncio.gather(
        send_offers(sender_1, slow.peer_id, count=5), send_offers(sender_2, fast.peer_id, count=5)
    )
    await slow.until(lambda: len(slow.seen("offer")) == 5, timeout=10)
    await fast.until(lambda: len(fast.seen("offer")) == 5, timeout=10)
    before = rss_kib(pid)

    slow.ws.transport.pause_reading()  # from here on, nothing is read from that socket
    count = RATE * SECONDS
    peak = before

    async def watch_rss() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_kib(pid))
            await asyncio.sleep(0.1)

    watching = asyncio.ensure_future(watch_rss())
    started = time.monotonic()
    await asyncio.gather(
        send_offers(sender_1, slow.peer_id, count=count),
        send_offers(sender_2, fast.peer_id, count=count),
    )
    # Every offer was handled and forwarded once each sender's ping is answered...
    for sender in (sender_1, sender_2):
        assert (await sender.request({"type": "ping"}))["type"] == "pong"
    # ...and the reader has them all.
    await fast.until(lambda: len(fast.seen("offer")) == 5 + count, timeout=30)
    took = time.monotonic() - started
    after = rss_kib(pid)
    watching.cancel()
    grew_mb = (peak - before) / 1024
    logs = stack.worker_logs()
    print(
        f"\nFIGURE slow reader: {count} offers of 64 KiB in {took:.1f} s to a socket that does "
        f"not read ({count * 64 / 1024:.1f} MiB) and as many to one that reads: worker RSS "
        f"{before / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB (+{grew_mb:.1f}), "
        f"{after / 1024:.1f} MiB after"
    )
    # The slow socket's close is in the log (no traceback), and once it reads
    # again it finds the close code behind what had been queued for it.
    assert "closed a socket that stopped reading" in logs, logs[-3000:]
    assert "Traceback" not in logs, logs[-3000:]
    slow.ws.transport.resume_reading()
    assert await slow.wait_closed(timeout=10) == 4408
    got = len(slow.seen("offer"))
    print(f"FIGURE slow reader: it had been sent {got - 5} of the {count} offers when closed")
    assert got - 5 < count
    # What it was sent before the close arrived whole: the stream was cut between messages.
    assert {len(message["sdp"]) for message in slow.seen("offer")} == {len(SDP)}
    # Bounded: the 2 MiB buffer, the messages in flight, the allocator's slack;
    # before the bound the worker kept every offer (+17 MiB here, +3 MB/s).
    assert grew_mb < 8, grew_mb
    # The reader was sent exactly the same, read it all, and stays.
    assert not fast.closed
    assert (await fast.request({"type": "ping"}))["type"] == "pong"
    # The room still has the slow peer (it may come back and resume).
    assert stack.sql(
        "SELECT count(*) FROM rooms_participant WHERE peer_id = %s AND left_at IS NULL",
        slow.peer_id,
    ) == [(1,)]
    assert slow.seen("error") == []
