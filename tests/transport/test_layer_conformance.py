"""Channel-layer conformance: transport/layer.py's two layers against Channels' layer contract.

Modeled on Channels' own layer tests (tests/test_inmemorychannel.py) and
channels_redis' (tests/test_pubsub.py): send/receive, channel and group names,
groups, flush, message encoding, several event loops; then what differs by
design: the in-memory layer's capacity and expiry, and pub/sub's delivery to
present subscribers only and its recovery from a Redis restart. Every test
runs on both layers unless it says which one it is about.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
import redis.asyncio
import redis.exceptions
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull

from tests.integration.conftest import REDIS_URL, layer_subscribers
from transport.inbox import Inbox
from transport.layer import InMemoryLayer, RedisPubSubLayer

MESSAGE = {"type": "test.message", "text": "Ahoy-hoy!"}


def redis_layer(url: str = REDIS_URL, prefix: str | None = None) -> RedisPubSubLayer:
    return RedisPubSubLayer(hosts=[url], prefix=prefix or f"conf-{uuid.uuid4().hex[:10]}")


@pytest.fixture(params=["in-memory", "redis"])
async def layer(request):
    """Each layer of transport/layer.py, fresh (the Redis one on a private prefix)."""
    made = InMemoryLayer() if request.param == "in-memory" else redis_layer()
    yield made
    await made.flush()


@pytest.fixture
async def pair(layer):
    """Two handles on one layer: for Redis two instances (two workers), in memory the same one."""
    if isinstance(layer, InMemoryLayer):
        yield layer, layer
        return
    other = redis_layer(prefix=layer.prefix)
    yield layer, other
    await other.flush()


async def within(awaitable, seconds: float = 5):
    return await asyncio.wait_for(awaitable, seconds)


async def nothing_arrives(layer, channel: str, seconds: float = 0.3) -> bool:
    """True when `channel` receives nothing for `seconds` (Redis: sent after a round trip)."""
    try:
        message = await asyncio.wait_for(layer.receive(channel), seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"{channel} received {message}")


# --- send / receive ---------------------------------------------------------------------------


async def test_send_receive(pair):
    """A message sent to a new channel is received there, equal to what was sent."""
    a, b = pair
    channel = await b.new_channel()
    await a.send(channel, MESSAGE)
    assert await within(b.receive(channel)) == MESSAGE


async def test_messages_arrive_in_send_order(pair):
    """90 sends started together (under the default capacity) arrive in the order made."""
    a, b = pair
    channel = await b.new_channel()
    await asyncio.gather(*(a.send(channel, {"type": "n", "n": i}) for i in range(90)))
    received = [await within(b.receive(channel)) for _ in range(90)]
    assert [m["n"] for m in received] == list(range(90))


async def test_receive_waits_for_the_message(pair):
    """A receive started before the send gets the message when it comes."""
    a, b = pair
    channel = await b.new_channel()
    waiting = asyncio.ensure_future(b.receive(channel))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await a.send(channel, MESSAGE)
    assert await within(waiting) == MESSAGE


async def test_channels_do_not_hear_each_other(pair):
    """A message reaches only the channel it was sent to."""
    a, b = pair
    first, second = await b.new_channel(), await b.new_channel()
    await a.send(first, {"type": "for.first"})
    await a.send(second, {"type": "for.second"})
    assert (await within(b.receive(second)))["type"] == "for.second"
    assert (await within(b.receive(first)))["type"] == "for.first"


# --- names ------------------------------------------------------------------------------------


async def test_new_channel_names_are_valid_unique_and_prefixed(layer):
    """new_channel() names start with the prefix asked for, pass Channels' checks, never repeat."""
    names = [await layer.new_channel("worker.") for _ in range(20)]
    assert len(set(names)) == 20
    for name in names:
        assert name.startswith("worker.")
        layer.require_valid_channel_name(name)
    assert (await layer.new_channel()).startswith("specific.")


@pytest.mark.parametrize("bad", ["with space", "", "é", "x" * 100, "a!b!c"])
async def test_invalid_channel_names_are_refused(layer, bad):
    """send() and group_add() refuse names outside Channels' channel-name rules (TypeError)."""
    with pytest.raises(TypeError):
        await layer.send(bad, MESSAGE)
    with pytest.raises((TypeError, RuntimeError)):
        await layer.group_add("room", bad)


