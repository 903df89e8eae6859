"""The consumer on the product's Redis layer (transport/layer.py), in process.

With that layer the consumer reads its channel's events from the queue its
socket's frames arrive in (`new_channel_into`); these tests check that path
end to end and that a closed socket leaves no channel behind, in the layer or
in Redis.
"""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from rooms.models import Participant
from rooms.worker import get_worker
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
    assert redis_layer.local_channels() == [get_worker().channel]
    assert await layer_subscribers(redis_layer, channels[a.peer_id], expect=0) == 0
    await redis_layer.flush()
