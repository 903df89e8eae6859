"""transport/layer.py on the real Redis: two layer instances stand for two workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
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
    real_publish = connections._publish_batch

    async def counting_publish(batch):
        batches.append(len(batch))
        return await real_publish(batch)

    monkeypatch.setattr(connections, "_publish_batch", counting_publish)
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


async def test_the_first_send_after_redis_restarts_goes_out_on_a_new_connection(private_redis):
    """The publishing connection is stale after a restart: the batch is sent again, once."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a = make_layer(private_redis.url, prefix)
    try:
        await a.send(f"{prefix}.specific.x!y", {"type": "before"})  # connects
        before = a._loop_layer().pub
        private_redis.stop()
        private_redis.start()
        await a.send(f"{prefix}.specific.x!y", {"type": "after"})
        assert a._loop_layer().pub is before and before.is_connected  # reconnected
        private_redis.stop()
        with pytest.raises(redis.exceptions.ConnectionError):
            await a.send(f"{prefix}.specific.x!y", {"type": "while down"})
    finally:
        await a.flush()


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


def pubsub_client_ids(url: str) -> list[int]:
    """The ids of the connections in pub/sub mode at `url` (CLIENT LIST TYPE pubsub)."""
    client = redis.Redis.from_url(url)
    try:
        return sorted(int(entry["id"]) for entry in client.client_list(_type="pubsub"))
    finally:
        client.close()


LOST = "channel layer: lost the subscription connection; reconnecting"


async def test_a_silent_subscription_keeps_its_connection(private_redis, caplog):
    """Over 5 s without traffic the subscription stays on one connection, and the next send arrives.

    redis-py 8.1 gives connections a 5 s socket timeout; a reader bound by it
    dropped the silent connection every 5 s and lost what was published while
    it resubscribed.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a, b = make_layer(private_redis.url, prefix), make_layer(private_redis.url, prefix)
    try:
        inbox: asyncio.Queue = asyncio.Queue()
        channel = await b.new_channel_into(inbox)
        await b.group_add("room.9", channel)
        [before] = pubsub_client_ids(private_redis.url)
        await asyncio.sleep(6)
        assert pubsub_client_ids(private_redis.url) == [before]
        await a.send(channel, {"type": "direct", "n": 1})
        await a.group_send("room.9", {"type": "group", "n": 2})
        assert await queue_n(inbox, 2, timeout=2) == [
            {"type": "direct", "n": 1},
            {"type": "group", "n": 2},
        ]
        assert LOST not in caplog.text
    finally:
        await a.flush()
        await b.flush()


async def wait_for_log(caplog, text: str, *, within: float) -> float:
    """Seconds until a log record containing `text` is there; fails after `within` s."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not any(text in record.getMessage() for record in caplog.records):
        assert loop.time() - started < within, f"no {text!r} within {within} s:\n{caplog.text}"
        await asyncio.sleep(0.02)
    return loop.time() - started


async def test_the_heartbeat_notices_a_stopped_redis_and_recovers(private_redis, caplog):
    """Redis SIGSTOPped: the loss is logged within 2 heartbeats; SIGCONT: subscriptions return."""
    caplog.set_level(logging.WARNING, logger="transport.layer")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a = make_layer(private_redis.url, prefix)
    b = RedisPubSubLayer(hosts=[private_redis.url], prefix=prefix, heartbeat=0.5)
    try:
        inbox: asyncio.Queue = asyncio.Queue()
        channel = await b.new_channel_into(inbox)
        await b.group_add("room.8", channel)
        await a.send(channel, {"type": "before"})
        assert await queue_n(inbox, 1) == [{"type": "before"}]
        # Answered PINGs are no loss: three beats on one connection.
        [connection] = pubsub_client_ids(private_redis.url)
        await asyncio.sleep(1.6)
        assert pubsub_client_ids(private_redis.url) == [connection]
        assert caplog.records == []
        private_redis.proc.send_signal(signal.SIGSTOP)
        try:
            # A PING goes out within 0.5 s; unanswered at the beat after: lost.
            elapsed = await wait_for_log(
                caplog, "Redis did not answer a PING within 0.5 s", within=1.5
            )
            assert elapsed < 1.5
            await wait_for_log(caplog, LOST, within=0.5)
            # Still stopped: a reconnect's handshake gets 0.5 s, then it is tried again.
            await asyncio.sleep(1.5)
            messages = [record.getMessage() for record in caplog.records]
            assert messages.count(LOST) >= 2, messages
            assert "channel layer: subscriptions restored after losing Redis" not in messages
        finally:
            private_redis.proc.send_signal(signal.SIGCONT)
        await wait_for_log(caplog, "subscriptions restored after losing Redis", within=5)
        # Barrier: Redis holds the channel's subscription again (and the group's).
        assert await layer_subscribers(b, channel, expect=1) == 1
        await a.send(channel, {"type": "direct", "n": 1})
        await a.group_send("room.8", {"type": "group", "n": 2})
        assert await queue_n(inbox, 2, timeout=2) == [
            {"type": "direct", "n": 1},
            {"type": "group", "n": 2},
        ]
    finally:
        await a.flush()
        await b.flush()


async def test_the_heartbeat_keeps_a_connection_subscribed_to_nothing(private_redis, caplog):
    """With every channel gone (PING then answers +PONG) the heartbeat drops nothing."""
    caplog.set_level(logging.WARNING, logger="transport.layer")
    layer = RedisPubSubLayer(hosts=[private_redis.url], prefix="t-idle", heartbeat=0.3)
    try:
        inbox: asyncio.Queue = asyncio.Queue()
        await layer.delete_channel(await layer.new_channel_into(inbox))
        await asyncio.sleep(1.2)
        assert caplog.records == []
        channel = await layer.new_channel_into(inbox)
        await layer.send(channel, {"type": "again"})
        assert await queue_n(inbox, 1, timeout=2) == [{"type": "again"}]
    finally:
        await layer.flush()