@pytest.mark.parametrize("bad", ["with space", "a!b", "x" * 100, ""])
async def test_invalid_group_names_are_refused(layer, bad):
    """group_add(), group_discard() and group_send() refuse bad group names (TypeError)."""
    channel = await layer.new_channel()
    with pytest.raises(TypeError):
        await layer.group_add(bad, channel)
    with pytest.raises(TypeError):
        await layer.group_discard(bad, channel)
    with pytest.raises(TypeError):
        await layer.group_send(bad, MESSAGE)


# --- groups -----------------------------------------------------------------------------------


async def test_group_send_reaches_every_member_once(pair):
    """A group send reaches each member (on either handle) once, and no one else."""
    a, b = pair
    one, two, outsider = await a.new_channel(), await b.new_channel(), await b.new_channel()
    await a.group_add("room-1", one)
    await b.group_add("room-1", two)
    await b.group_add("room-1", two)  # twice is once
    await a.group_send("room-1", {"type": "hello", "text": "x" * 5000})
    assert (await within(a.receive(one)))["text"] == "x" * 5000
    assert (await within(b.receive(two)))["type"] == "hello"
    await a.send(two, {"type": "barrier"})
    assert (await within(b.receive(two)))["type"] == "barrier"
    assert await nothing_arrives(b, outsider)


async def test_group_discard_stops_the_groups_messages_only(pair):
    """After group_discard a channel hears no more of the group, but still its own messages."""
    a, b = pair
    stays, leaves = await b.new_channel(), await b.new_channel()
    await b.group_add("room-2", stays)
    await b.group_add("room-2", leaves)
    await b.group_discard("room-2", leaves)
    await b.group_discard("room-2", leaves)  # not a member: nothing happens
    await b.group_discard("never-joined", leaves)
    await a.group_send("room-2", {"type": "group"})
    await a.send(leaves, {"type": "direct"})
    assert (await within(b.receive(stays)))["type"] == "group"
    assert (await within(b.receive(leaves)))["type"] == "direct"


async def test_group_send_to_an_empty_group_is_fine(layer):
    """Sending to a group nobody is in does nothing and raises nothing."""
    await layer.group_send("nobody-here", MESSAGE)


async def test_group_add_returns_once_the_group_reaches_the_channel(pair):
    """Right after group_add() returns, a group send from elsewhere arrives (no retry), 30 times."""
    a, b = pair
    channel = await b.new_channel()
    for n in range(30):
        await b.group_add(f"fresh-{n}", channel)
        await a.group_send(f"fresh-{n}", {"type": "g", "n": n})
        assert (await within(b.receive(channel)))["n"] == n


# --- delivery into a queue --------------------------------------------------------------------


async def test_channel_into_a_queue_gets_its_own_and_its_groups_messages_in_order(pair):
    """new_channel_into(): direct and group sends land decoded in the queue, after its content."""
    a, b = pair
    inbox = Inbox()
    inbox.put_nowait({"type": "websocket.receive", "text": "already there"})
    channel = await b.new_channel_into(inbox)
    await b.group_add("room-3", channel)
    for i in range(60):
        if i % 10 == 0:
            await a.group_send("room-3", {"type": "group", "n": i})
        else:
            await a.send(channel, {"type": "direct", "n": i})
    received = [await within(inbox.get()) for _ in range(61)]
    assert received[0] == {"type": "websocket.receive", "text": "already there"}
    assert [(m["type"], m["n"]) for m in received[1:]] == [
        ("group" if i % 10 == 0 else "direct", i) for i in range(60)
    ]
    with pytest.raises(RuntimeError):
        await b.receive(channel)


async def test_deleted_channel_delivers_nothing_more(pair):
    """delete_channel(): nothing more arrives, from the channel or its groups; twice is harmless."""
    a, b = pair
    inbox = Inbox()
    channel = await b.new_channel_into(inbox)
    await b.group_add("room-4", channel)
    await b.delete_channel(channel)
    await b.delete_channel(channel)
    await a.send(channel, {"type": "after"})
    await a.group_send("room-4", {"type": "after"})
    barrier = await b.new_channel()
    await a.send(barrier, {"type": "barrier"})
    assert (await within(b.receive(barrier)))["type"] == "barrier"
    assert inbox.empty()
    assert channel not in (b.local_channels() if hasattr(b, "local_channels") else b.sinks)


# --- message encoding -------------------------------------------------------------------------


async def test_messages_keep_their_types(pair):
    """Nested dicts and lists, ints, floats, bools, None, bytes, non-ASCII text come back equal."""
    a, b = pair
    message = {
        "type": "test.types",
        "text": "grüß dich, 你好 🎥",
        "bytes": b"\x00\xff binary",
        "int": -(2**40),
        "float": 1.5,
        "flags": [True, False, None],
        "nested": {"list": [1, "two", {"three": 3.0}], "empty": {}},
    }
    channel = await b.new_channel()
    await a.send(channel, message)
    assert await within(b.receive(channel)) == message


