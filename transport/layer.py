"""The project's channel layers: Redis pub/sub for several workers, in-memory for one process.

Both speak Channels' layer API (`send`, `receive`, `new_channel`, the `groups`
and `flush` extensions) and add what the fast dispatch uses
(transport/consumer.py): `new_channel_into(queue)`, a channel whose messages
are put, decoded, straight into a queue the consumer already reads (the
socket's Inbox), and `delete_channel(channel)` to end one. Neither touches a
dependency's private names: the Redis layer is built on redis-py's public
client (`Redis`, `ConnectionPool.get_available_connection()`,
`Connection.connect()` / `send_command()` / `send_packed_command()` /
`read_response()`) and msgpack,
the in-memory one on Channels' `BaseChannelLayer`. tests/transport/test_layer_conformance.py
holds both to the same contract, modeled on Channels' and channels_redis' own
layer tests.

`RedisPubSubLayer` (CHANNEL_LAYER=pubsub, the product's) is channels_redis'
`RedisPubSubChannelLayer` done again for this traffic:

- Sending: a send joins an outbox that one flusher writes as one batch of
  PUBLISHes on its own connection (one write, then the replies read in order)
  and resolves each sender when its reply is in. Under light load a batch is
  one message; under load the batches grow by themselves. Order is kept: one
  flusher, batches in queue order. channels_redis instead takes a lock and
  awaits one PUBLISH round trip per send, so a worker's sends queue behind
  each other. (`batch=False` does that, for an A/B run:
  CHANNEL_LAYER_BATCH=false.) Buys the throughput: without it the ramp failed
  at its first step, 2,000 msgs/s, in 3 of 3 repetitions (with it:
  2,000-4,000), and at a fixed 2,000 msgs/s p50 was 68 ms instead of 1.8 ms;
  measured 2026-12-01 with

      python -m bench --quick --reps 4 --workloads forward,join --duration 4
          --rates 1000,2000,3000 --variant off:CHANNEL_LAYER_BATCH=false

- Receiving: one subscription connection per event loop, read by one task
  with `read_response()` and nothing around it (channels_redis calls
  `PubSub.get_message(timeout=0.1)` per message: a timeout context, a retry
  wrapper and health-check bookkeeping each time).
- Subscribing waits for Redis' confirmation, so `group_add()` returning means
  the group's next message reaches us (a join subscribes before it commits).
- Redis restarting: the reader reconnects by itself (0.1 s, backing off to
  1 s) and subscribes everything again; messages published while it was
  away are lost, as pub/sub loses them for any absent subscriber.
- Silence is not a failure: the subscription connection has no read timeout
  (redis-py's default `socket_timeout` is 5 s and its `read_response()`
  drops the connection when it fires, so a quiet worker would resubscribe
  every 5 s and lose what was published meanwhile). Instead a heartbeat
  PINGs it every `heartbeat` seconds (CHANNEL_LAYER_HEARTBEAT, 10); a PING
  still unanswered at the next beat means Redis is gone, stopped or the TCP
  connection half-open: the connection is dropped and the reader reconnects
  as after a restart. So a dead subscription is noticed within 2 x
  `heartbeat` s, and a new connection's handshake is given `heartbeat` s too.

Against channels_redis' pub/sub layer with the same speed-ups (the layer
this one replaced, a subclass reaching into channels_redis' and redis-py's
private names), the same runs found no difference: that layer used 2 % more
server CPU per forwarded message (higher in 21 of 36 paired steps, i.e.
noise), p99 x0.88, join p50 17.9-19.0 ms against 18.9-21.4 ms here (the
subscription confirmations cost a round trip each). So the public-API layer
was kept (docs/architecture.md, "Transport").

What pub/sub means for a channel layer's semantics: a message is delivered to
whoever is subscribed when it is published and to nobody else (no buffering
for a channel nobody listens to, hence no expiry and no capacity); a
channel's messages wait in its local queue, in order, until `receive()`
takes them; cancelling a `receive()` ends the channel (unsubscribes), as in
channels_redis, since Channels has no `delete_channel()` of its own.

Why one module of over 500 lines: the two layers (Redis pub/sub, and the
in-memory one of a single process) keep one contract, and the conformance
tests (tests/transport/test_layer_conformance.py) run both against it; the
Redis one is a single per-loop reader, writer and subscription set that only
works together. Splitting them into transport/layers/ would move dotted paths
that settings, the benchmark and other tests name, for no reader's gain.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import secrets
import time
import types
import uuid
from collections import deque
from typing import Any

import msgpack
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra import metrics

logger = logging.getLogger(__name__)

_MESSAGE = b"message"
_SUBSCRIBE = b"subscribe"
# PING's reply on a connection in pub/sub mode (RESP2: [b"pong", b""]), and on
# one subscribed to nothing (every socket of the worker gone: +PONG).
_PONG = b"pong"
_PONG_UNSUBSCRIBED = b"PONG"


def _pack(message: dict[str, Any]) -> bytes:
    if not isinstance(message, dict):
        raise TypeError("a channel-layer message is a dict")
    return msgpack.packb(message, use_bin_type=True)


def _unpack(data: bytes) -> dict[str, Any]:
    return msgpack.unpackb(data, raw=False)


class _Sink:
    """Stands where a channel's queue would: decodes each message into the consumer's queue.

    A message that does not decode is logged and dropped, so it cannot stall
    the reader that every socket of the worker shares.
    """

    __slots__ = ("channel", "queue")

    def __init__(self, channel: str, queue: asyncio.Queue) -> None:
        self.channel = channel
        self.queue = queue

    def put_nowait(self, data: bytes) -> None:
        try:
            message = _unpack(data)
        except Exception:
            logger.exception(
                "channel layer: dropped a message for %s that did not decode", self.channel
            )
            return
        self.queue.put_nowait(message)


class RedisPubSubLayer(BaseChannelLayer):
    """Channels' layer API over Redis pub/sub; one subscription connection per event loop."""

    extensions = ["groups", "flush"]

    def __init__(
        self,
        hosts: list[str] | None = None,
        prefix: str = "asgi",
        batch: bool = True,
        heartbeat: float = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        hosts = hosts or ["redis://127.0.0.1:6379/0"]
        if len(hosts) != 1 or not isinstance(hosts[0], str):
            raise ValueError("RedisPubSubLayer takes exactly one Redis URL in `hosts`")
        if not heartbeat > 0:
            raise ValueError("RedisPubSubLayer's `heartbeat` is a number of seconds above 0")
        self.url = hosts[0]
        self.prefix = prefix
        self.batch = batch
        self.heartbeat = heartbeat
        self._loops: dict[asyncio.AbstractEventLoop, _LoopLayer] = {}

    # --- Names ---------------------------------------------------------------------

    def redis_channel(self, channel: str) -> bytes:
        """The Redis pub/sub channel that carries `channel`'s messages."""
        return f"{self.prefix}:c:{channel}".encode()

    def redis_group(self, group: str) -> bytes:
        """The Redis pub/sub channel that carries group `group`'s messages."""
        return f"{self.prefix}:g:{group}".encode()

    # --- Channel layer API -------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Publish `message` to `channel` (whoever subscribes to it, in any process)."""
        self.require_valid_channel_name(channel)
        await self._loop_layer().publish(self.redis_channel(channel), _pack(message))

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Publish `message` to every member of `group`, in every process."""
        self.require_valid_group_name(group)
        await self._loop_layer().publish(self.redis_group(group), _pack(message))

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A new channel of this process, subscribed; read it with `receive()`."""
        channel = f"{prefix}{uuid.uuid4().hex}"
        await self._loop_layer().add_channel(channel, self.redis_channel(channel), asyncio.Queue())
        return channel

    async def new_channel_into(self, queue: asyncio.Queue, prefix: str = "specific.") -> str:
        """A new channel whose messages are put, decoded, into `queue` (end: delete_channel())."""
        channel = f"{prefix}{uuid.uuid4().hex}"
        sink = _Sink(channel, queue)
        await self._loop_layer().add_channel(channel, self.redis_channel(channel), sink)
        return channel

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message of `channel` (subscribing first if this process has not)."""
        layer = self._loop_layer()
        queue = layer.channels.get(channel)
        if queue is None:
            self.require_valid_channel_name(channel)
            queue = asyncio.Queue()
            await layer.add_channel(channel, self.redis_channel(channel), queue)
        elif type(queue) is _Sink:
            raise RuntimeError(f"{channel} delivers into a queue; it has nothing to receive()")
        try:
            data = await queue.get()
        except (asyncio.CancelledError, TimeoutError):
            # A receive cancelled means the channel is done with (Channels has no
            # delete_channel()): unsubscribe, as channels_redis does.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.delete_channel(channel))
            raise
        return _unpack(data)

    async def delete_channel(self, channel: str) -> None:
        """Stop delivering `channel` and unsubscribe it; harmless when it is gone already."""
        layer = self._loops.get(asyncio.get_running_loop())
        if layer is not None:
            await layer.remove_channel(channel, self.redis_channel(channel))

    async def group_add(self, group: str, channel: str) -> None:
        """Add this process's `channel` to `group`; returns once Redis has the subscription."""
        self.require_valid_group_name(group)
        layer = self._loop_layer()
        if channel not in layer.channels:
            raise RuntimeError("group_add() takes a channel of this process (new_channel())")
        await layer.add_member(self.redis_group(group), channel)

    async def group_discard(self, group: str, channel: str) -> None:
        """Take `channel` out of `group` (nothing happens if it is not in it)."""
        self.require_valid_group_name(group)
        layer = self._loops.get(asyncio.get_running_loop())
        if layer is not None:
            await layer.discard_member(self.redis_group(group), channel)

    def local_channels(self) -> list[str]:
        """The channels this event loop has (new_channel, new_channel_into, receive)."""
        layer = self._loops.get(asyncio.get_running_loop())
        return list(layer.channels) if layer is not None else []

    async def flush(self) -> None:
        """Forget every channel and group of this event loop and close its connections."""
        layer = self._loops.pop(asyncio.get_running_loop(), None)
        if layer is not None:
            await layer.close()

    async def close(self) -> None:
        await self.flush()

    # --- One layer per event loop --------------------------------------------------------

    def _loop_layer(self) -> _LoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._loops.get(loop)
        if layer is None:
            for stale in [other for other in self._loops if other.is_closed()]:
                del self._loops[stale]
            layer = self._loops[loop] = _LoopLayer(self.url, self.batch, self.heartbeat)
            _close_with_loop(self, loop)
        return layer


def _close_with_loop(owner: RedisPubSubLayer, loop: asyncio.AbstractEventLoop) -> None:
    """Close `loop`'s connections before the loop closes (async_to_sync makes a loop per call)."""
    original = loop.close

    def close(self: asyncio.AbstractEventLoop) -> None:
        layer = owner._loops.pop(self, None)
        if layer is not None and not self.is_running():
            with contextlib.suppress(Exception):
                self.run_until_complete(layer.close())
        self.close = original
        original()

    loop.close = types.MethodType(close, loop)


class _LoopLayer:
    """The connections, subscriptions and local channels of one event loop."""

    def __init__(self, url: str, batch: bool, heartbeat: float) -> None:
        # RESP2: pub/sub messages are plain replies that read_response() returns
        # (RESP3 makes them push messages, handed to a callback instead).
        # Publishing: redis-py's defaults (a reply within 5 s, or the command fails).
        self.pool = ConnectionPool.from_url(url, protocol=2)
        self.redis = Redis(connection_pool=self.pool)
        # The subscription connection is silent whenever no message flows for
        # this worker, so no read timeout: the heartbeat judges it instead.
        # Connecting is bounded by `heartbeat` (_connected()).
        self.sub_pool = ConnectionPool.from_url(
            url, protocol=2, socket_timeout=None, socket_connect_timeout=heartbeat
        )
        self.heartbeat = heartbeat
        self.batch = batch
        # Channel name -> where its messages go (an asyncio.Queue of raw bytes, or a _Sink).
        self.channels: dict[str, Any] = {}
        # Redis channel -> the same, for delivery.
        self.targets: dict[bytes, Any] = {}
        # Redis group channel -> the local channel names in the group.
        self.members: dict[bytes, set[str]] = {}
        # Redis channels subscribed (or being subscribed) on `self.sub`.
        self.subscribed: set[bytes] = set()
        # Per Redis channel, one future per SUBSCRIBE sent and not yet confirmed, in order.
        self.pending: dict[bytes, deque[asyncio.Future]] = {}
        self.sub: Any = None  # the subscription Connection, from sub_pool
        self.pub: Any = None  # the flusher's publishing Connection, from pool
        self.reader: asyncio.Task | None = None
        self.beat: asyncio.Task | None = None
        # `sub` connected and subscribed (what the heartbeat watches), and a
        # PING of the heartbeat sent on it and not answered yet.
        self.up = False
        self.pinged = False
        self.lock = asyncio.Lock()
        self.outbox: list[tuple[bytes, bytes, asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None
        self.send_lock = asyncio.Lock()
        self.closed = False

    # --- Publishing ------------------------------------------------------------------------

    async def publish(self, name: bytes, data: bytes) -> None:
        if not self.batch:
            # What channels_redis does: one PUBLISH round trip at a time.
            async with self.send_lock:
                await self.redis.publish(name, data)
            return
        done = asyncio.get_running_loop().create_future()
        self.outbox.append((name, data, done))
        if self.flusher is None:
            self.flusher = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self.outbox:
                batch, self.outbox = self.outbox, []
                metrics.observe_publish_batch(len(batch))
                try:
                    replies = await self._publish_batch(batch)
                except BaseException as exc:
                    failure = (
                        ConnectionError("channel layer closed")
                        if isinstance(exc, asyncio.CancelledError)
                        else exc
                    )
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(failure)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, _, done), reply in zip(batch, replies, strict=True):
                    if done.done():
                        continue  # the sender was cancelled; the message went anyway
                    if isinstance(reply, Exception):
                        done.set_exception(reply)
                    else:
                        done.set_result(None)
        finally:
            self.flusher = None
            # Cancelled with sends still queued (the layer is closing): fail them
            # rather than leave their senders waiting forever.
            pending, self.outbox = self.outbox, []
            for _, _, done in pending:
                if not done.done():
                    done.set_exception(ConnectionError("channel layer closed"))

    async def _publish_batch(self, batch: list[tuple[bytes, bytes, asyncio.Future]]) -> list[Any]:
        """PUBLISH each message of `batch`: one write, then the replies read in order.

        On a connection of the flusher's own (it sends one batch at a time),
        with the commands packed here: redis-py's pipeline spent ~100 µs of
        CPU on a batch of one, against ~45 µs for the same bytes written and
        read on a connection (2026-12-01, 5,000 PUBLISHes of 300 bytes, in
        process). A reply that is an error comes back as such. A connection
        that fails is dropped and the batch sent once more on a new one, as
        redis-py's pipeline retries (a Redis restart leaves the connection
        stale until it is used); failing again, the whole batch fails.
        """
        packed = b"".join(
            b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
            % (len(name), name, len(data), data)
            for name, data, _ in batch
        )
        retried = False
        while True:
            if self.pub is None:
                self.pub = self.pool.get_available_connection()
            conn = self.pub
            try:
                if not conn.is_connected:
                    await conn.connect()
                await conn.send_packed_command(packed, check_health=False)
                replies: list[Any] = []
                for _ in batch:
                    try:
                        replies.append(await conn.read_response())
                    except RedisResponseError as exc:
                        replies.append(exc)
                return replies
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await conn.disconnect(nowait=True)
                if retried:
                    raise
                retried = True
            except BaseException:
                # Cancelled midway: what the connection still holds is unknown.
                await conn.disconnect(nowait=True)
                raise

    # --- Channels and groups ------------------------------------------------------------------

    async def add_channel(self, channel: str, name: bytes, target: Any) -> None:
        self.channels[channel] = target
        self.targets[name] = target
        try:
            await self.subscribe(name)
        except BaseException:
            self.channels.pop(channel, None)
            self.targets.pop(name, None)
            raise

    async def remove_channel(self, channel: str, name: bytes) -> None:
        # Out of the tables first: nothing more is delivered even if the
        # unsubscribe below is cut short.
        if self.channels.pop(channel, None) is None:
            return
        self.targets.pop(name, None)
        for group, members in list(self.members.items()):
            if channel in members:
                await self.discard_member(group, channel)
        await self.unsubscribe(name)

    async def add_member(self, group: bytes, channel: str) -> None:
        members = self.members.setdefault(group, set())
        members.add(channel)
        try:
            await self.subscribe(group)
        except BaseException:
            await self.discard_member(group, channel)
            raise

    async def discard_member(self, group: bytes, channel: str) -> None:
        members = self.members.get(group)
        if members is None or channel not in members:
            return
        members.discard(channel)
        if not members:
            del self.members[group]
            await self.unsubscribe(group)

    # --- The subscription connection -------------------------------------------------------------

    async def subscribe(self, name: bytes) -> None:
        """Subscribe `name` once per loop; return when Redis has confirmed it."""
        async with self.lock:
            queue = self.pending.get(name)
            if name in self.subscribed:
                waiter = queue[-1] if queue else None
            else:
                conn = await self._connected()
                waiter = asyncio.get_running_loop().create_future()
                self.pending.setdefault(name, deque()).append(waiter)
                self.subscribed.add(name)
                try:
                    await conn.send_command("SUBSCRIBE", name)
                except BaseException:
                    self.subscribed.discard(name)
                    self._drop_waiter(name, waiter)
                    raise
        if waiter is not None:
            await asyncio.shield(waiter)

    async def unsubscribe(self, name: bytes) -> None:
        async with self.lock:
            if name not in self.subscribed or name in self.targets or name in self.members:
                return
            self.subscribed.discard(name)
            if self.sub is not None and self.sub.is_connected:
                with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
                    await self.sub.send_command("UNSUBSCRIBE", name)

    def _drop_waiter(self, name: bytes, waiter: asyncio.Future) -> None:
        queue = self.pending.get(name)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self.pending[name]

    async def _connected(self) -> Any:
        """The subscription connection, connected, with every subscription sent. Under the lock."""
        if self.closed:
            raise ConnectionError("channel layer closed")
        if self.sub is None:
            # Not get_connection(): that connects too, beyond the deadline below.
            self.sub = self.sub_pool.get_available_connection()
        if not self.sub.is_connected:
            try:
                # No socket timeout on this connection, so its handshake
                # (CLIENT SETINFO...) gets a deadline here: a stopped Redis
                # still accepts TCP connections and then answers nothing.
                async with asyncio.timeout(self.heartbeat):
                    await self.sub.connect()
            except TimeoutError:
                with contextlib.suppress(Exception):
                    await self.sub.disconnect(nowait=True)
                raise RedisTimeoutError(
                    f"Redis did not answer a new connection within {self.heartbeat} s"
                ) from None
            if self.subscribed:
                # After a reconnect: Redis forgot them all. Nobody waits on these.
                await self.sub.send_command("SUBSCRIBE", *self.subscribed)
            self.pinged = False
            self.up = True
        if self.reader is None or self.reader.done():
            self.reader = asyncio.ensure_future(self._read())
        if self.beat is None or self.beat.done():
            self.beat = asyncio.ensure_future(self._beat())
        return self.sub

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            conn = self.sub
            try:
                if not conn.is_connected:
                    async with self.lock:
                        await self._connected()
                    logger.warning("channel layer: subscriptions restored after losing Redis")
                backoff = 0.1
                while True:
                    response = await conn.read_response()
                    kind = response[0]
                    if kind == _MESSAGE:
                        self._deliver(response[1], response[2])
                    elif kind == _SUBSCRIBE:
                        queue = self.pending.get(response[1])
                        if queue:
                            waiter = queue.popleft()
                            if not queue:
                                del self.pending[response[1]]
                            if not waiter.done():
                                waiter.set_result(None)
                    elif kind == _PONG or response == _PONG_UNSUBSCRIBED:
                        self.pinged = False
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                # Redis went away: fail whoever waits for a confirmation, then
                # reconnect and subscribe everything again.
                await self._lost(conn, exc)
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)
            except Exception:
                logger.exception("channel layer: unexpected error in the reader")
                await asyncio.sleep(1)

    async def _lost(self, conn: Any, exc: BaseException) -> None:
        """The subscription connection is gone: fail the waiting subscribers, drop it, say so."""
        self.up = False
        self._fail_pending(exc)
        if conn.is_connected:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
        logger.warning("channel layer: lost the subscription connection; reconnecting")

    async def _beat(self) -> None:
        """PING the subscription connection every `heartbeat` s; no answer by the next beat: lost.

        Redis answers a PING at once, also in pub/sub mode, so a PING still
        unanswered a whole interval later means a dead, stopped or unreachable
        Redis, which a connection without a read timeout would otherwise wait
        on forever (TCP keepalive does not notice a stopped Redis: its kernel
        still answers). The reader, blocked in its read, is replaced: that
        works whatever state the socket is in.
        """
        while True:
            await asyncio.sleep(self.heartbeat)
            conn = self.sub
            if not self.up or self.closed:
                continue  # the reader is connecting again
            try:
                if self.pinged:
                    logger.warning(
                        "channel layer: Redis did not answer a PING within %g s", self.heartbeat
                    )
                    reader = self.reader
                    if reader is not None:
                        reader.cancel()
                        # wait(), not await: this task's own cancel (close()) must get through.
                        await asyncio.wait({reader})
                    await self._lost(conn, RedisTimeoutError("Redis did not answer a PING"))
                    # A subscribe meanwhile may have started one already (_connected()).
                    if not self.closed and (self.reader is None or self.reader.done()):
                        self.reader = asyncio.ensure_future(self._read())
                    continue
                self.pinged = True
                # Bounded too: with Redis stopped even a write can block.
                async with asyncio.timeout(self.heartbeat):
                    await conn.send_command("PING")
            except (RedisConnectionError, RedisTimeoutError, OSError):
                # The send failed: redis-py dropped the connection, the reader
                # sees it; or timed out: still `pinged`, lost at the next beat.
                pass
            except Exception:
                logger.exception("channel layer: unexpected error in the heartbeat")

    def _deliver(self, name: bytes, data: bytes) -> None:
        target = self.targets.get(name)
        if target is not None:
            target.put_nowait(data)
            return
        channels = self.channels
        for channel in self.members.get(name, ()):
            target = channels.get(channel)
            if target is not None:
                target.put_nowait(data)

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self.pending = self.pending, {}
        for queue in pending.values():
            for waiter in queue:
                if not waiter.done():
                    waiter.set_exception(RedisConnectionError(f"lost Redis subscribing: {exc}"))

    async def close(self) -> None:
        self.closed = True
        self._fail_pending(ConnectionError("channel layer closed"))
        for task in (self.beat, self.reader, self.flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self.channels, self.targets, self.members, self.subscribed = {}, {}, {}, set()
        for conn in (self.sub, self.pub):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.disconnect()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        for pool in (self.pool, self.sub_pool):
            with contextlib.suppress(Exception):
                await pool.disconnect()


class InMemoryLayer(BaseChannelLayer):
    """Channels' layer API in one process (`make run`, the test suite), with `new_channel_into`.

    Semantics as Channels' own InMemoryChannelLayer: messages are copied when
    sent; a channel read with `receive()` holds at most `capacity` messages
    (ChannelFull past that) for `expiry` seconds; group memberships last
    `group_expiry` seconds. A channel made with `new_channel_into()` puts each
    message straight into its queue (no capacity, no expiry: that queue is a
    live socket's, read as fast as the socket is served).
    """

    extensions = ["groups", "flush"]

    def __init__(
        self,
        expiry: int = 60,
        group_expiry: int = 86400,
        capacity: int = 100,
        channel_capacity: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.group_expiry = group_expiry
        # Channel -> its deque of (expires at, message), or the queue it delivers into.
        self.channels: dict[str, Any] = {}
        # Channel -> (the Event its receive() waits on, that receive's loop).
        self.waiters: dict[str, tuple[asyncio.Event, asyncio.AbstractEventLoop]] = {}
        # Channel -> (the queue it delivers into, the loop reading that queue).
        self.sinks: dict[str, tuple[asyncio.Queue, asyncio.AbstractEventLoop]] = {}
        # Group -> {channel: joined at}.
        self.groups: dict[str, dict[str, float]] = {}

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        if not isinstance(message, dict):
            raise TypeError("a channel-layer message is a dict")
        self.require_valid_channel_name(channel)
        self._deliver(channel, message)

    def _deliver(self, channel: str, message: dict[str, Any]) -> None:
        sink = self.sinks.get(channel)
        if sink is not None:
            queue, loop = sink
            _call_on(loop, queue.put_nowait, copy.deepcopy(message))
            return
        messages = self.channels.setdefault(channel, deque())
        self._expire(channel)
        if len(messages) >= self.get_capacity(channel):
            raise ChannelFull(channel)
        messages.append((time.monotonic() + self.expiry, copy.deepcopy(message)))
        waiter = self.waiters.get(channel)
        if waiter is not None:
            _call_on(waiter[1], waiter[0].set)

    def _expire(self, channel: str) -> None:
        messages = self.channels.get(channel)
        now = time.monotonic()
        while messages and messages[0][0] < now:
            messages.popleft()
            # As Channels' layer does: a channel that let a message expire leaves its groups.
            for members in self.groups.values():
                members.pop(channel, None)

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        if channel in self.sinks:
            raise RuntimeError(f"{channel} delivers into a queue; it has nothing to receive()")
        while True:
            self._expire(channel)
            messages = self.channels.get(channel)
            if messages:
                _, message = messages.popleft()
                return message
            entry = self.waiters.get(channel)
            if entry is None:
                entry = self.waiters[channel] = (asyncio.Event(), asyncio.get_running_loop())
            entry[0].clear()
            try:
                await entry[0].wait()
            finally:
                if self.waiters.get(channel) is entry:
                    del self.waiters[channel]

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}inmemory!{secrets.token_hex(8)}"

    async def new_channel_into(self, queue: asyncio.Queue, prefix: str = "specific.") -> str:
        channel = await self.new_channel(prefix)
        self.sinks[channel] = (queue, asyncio.get_running_loop())
        return channel

    async def delete_channel(self, channel: str) -> None:
        self.sinks.pop(channel, None)
        self.channels.pop(channel, None)
        for members in self.groups.values():
            members.pop(channel, None)

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self.groups.setdefault(group, {})[channel] = time.monotonic()

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        members = self.groups.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self.groups[group]

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        if not isinstance(message, dict):
            raise TypeError("a channel-layer message is a dict")
        self.require_valid_group_name(group)
        members = self.groups.get(group)
        if not members:
            return
        cutoff = time.monotonic() - self.group_expiry
        for channel, joined in list(members.items()):
            if joined < cutoff:
                del members[channel]
                continue
            with contextlib.suppress(ChannelFull):
                self._deliver(channel, message)

    async def flush(self) -> None:
        self.channels, self.sinks, self.groups = {}, {}, {}
        for event, loop in self.waiters.values():
            _call_on(loop, event.set)
        self.waiters = {}

    async def close(self) -> None:
        pass


def _call_on(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """Call `fn` on `loop`: now when that is the running loop, else through the loop's queue.

    A send from another thread's loop (async_to_sync in synchronous code) must
    not wake an asyncio object of this loop directly.
    """
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn(*args)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(fn, *args)
