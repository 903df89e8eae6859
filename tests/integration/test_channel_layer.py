"""transport/layer.py on the real Redis: two layer instances stand for two workers."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
import redis.exceptions

from tests.integration.conftest import REDIS_URL, layer_subscribers
from transport.layer import RedisPubSubLayer

pytestmark = pytest.mark.slow


def make_layer(url: str = REDIS_URL, prefix: str | None = None) -> RedisPubSubLayer:
    return RedisPubSubLayer(hosts=[url], prefix=prefix or f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def workers():
    """Two layers on one prefix, as two daphne workers sharing Redis would have."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a, b = make_layer(prefix=prefix), make_layer(prefix=prefix)
    yield a, b
    await a.flush()
    await b.flush()


async def receive_n(layer, channel: str, n: int, timeout: float = 10) -> list[dict]:
    async def collect():
        return [await layer.receive(channel) for _ in range(n)]

    return await asyncio.wait_for(collect(), timeout)


async def test_concurrent_sends_all_arrive_in_order(workers):
    """600 sends started in one loop pass reach the other worker, all of them, in send order."""
    a, b = workers
    channel = await b.new_channel()
    await asyncio.gather(*(a.send(channel, {"type": "t", "n": i}) for i in range(600)))
    received = await receive_n(b, channel, 600)
    assert [m["n"] for m in received] == list(range(600))


async def test_sends_queued_together_share_pipelines(workers, monkeypatch):
    """Sends queued while a batch is in flight go out together, not one round trip each."""
    a, b = workers
    channel = await b.new_channel()
    await a.send(channel, {"type": "t", "n": -1})  # connects the shard
    connections = a._loop_layer()
    batches = []
    real_pipeline = connections.redis.pipeline

    def counting_pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        async def execute(*eargs, **ekwargs):
            batches.append(len(pipe.command_stack))
            return await real_execute(*eargs, **ekwargs)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(connections.redis, "pipeline", counting_pipeline)
    await asyncio.gather(*(a.send(channel, {"type": "t", "n": i}) for i in range(300)))
    received = await receive_n(b, channel, 301)
    assert [m["n"] for m in received] == [-1, *range(300)]
    assert sum(batches) == 300
    assert len(batches) < 10, batches


async def test_group_send_reaches_members_on_both_workers(workers):
    """A group send from one worker reaches the group's members on both, and no one else."""
    a, b = workers
    on_a, on_b, outsider = await a.new_channel(), await b.new_channel(), await b.new_channel()
    await a.group_add("room.1", on_a)
    await b.group_add("room.1", on_b)
    await a.group_send("room.1", {"type": "hello", "text": "x" * 5000})
    assert (await receive_n(a, on_a, 1))[0]["text"] == "x" * 5000
    assert (await receive_n(b, on_b, 1))[0]["type"] == "hello"
    with pytest.raises(TimeoutError):
        await receive_n(b, outsider, 1, timeout=0.3)


async def test_discarded_channel_hears_nothing_more(workers):
    """After group_discard the group's messages stop; the channel's own still arrive."""
    a, b = workers
    channel = await b.new_channel()
    await b.group_add("room.2", channel)
    await b.group_discard("room.2", channel)
    await a.group_send("room.2", {"type": "group"})
    await a.send(channel, {"type": "direct"})
    assert [m["type"] for m in await receive_n(b, channel, 1)] == ["direct"]


async def test_send_without_redis_raises_instead_of_hanging():
    """With Redis unreachable, send() fails with a connection error; it does not hang."""
    layer = make_layer(url="redis://127.0.0.1:1/0")
    with pytest.raises(redis.exceptions.ConnectionError):
        await asyncio.wait_for(layer.send("x.y", {"type": "t"}), 30)
    await layer.flush()


