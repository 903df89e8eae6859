"""transport/consumer.py and inbox.py: the fast path is the one the in-process tests run."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator as ChannelsCommunicator

from config.asgi import application
from tests.conftest import Peer, session_cookie
from transport.inbox import Inbox, inbox_of
from transport.layer import InMemoryLayer

pytestmark = pytest.mark.django_db(transaction=True)


async def test_only_an_inbox_get_is_recognised():
    """inbox_of() knows an Inbox's get; a plain queue's get, a wrapper or a put is not one."""
    inbox, plain = Inbox(), asyncio.Queue()
    assert inbox_of(inbox.get) is inbox
    assert inbox_of(plain.get) is None
    assert inbox_of(inbox.put) is None
    assert inbox_of(lambda: inbox.get()) is None


async def test_in_process_sockets_take_the_direct_path(connect, make_user):
    """With the test communicator, a socket's channel delivers into the socket's own Inbox."""
    layer = get_channel_layer()
    assert type(layer) is InMemoryLayer
    peer = await connect(await database_sync_to_async(make_user)("direct"))
    answer = await peer.create()
    assert answer["type"] == "joined"
    (queue, _) = layer.sinks[next(iter(layer.sinks))]
    assert [type(q) for q, _ in layer.sinks.values()] == [Inbox]
    assert queue is peer.ws.input_queue
    await peer.close()
    assert layer.sinks == {}


async def test_a_receive_that_is_not_an_inbox_takes_channels_path(make_user):
    """Handed a plain queue's get (Channels' own communicator), the consumer still works."""
    user = await database_sync_to_async(make_user)("plain")
    cookie = await database_sync_to_async(session_cookie)(user)
    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    headers.append((b"cookie", f"sessionid={cookie}".encode()))
    peer = Peer(ChannelsCommunicator(application, "/ws/signaling/", headers=headers))
    connected, _ = await peer.ws.connect()
    assert connected
    assert (await peer.create())["type"] == "joined"
    assert get_channel_layer().sinks == {}
    assert await peer.request({"type": "ping", "id": "p"}) == {"type": "pong", "re": "p"}
    await peer.close()


async def test_an_inbox_hands_items_over_in_order_and_wakes_its_reader():
    """put_nowait and put queue in order; a waiting get() wakes; a cancelled one loses nothing."""
    inbox = Inbox()
    inbox.put_nowait({"n": 1})
    await inbox.put({"n": 2})
    assert (inbox.qsize(), inbox.empty()) == (2, False)
    assert [await inbox.get(), inbox.get_nowait()] == [{"n": 1}, {"n": 2}]
    with pytest.raises(asyncio.QueueEmpty):
        inbox.get_nowait()
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one reader"):
        await inbox.get()
    inbox.put_nowait({"n": 3})
    assert await reader == {"n": 3}
    cancelled = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    inbox.put_nowait({"n": 4})
    assert await inbox.get() == {"n": 4}
    assert inbox.empty()