async def test_a_message_is_a_copy(layer):
    """Changing a message after sending it changes nothing the receiver gets."""
    channel = await layer.new_channel()
    message = {"type": "test.copy", "list": [1]}
    await layer.send(channel, message)
    message["list"].append(2)
    assert (await within(layer.receive(channel)))["list"] == [1]


async def test_only_dicts_are_messages(layer):
    """A message that is not a dict is refused (TypeError)."""
    channel = await layer.new_channel()
    with pytest.raises(TypeError):
        await layer.send(channel, ["type", "x"])
    with pytest.raises(TypeError):
        await layer.group_send("room", "text")


# --- flush ------------------------------------------------------------------------------------


async def test_flush_makes_the_layer_like_new(pair):
    """After flush() channels and groups are forgotten, and the layer works again from scratch."""
    a, b = pair
    old = await b.new_channel()
    await b.group_add("room-5", old)
    await b.flush()
    new = await b.new_channel()
    await a.group_send("room-5", {"type": "to the forgotten group"})
    await a.send(new, {"type": "again"})
    assert (await within(b.receive(new)))["type"] == "again"
    assert new != old


# --- several event loops ----------------------------------------------------------------------


def run_in_thread(fn) -> None:
    """Run `fn` in a thread of its own (so async_to_sync makes a loop there) and wait for it."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


async def test_sends_from_another_event_loop_arrive(layer):
    """A send and a group send made on another thread's event loop (async_to_sync) arrive here."""
    inbox = Inbox()
    into = await layer.new_channel_into(inbox)
    plain = await layer.new_channel()
    await layer.group_add("room-6", into)
    waiting = asyncio.ensure_future(layer.receive(plain))
    await asyncio.sleep(0.05)

    def from_elsewhere() -> None:
        async_to_sync(layer.group_send)("room-6", {"type": "group"})
        async_to_sync(layer.send)(plain, {"type": "plain"})

    await asyncio.get_running_loop().run_in_executor(None, run_in_thread, from_elsewhere)
    assert (await within(inbox.get()))["type"] == "group"
    assert (await within(waiting))["type"] == "plain"


async def test_each_event_loop_has_its_own_channels(layer):
    """A channel made on one loop is unknown to another loop's receive; each loop works alone."""

    def elsewhere() -> None:
        async def roundtrip() -> None:
            channel = await layer.new_channel()
            await layer.send(channel, MESSAGE)
            assert await within(layer.receive(channel)) == MESSAGE
            await layer.flush()

        async_to_sync(roundtrip)()

    channel = await layer.new_channel()
    await asyncio.get_running_loop().run_in_executor(None, run_in_thread, elsewhere)
    await layer.send(channel, MESSAGE)
    assert await within(layer.receive(channel)) == MESSAGE


# --- what differs by design -------------------------------------------------------------------


async def test_in_memory_capacity_and_expiry():
    """In memory: a channel holds `capacity` messages (then ChannelFull), each for `expiry` s."""
    layer = InMemoryLayer(capacity=3, expiry=0.2)
    channel = await layer.new_channel()
    for n in range(3):
        await layer.send(channel, {"type": "n", "n": n})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "n", "n": 3})
    assert (await layer.receive(channel))["n"] == 0
    await asyncio.sleep(0.3)
    await layer.send(channel, {"type": "fresh"})
    assert (await within(layer.receive(channel)))["type"] == "fresh"


async def test_in_memory_group_send_skips_a_full_channel():
    """In memory: a group send to a full member still reaches the others."""
    layer = InMemoryLayer(capacity=1)
    full, fine = await layer.new_channel(), await layer.new_channel()
    await layer.send(full, {"type": "filler"})
    await layer.group_add("room", full)
    await layer.group_add("room", fine)
    await layer.group_send("room", {"type": "group"})
    assert (await layer.receive(fine))["type"] == "group"
    assert (await layer.receive(full))["type"] == "filler"


async def test_pubsub_delivers_to_present_subscribers_only():
    """Redis: a message to a channel nobody subscribes is gone; it waits for no subscriber."""
    a = redis_layer()
    b = redis_layer(prefix=a.prefix)
    try:
        name = "specific.nobody-yet"
        await a.send(name, {"type": "lost"})
        waiting = asyncio.ensure_future(b.receive(name))
        assert await layer_subscribers(b, name, expect=1) == 1
        await a.send(name, {"type": "kept"})
        assert (await within(waiting))["type"] == "kept"
    finally:
        await a.flush()
        await b.flush()


async def test_pubsub_cancelled_receive_ends_the_channel():
    """Redis: cancelling a receive() unsubscribes its channel (Channels has no delete_channel)."""
    layer = redis_layer()
    try:
        channel = await layer.new_channel()
        assert await layer_subscribers(layer, channel, expect=1) == 1
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await layer_subscribers(layer, channel, expect=0) == 0
        assert layer.local_channels() == []
    finally:
        await layer.flush()


async def test_pubsub_loop_closing_closes_its_connections():
    """Redis: the connections of a loop made by async_to_sync are closed when that loop closes."""
    layer = redis_layer()
    clients_before = await redis_clients()
    run_in_thread(lambda: async_to_sync(layer.send)("specific.nobody", MESSAGE))
    run_in_thread(lambda: async_to_sync(layer.new_channel)())
    assert layer._loops == {}
    assert await redis_clients() <= clients_before


async def redis_clients() -> int:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        return int((await client.info("clients"))["connected_clients"])
    finally:
        await client.aclose()


async def test_pubsub_send_without_redis_raises():
    """Redis unreachable: send() raises a connection error (after redis-py's retries), no hang."""
    layer = redis_layer("redis://127.0.0.1:1/0")
    with pytest.raises(redis.exceptions.ConnectionError):
        await within(layer.send("specific.x", MESSAGE), 30)
    with pytest.raises(redis.exceptions.ConnectionError):
        await within(layer.new_channel(), 30)
    await layer.flush()


@pytest.mark.parametrize("heartbeat", [0, -1])
def test_pubsub_refuses_a_heartbeat_that_is_no_interval(heartbeat):
    """`heartbeat` is seconds between PINGs: 0 or less is refused when the layer is built."""
    with pytest.raises(ValueError, match="`heartbeat` is a number of seconds above 0"):
        RedisPubSubLayer(hosts=[REDIS_URL], heartbeat=heartbeat)


@pytest.mark.slow
async def test_pubsub_survives_a_redis_restart(private_redis):
    """Redis restarts: the reader reconnects and subscribes channels and groups again by itself."""
    prefix = f"conf-{uuid.uuid4().hex[:10]}"
    a, b = redis_layer(private_redis.url, prefix), redis_layer(private_redis.url, prefix)
    try:
        inbox = Inbox()
        channel = await b.new_channel_into(inbox)
        await b.group_add("room-7", channel)
        await a.send(channel, {"type": "before"})
        assert (await within(inbox.get()))["type"] == "before"
        private_redis.stop()
        private_redis.start()
        deadline = asyncio.get_running_loop().time() + 15
        got: set[str] = set()
        while got != {"direct", "group"}:
            assert asyncio.get_running_loop().time() < deadline, f"after the restart: {got}"
            # Until the reader has subscribed again, sends are lost: try again.
            try:
                await a.send(channel, {"type": "direct"})
                await a.group_send("room-7", {"type": "group"})
            except redis.exceptions.ConnectionError:
                pass
            try:
                while True:
                    got.add((await asyncio.wait_for(inbox.get(), 0.3))["type"])
            except TimeoutError:
                pass
        # A channel made after the restart works too.
        fresh = await b.new_channel()
        await a.send(fresh, MESSAGE)
        assert await within(b.receive(fresh)) == MESSAGE
    finally:
        await a.flush()
        await b.flush()


# --- what the layer reports -------------------------------------------------------------------


async def test_redis_publishes_are_counted_in_batches():
    """Each pipeline the Redis layer writes is one observation of its size in the histogram."""
    from prometheus_client import REGISTRY

    def observed() -> tuple[float, float]:
        name = "videorooms_channel_layer_publish_batch_messages"
        return (
            REGISTRY.get_sample_value(f"{name}_count") or 0.0,
            REGISTRY.get_sample_value(f"{name}_sum") or 0.0,
        )

    layer = redis_layer()
    try:
        channel = await layer.new_channel()
        before = observed()
        # Sent together: they leave in one pipeline, or a few under load.
        await asyncio.gather(*(layer.send(channel, MESSAGE) for _ in range(5)))
        for _ in range(5):
            assert await within(layer.receive(channel)) == MESSAGE
        count, total = (a - b for a, b in zip(observed(), before, strict=True))
        assert total == 5
        assert 1 <= count <= 5
    finally:
        await layer.flush()