async def test_subscriptions_come_back_after_redis_restarts(private_redis):
    """When Redis restarts, the reader reconnects and subscribes again by itself."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a, b = make_layer(private_redis.url, prefix), make_layer(private_redis.url, prefix)
    try:
        channel = await b.new_channel()
        await a.send(channel, {"type": "before"})
        assert (await receive_n(b, channel, 1))[0]["type"] == "before"
        private_redis.stop()
        private_redis.start()
        # One receive throughout: cancelling a receive means leaving the channel.
        receiving = asyncio.ensure_future(b.receive(channel))
        deadline = asyncio.get_running_loop().time() + 15
        while not receiving.done():
            # Sends made before the reader has subscribed again are lost; retry.
            with contextlib.suppress(redis.exceptions.ConnectionError):
                await a.send(channel, {"type": "after"})
            await asyncio.wait({receiving}, timeout=0.3)
            assert asyncio.get_running_loop().time() < deadline, "no message after the restart"
        assert receiving.result()["type"] == "after"
    finally:
        await a.flush()
        await b.flush()


async def test_flush_makes_the_layer_like_new(workers):
    """After flush() the layer forgets its channels and works again from scratch."""
    a, b = workers
    first = await b.new_channel()
    await b.flush()
    assert b.local_channels() == []
    second = await b.new_channel()
    await a.send(second, {"type": "again"})
    assert (await receive_n(b, second, 1))[0]["type"] == "again"
    assert first != second


async def queue_n(queue: asyncio.Queue, n: int, timeout: float = 10) -> list[dict]:
    async def collect():
        return [await queue.get() for _ in range(n)]

    return await asyncio.wait_for(collect(), timeout)


async def test_channel_into_a_queue_gets_its_own_and_its_groups_messages_in_order(workers):
    """new_channel_into(): direct sends and group sends land decoded in the queue, in order."""
    a, b = workers
    inbox: asyncio.Queue = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.receive", "text": "already there"})
    channel = await b.new_channel_into(inbox)
    await b.group_add("room.3", channel)
    for i in range(100):
        if i % 10 == 0:
            await a.group_send("room.3", {"type": "group", "n": i})
        else:
            await a.send(channel, {"type": "direct", "n": i, "text": "x" * 5000})
    received = await queue_n(inbox, 101)
    assert received[0] == {"type": "websocket.receive", "text": "already there"}
    assert [(m["type"], m["n"]) for m in received[1:]] == [
        ("group" if i % 10 == 0 else "direct", i) for i in range(100)
    ]
    assert received[1 + 7]["text"] == "x" * 5000
    assert await layer_subscribers(b, channel, expect=1) == 1


async def test_deleted_channel_delivers_nothing_more_and_is_unsubscribed(workers):
    """delete_channel(): no more deliveries, and Redis no longer holds the subscription."""
    a, b = workers
    inbox: asyncio.Queue = asyncio.Queue()
    channel = await b.new_channel_into(inbox)
    await a.send(channel, {"type": "before"})
    assert [m["type"] for m in await queue_n(inbox, 1)] == ["before"]
    await b.delete_channel(channel)
    await b.delete_channel(channel)  # twice is harmless
    await a.send(channel, {"type": "after"})
    await asyncio.sleep(0.3)
    assert inbox.empty()
    assert channel not in b.local_channels()
    assert await layer_subscribers(b, channel, expect=0) == 0


async def test_a_message_that_does_not_decode_is_dropped_without_stalling_the_reader(
    workers, caplog
):
    """Garbage published to a channel is logged and dropped; the next message arrives at once."""
    a, b = workers
    inbox: asyncio.Queue = asyncio.Queue()
    channel = await b.new_channel_into(inbox)
    await a._loop_layer().publish(a.redis_channel(channel), b"\xc1 not msgpack")
    await a.send(channel, {"type": "fine"})
    started = asyncio.get_running_loop().time()
    assert [m["type"] for m in await queue_n(inbox, 1)] == ["fine"]
    assert asyncio.get_running_loop().time() - started < 0.5
    assert "did not decode" in caplog.text
