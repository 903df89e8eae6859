"""channels_redis' pub/sub layer, with its two per-message costs batched away.

`channels_redis.pubsub.RedisPubSubChannelLayer` is the layer the product uses
(CHANNEL_LAYER=pubsub). Profiling it under load (docs/benchmarks.md, "Tuning
history") showed where a worker's time went:

- Sending: every `send()` takes the shard's lock and awaits its own PUBLISH
  round trip, so a worker's sends queue behind one another and each costs a
  socket write. Here a send joins an outbox; one flusher writes everything
  queued as one pipeline (one write, one read of all the replies) and resolves
  each sender when its reply is in. Under light load a batch is one message
  and costs what it did; under heavy load the batches grow on their own.
  Order is kept: one flusher, batches in the order they were queued.
- Receiving: the receive loop called `PubSub.get_message(timeout=0.1)` once
  per message: a timeout context, a retry wrapper and redis-py's telemetry
  hooks each time. Here the loop reads the subscription's connection
  directly and leaves redis-py's path for what needs it: subscription
  replies and reconnecting.

- Delivering: a message for a socket went into its channel's queue, from
  which a task of the consumer's took it and put it into the consumer's own
  inbox. `new_channel_into(queue)` makes a channel whose messages go straight
  into a queue the consumer already reads (the server's queue for the socket):
  one queue and one task wake-up less per message, and per socket one queue
  and one task less held in memory. `delete_channel()` ends it.

Everything else (channel and group bookkeeping, the serializer, flush, the
loop-per-layer handling) is channels_redis' own, so the semantics are its.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

_MESSAGE = b"message"


class BatchingShardConnection(RedisSingleShardConnection):
    def __init__(self, host: Any, channel_layer: RedisPubSubLoopLayer) -> None:
        super().__init__(host, channel_layer)
        self._outbox: list[tuple[str, bytes, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None

    async def publish(self, channel: str, message: bytes) -> None:
        done = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, message, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._outbox:
                batch, self._outbox = self._outbox, []
                try:
                    self._ensure_redis()
                    pipe = self._redis.pipeline(transaction=False)
                    for channel, message, _ in batch:
                        pipe.publish(channel, message)
                    replies = await pipe.execute(raise_on_error=False)
                except BaseException as exc:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(_as_exception(exc))
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
            self._flusher = None
            # Cancelled with sends still queued (the loop is closing): fail them
            # rather than leave their senders waiting forever.
            pending, self._outbox = self._outbox, []
            for _, _, done in pending:
                if not done.done():
                    done.set_exception(ConnectionError("channel layer closed"))

    async def flush(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await super().flush()

    async def _do_receiving(self) -> None:
        while True:
            conn = None
            try:
                pubsub = self._pubsub
                conn = pubsub.connection if pubsub is not None else None
                if conn is None or not pubsub.subscribed:
                    await asyncio.sleep(0.1)
                    continue
                if not conn.is_connected:
                    # redis-py's own path reconnects and subscribes again.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    self._receive_message(message)
                    continue
                response = await conn.read_response(
                    timeout=math.inf, disconnect_on_error=False, push_request=True
                )
                if type(response) is list and len(response) == 3 and response[0] == _MESSAGE:
                    self._deliver(response[1], response[2])
                else:
                    # Subscribe/unsubscribe confirmations keep redis-py's books.
                    self._receive_message(
                        await pubsub.handle_message(response, ignore_subscribe_messages=True)
                    )
            except (TimeoutError, asyncio.CancelledError, GeneratorExit):
                raise
            except RedisConnectionError:
                # Redis went away. Drop the socket so that the next pass takes
                # redis-py's path, which reconnects and subscribes again.
                logger.warning("channel layer: lost the subscription connection; reconnecting")
                if conn is not None:
                    await conn.disconnect()
                await asyncio.sleep(0.1)
            except BaseException:
                logger.exception("Unexpected exception in receive task")
                await asyncio.sleep(1)

    def _deliver(self, name: bytes, data: bytes) -> None:
        layer = self.channel_layer
        key = name.decode()
        queue = layer.channels.get(key)
        if queue is not None:
            queue.put_nowait(data)
            return
        for channel_name in layer.groups.get(key, ()):
            queue = layer.channels.get(channel_name)
            if queue is not None:
                queue.put_nowait(data)


class _Sink:
    """Stands where a channel's queue would: delivers into the consumer's own queue.

    The reader calls `put_nowait` with the raw message, as it would on a
    channel's queue; this decodes it there and then. A message that does not
    decode is logged and dropped, so it cannot stall the reader that every
    socket of the worker shares.
    """

    __slots__ = ("channel", "deserialize", "queue")

    def __init__(self, channel: str, queue: asyncio.Queue, deserialize: Any) -> None:
        self.channel = channel
        self.queue = queue
        self.deserialize = deserialize

    def put_nowait(self, data: bytes) -> None:
        try:
            message = self.deserialize(data)
        except Exception:
            logger.exception(
                "channel layer: dropped a message for %s that did not decode", self.channel
            )
            return
        self.queue.put_nowait(message)


def _as_exception(exc: BaseException) -> BaseException:
    if isinstance(exc, asyncio.CancelledError):
        return ConnectionError("channel layer closed")
    return exc


class BatchingLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [BatchingShardConnection(shard.host, self) for shard in self._shards]


class BatchingPubSubChannelLayer(RedisPubSubChannelLayer):
    """`RedisPubSubChannelLayer` whose sends are pipelined and receives read in bulk."""

    # The stock class reaches these through __getattr__, which builds a
    # functools.partial on every call; they are the per-message ones.
    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self._get_layer().send(channel, message)

    async def receive(self, channel: str) -> dict[str, Any]:
        return await self._get_layer().receive(channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self._get_layer().group_send(group, message)

    async def new_channel_into(self, queue: asyncio.Queue, prefix: str = "specific.") -> str:
        """A new channel whose messages are put, decoded, into `queue`.

        For a consumer that already waits on a queue of its own: it reads the
        channel's messages there, in arrival order, instead of calling
        `receive()`. Groups work as for any channel. End it with
        `delete_channel()`.
        """
        layer = self._get_layer()
        channel = await layer.new_channel(prefix)
        # Nobody knows the name yet, so nothing can have gone to the stock queue.
        layer.channels[channel] = _Sink(channel, queue, self.deserialize)
        return channel

    async def delete_channel(self, channel: str) -> None:
        """Stop delivering `channel` and unsubscribe it (what a cancelled receive() does)."""
        layer = self._get_layer()
        # Out of the table first: nothing more is delivered even if the
        # unsubscribe below is cut short.
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)

    def _get_layer(self) -> BatchingLoopLayer:
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = BatchingLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer
