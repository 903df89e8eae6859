"""The consumer on the product's Redis layer (transport/layer.py), in process.

With that layer the consumer reads its channel's events from the queue its
socket's frames arrive in (`new_channel_into`); these tests check that path
end to end and that a closed socket leaves no channel behind, in the layer or
in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from infra.redis import get_redis
from rooms.models import Participant
from signaling.runtime import get_worker
from tests.integration.conftest import REDIS_URL, layer_subscribers
from transport.inbox import Inbox
from transport.layer import RedisPubSubLayer, _Sink

pytestmark = pytest.mark.django_db(transaction=True)

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.fixture
def redis_layer(settings):
    prefix = f"consumer-test-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "transport.layer.RedisPubSubLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": prefix},
        }
    }
    layer = get_channel_layer()
    assert isinstance(layer, RedisPubSubLayer)
    return layer


@database_sync_to_async
def channel_of(peer_id: str) -> str:
    return Participant.objects.get(peer_id=peer_id).channel_name


async def test_events_reach_the_consumer_through_its_socket_queue(redis_layer, connect, alice, bob):
    """Joins, forwards and leaves work; each socket's channel delivers into its own queue."""
    a, b = await connect(alice), await connect(bob)
    await a.create()
    answer = await b.join(a.room["number"])
    assert (await a.recv())["type"] == "peer-joined"
    channels = {peer.peer_id: await channel_of(peer.peer_id) for peer in (a, b)}
    table = redis_layer._loop_layer().channels
    # Direct delivery: each socket's channel puts its events into the socket's Inbox.
    assert all(type(table[channel]) is _Sink for channel in channels.values())
    assert all(type(table[channel].queue) is Inbox for channel in channels.values())
    for channel in channels.values():
        assert await layer_subscribers(redis_layer, channel, expect=1) == 1

    await b.send({"type": "offer", "to": a.peer_id, "sdp": SDP, "id": "o1"})
    assert await a.recv() == {"type": "offer", "from": b.peer_id, "to": a.peer_id, "sdp": SDP}
    await a.send({"type": "answer", "to": answer["peerId"], "sdp": SDP})
    assert await b.recv() == {"type": "answer", "from": a.peer_id, "to": b.peer_id, "sdp": SDP}

    await b.close()
    assert await a.recv() == {"type": "peer-left", "peerId": b.peer_id, "reason": "disconnected"}
    assert channels[b.peer_id] not in redis_layer.local_channels()
    assert await layer_subscribers(redis_layer, channels[b.peer_id], expect=0) == 0
    await a.close()
    # What stays is the worker's own channel, on which it hears revocations.
    assert redis_layer.local_channels() == [get_worker().group.channel]
    assert await layer_subscribers(redis_layer, channels[a.peer_id], expect=0) == 0
    await redis_layer.flush()


@pytest.fixture
def redis_state(settings):
    """Presence and the socket registry in Redis, on a pool of one connection (infra/redis.py)."""
    settings.REDIS_URL = REDIS_URL
    settings.CHANNEL_LAYER_PREFIX = f"consumer-test-{uuid.uuid4().hex[:8]}"
    settings.REDIS_POOL_SIZE = 1
    settings.REDIS_POOL_TIMEOUT = 1
    yield settings.CHANNEL_LAYER_PREFIX


@database_sync_to_async
def left(peer_id: str) -> tuple[bool, str]:
    participant = Participant.objects.get(peer_id=peer_id)
    return participant.left_at is not None, participant.left_reason


async def registry_and_presence(prefix: str, user_id: int, peer_id: str) -> tuple[int, bool]:
    """Bob's entries in Redis, read on a client of the test's own: (sockets held, has presence)."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        sockets = await client.zcard(f"{prefix}:sockets:{user_id}")
        presence = await client.zscore(f"{prefix}:presence", peer_id)
        return sockets, presence is not None
    finally:
        await client.aclose()


@pytest.fixture
async def in_a_call(redis_state, connect, alice, bob):
    """Alice's and Bob's sockets, in one room, with presence and the registry in Redis."""
    a, b = await connect(alice), await connect(bob)
    await a.create()
    await b.join(a.room["number"])
    await a.recv_type("peer-joined")
    return a, b


async def until(condition, what: str, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.01)


async def test_a_leave_cut_short_by_the_server_still_happens(redis_state, in_a_call, bob):
    """daphne cancels a consumer still busy 10 s after its socket closed: the leave goes on."""
    a, b = in_a_call
    assert await registry_and_presence(redis_state, bob.pk, b.peer_id) == (1, True)
    # Bob's leave will wait for the pool's one connection, held here.
    pool = get_redis().connection_pool
    held = await pool.get_connection()
    worker = get_worker()
    await b.ws.send_input({"type": "websocket.disconnect", "code": 1000})
    await until(lambda: worker.registry.closings, "bob's leave started")
    b.ws.future.cancel()  # what daphne does at its application_close_timeout
    with contextlib.suppress(asyncio.CancelledError):
        await b.ws.future
    await pool.release(held)

    assert await a.recv() == {"type": "peer-left", "peerId": b.peer_id, "reason": "disconnected"}
    assert await left(b.peer_id) == (True, "disconnected")
    await until(lambda: not worker.registry.closings, "bob's leave over")
    assert await registry_and_presence(redis_state, bob.pk, b.peer_id) == (0, False)


async def test_a_leave_whose_redis_writes_fail_still_reaches_the_room(redis_state, in_a_call, bob):
    """Redis bookkeeping that times out (a full pool) is left to lapse; the room is told."""
    a, b = in_a_call
    pool = get_redis().connection_pool
    held = await pool.get_connection()
    try:
        await b.ws.disconnect(code=1001, timeout=10)
        assert await a.recv() == {
            "type": "peer-left",
            "peerId": b.peer_id,
            "reason": "disconnected",
        }
    finally:
        await pool.release(held)
    assert await left(b.peer_id) == (True, "disconnected")
    # What failed stays until its deadline: the registry entry and the presence.
    assert await registry_and_presence(redis_state, bob.pk, b.peer_id) == (1, True)


async def test_a_slow_leave_outlives_its_consumer(redis_state, in_a_call, bob, monkeypatch):
    """The consumer waits for its leave only so long (inside daphne's patience); it goes on."""
    monkeypatch.setattr("signaling.runtime.registry.FINISH_WAIT", 0.05)
    a, b = in_a_call
    pool = get_redis().connection_pool
    held = await pool.get_connection()
    worker = get_worker()
    await b.ws.disconnect(code=1000, timeout=5)  # the consumer is done...
    assert b.ws.future.done() and not b.ws.future.cancelled()
    assert len(worker.registry.closings) == 1  # ...and its leave still under way
    await pool.release(held)
    assert await a.recv() == {"type": "peer-left", "peerId": b.peer_id, "reason": "disconnected"}
    assert await left(b.peer_id) == (True, "disconnected")
    await until(lambda: not worker.registry.closings, "bob's leave over")
    assert await registry_and_presence(redis_state, bob.pk, b.peer_id) == (0, False)
