"""A socket's limits (signaling/limits.py, issue 5): one client cannot hurt anyone else.

The token bucket's arithmetic, the rate limit through the real consumer, the
invalid-frame cap, and the frame-size limits both in the consumer and in a
real daphne worker started with the project's flags. Join attempts and PINs:
tests/rooms/test_attempts.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from signaling import limits

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


class Clock:
    """The bucket's clock, moved by hand so the arithmetic is checked exactly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(limits.time, "monotonic", clock)
    return clock


@pytest.mark.django_db(transaction=False)
def test_token_bucket_burst_refusal_refill(clock):
    """A bucket passes its burst at once, refuses the next, refills at its rate up to the cap."""
    bucket = limits.TokenBucket(rate=4, capacity=5)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.125  # half a token
    assert bucket.take() is False
    clock.now += 0.125  # the other half
    assert bucket.take() is True
    assert bucket.take() is False
    clock.now += 3600  # a long pause refills to the burst, not beyond
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]


@pytest.mark.django_db(transaction=False)
def test_message_and_strike_buckets_follow_settings(settings, clock):
    """The per-connection buckets take their rate, burst and strikes from the settings."""
    settings.SIGNALING_RATE, settings.SIGNALING_BURST, settings.SIGNALING_RATE_STRIKES = 7, 3, 2
    bucket, strikes = limits.message_bucket(), limits.strike_bucket()
    assert (bucket.rate, bucket.capacity) == (7, 3)
    assert (strikes.rate, strikes.capacity) == (1, 2)


@pytest.fixture
async def alice(make_user):
    return await database_sync_to_async(make_user)(f"alice-{uuid.uuid4().hex[:6]}")


@pytest.fixture
async def bob(make_user):
    return await database_sync_to_async(make_user)(f"bob-{uuid.uuid4().hex[:6]}")


async def test_flood_gets_rate_limited_then_closed_4429(settings, connect, alice, bob):
    """Past the burst messages are refused (one notice a second); out of strikes, close 4429."""
    settings.SIGNALING_RATE = 0.001  # no refill within the test
    settings.SIGNALING_BURST = 5
    settings.SIGNALING_RATE_STRIKES = 3
    a, b = await connect(alice), await connect(bob)
    number = (await a.create())["room"]["number"]
    await b.join(number)  # bob's own bucket: create/join cost alice one token
    await a.recv_type("peer-joined")
    for n in range(8):
        await a.send({"type": "offer", "to": b.peer_id, "sdp": f"sdp {n}", "id": f"o{n}"})
    # 1 (create) + 4 offers fit the burst of 5; they reach bob, and only they do.
    for n in range(4):
        assert (await b.recv_type("offer"))["sdp"] == f"sdp {n}"
    limited = {"type": "error", "code": "rate-limited", "message": "too many messages; slow down"}
    # 3 strikes, then the 4th refusal closes; within a second, one notice only.
    assert await a.recv() == limited
    assert await a.expect_close() == 4429
    await b.nothing_before_pong()


async def test_rate_limit_is_per_connection(settings, connect, alice, bob):
    """One socket running out of tokens does not limit another socket of the same user."""
    settings.SIGNALING_RATE = 0.001
    settings.SIGNALING_BURST = 2
    first, second = await connect(alice), await connect(alice)
    for n in range(3):
        await first.send({"type": "ping", "id": f"p{n}"})
    assert [(await first.recv())["type"] for _ in range(3)] == ["pong", "pong", "error"]
    assert await second.request({"type": "ping", "id": "x"}) == {"type": "pong", "re": "x"}


async def test_twenty_invalid_frames_in_a_row_close_4400(connect, alice):
    """19 invalid frames are answered; a valid one resets the count; 20 in a row close 4400."""
    a = await connect(alice)
    bad = {"type": "error", "code": "bad-message", "message": "not valid JSON"}
    for _ in range(19):
        await a.send("{not json")
        assert await a.recv() == bad
    assert await a.request({"type": "ping", "id": "r"}) == {"type": "pong", "re": "r"}
    for _ in range(20):
        await a.send("{not json")
    for _ in range(20):
        assert await a.recv() == bad
    assert await a.expect_close() == 4400


async def test_frame_over_64k_is_too_large_and_socket_stays(connect, alice):
    """A frame between 64 KiB and daphne's 128 KiB is answered too-large; the socket lives on."""
    a = await connect(alice)
    frame = json.dumps({"type": "chat", "text": "x" * (100 * 1024), "id": "big"})
    await a.send(frame)
    assert await a.recv() == {
        "type": "error",
        "code": "too-large",
        "message": "a message may be at most 65536 bytes",
    }
    # Bytes, not characters: 40,000 two-byte characters are 80,000 bytes.
    await a.send(json.dumps({"type": "ping", "x": "é" * 40_000}, ensure_ascii=False))
    assert (await a.recv())["code"] == "too-large"
    assert await a.request({"type": "ping", "id": "ok"}) == {"type": "pong", "re": "ok"}


# --- Against a real daphne worker, started as deployments start it ---------------------------


@pytest.fixture(scope="module")
def worker():
    """One daphne worker (config.serve) with a user's session: (base URL, session key)."""
    # The process machinery lives with the multi-worker tests.
    from tests.integration.conftest import running_stack

    with running_stack(workers=1) as stack:
        ((_, key),) = stack.sessions(1)
        yield stack.workers[0], key


@pytest.mark.slow
@pytest.mark.django_db(transaction=False)
async def test_real_daphne_size_limits(worker):
    """Real daphne: 100 KiB gets too-large and the socket stays; over 128 KiB it closes 1009."""
    base, key = worker
    ws = await ws_connect(
        base.replace("http://", "ws://") + "/ws/signaling/",
        origin=base,
        additional_headers={"Cookie": f"sessionid={key}"},
        max_size=None,
    )
    try:
        await ws.send(json.dumps({"type": "chat", "text": "x" * (100 * 1024)}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert (answer["type"], answer["code"]) == ("error", "too-large")
        await ws.send(json.dumps({"type": "ping", "id": "alive"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong", "re": "alive"}

        await ws.send(json.dumps({"type": "chat", "text": "x" * (129 * 1024)}))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1009
    finally:
        await ws.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=False)
async def test_real_daphne_invalid_utf8_text_frame(worker):
    """Real daphne: a text frame that is not UTF-8 closes that socket, and only that socket."""
    base, key = worker
    ws = await ws_connect(
        base.replace("http://", "ws://") + "/ws/signaling/",
        origin=base,
        additional_headers={"Cookie": f"sessionid={key}"},
    )
    try:
        await ws.send(b'{"type":"ping","id":"\xff\xfe"}', text=True)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        # 1007 by RFC 6455; autobahn (daphne) drops the connection instead, which
        # the client sees as 1006 -- see test_real_daphne_size_limits.
        assert ws.close_code in (1007, 1006)
    finally:
        await ws.close()
    # The worker is fine: a new socket works.
    ws = await ws_connect(
        base.replace("http://", "ws://") + "/ws/signaling/",
        origin=base,
        additional_headers={"Cookie": f"sessionid={key}"},
    )
    try:
        await ws.send(json.dumps({"type": "ping", "id": "again"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong", "re": "again"}
    finally:
        await ws.close()
