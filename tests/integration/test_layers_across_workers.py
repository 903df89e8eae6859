"""Every channel layer the settings offer carries a call's messages between two real workers.

CHANNEL_LAYER=core (channels_redis' RedisChannelLayer) used to lose them: the
revocation listener's channel had a prefix of its own, so the one blocking pop
that serves all of a process's channels sat on that channel's list for 5 s at
a time while the sockets' messages piled up (ChannelFull, `peer-joined` late
by seconds); and after 5 s without traffic redis-py's socket timeout ended the
pop with TimeoutError inside a consumer, which killed that socket (1011);
and its capacity (100 messages waiting, shared by all the sockets of a
worker) refused a burst that any worker of a busy site sees.
"""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.slow

ROOMS = 6
PER_SENDER = 25
RATE = 100  # messages a second, all senders together
# Longer than channels_redis' blocking pop (RedisChannelLayer.brpop_timeout, 5 s).
IDLE = 6


def candidate(n: int) -> dict:
    return {"candidate": f"candidate:{n} 1 udp 2122260223 127.0.0.1 {5000 + n} typ host"}


@pytest.mark.parametrize("layer", ["pubsub", "pubsub-stock", "core"])
async def test_forwards_across_workers_all_arrive_in_order(make_stack, ws_connect, layer):
    """Rooms split over two workers: joins announced; after 6 s idle, 600 forwards in order."""
    stack = make_stack(CHANNEL_LAYER=layer)
    w1, w2 = stack.workers
    sessions = stack.sessions(2 * ROOMS)
    pairs = []
    for i in range(ROOMS):
        a = await ws_connect(w1, sessions[2 * i][1])
        b = await ws_connect(w2, sessions[2 * i + 1][1])
        number = (await a.create(name=f"room {i}"))["room"]["number"]
        assert (await b.join(number))["type"] == "joined"
        # A group send from worker 2 to worker 1.
        assert (await a.next("peer-joined", timeout=5))["peer"]["peerId"] == b.peer_id
        pairs.append((a, b))

    # Both workers idle for longer than a blocking pop waits; every socket still answers.
    await asyncio.sleep(IDLE)
    sockets = [c for pair in pairs for c in pair]
    pongs = await asyncio.gather(*(c.request({"type": "ping"}) for c in sockets))
    assert [m["type"] for m in pongs] == ["pong"] * len(sockets)

    senders = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]
    interval = len(senders) / RATE

    async def send_all(src, dst, k: int) -> None:
        await asyncio.sleep(k * interval / len(senders))  # spread the senders over one interval
        for n in range(PER_SENDER):
            await src.send({"type": "candidate", "to": dst.peer_id, "candidate": candidate(n)})
            await asyncio.sleep(interval)

    await asyncio.gather(*(send_all(src, dst, k) for k, (src, dst) in enumerate(senders)))

    # Then a burst: every sender's next PER_SENDER at once, 150 queued for each worker.
    async def burst(src, dst) -> None:
        for n in range(PER_SENDER, 2 * PER_SENDER):
            await src.send({"type": "candidate", "to": dst.peer_id, "candidate": candidate(n)})

    await asyncio.gather(*(burst(src, dst) for src, dst in senders))

    def received(dst, src) -> list[dict]:
        return [
            m["candidate"]
            for _, m in dst.log
            if m.get("type") == "candidate" and m.get("from") == src.peer_id
        ]

    for src, dst in senders:
        await dst.until(lambda d=dst, s=src: len(received(d, s)) >= 2 * PER_SENDER, timeout=10)
    for src, dst in senders:
        assert received(dst, src) == [candidate(n) for n in range(2 * PER_SENDER)]
    for client in sockets:
        assert client.seen("error") == []
        assert not client.closed
    logs = stack.worker_logs()
    assert "ChannelFull" not in logs
    assert "Exception inside application" not in logs
