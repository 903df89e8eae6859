"""The readiness probes of a worker's dependencies: a database query, a channel-layer round trip.

`/readyz` (config/health.py) runs them under its timeout; the warm-up
(config/warmup.py) runs the channel layer's once, so its connections are made
before the first socket needs them.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

from channels.layers import get_channel_layer
from django.db import close_old_connections, connection


def _query_database() -> None:
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            if cursor.fetchone() != (1,):
                raise RuntimeError("SELECT 1 returned something else")
    finally:
        connection.close()


# The probe's query runs on a thread of its own. On Django's thread for
# synchronous code (sync_to_async's default) a database that hangs would make
# every probe wait for the connection pool's 10 s timeout, past CHECK_TIMEOUT,
# and hold up every synchronous view meanwhile; an abandoned query here only
# keeps this one thread busy, and the next probe says "timeout" on time.
_probe_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-db")


async def check_database() -> None:
    """Run a trivial query on the default database."""
    await asyncio.get_running_loop().run_in_executor(_probe_thread, _query_database)


async def check_channel_layer() -> None:
    """Send a message to a fresh channel of this process and receive it back."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel()
    try:
        token = secrets.token_hex(8)
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await layer.receive(channel)
        if message.get("token") != token:
            raise RuntimeError("the channel layer returned another message")
    finally:
        await _forget_channel(layer, channel)


async def _forget_channel(layer, channel: str) -> None:
    # Without this every probe would leave a subscription behind. The project's
    # layers (transport/layer.py) have delete_channel(); Channels' API has none,
    # so other layers learn that a channel is gone when a receive() on it is
    # cancelled (channels_redis' pub/sub layer then unsubscribes).
    if hasattr(layer, "delete_channel"):
        await layer.delete_channel(channel)
        return
    waiter = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    waiter.cancel()
    with suppress(asyncio.CancelledError, Exception):
        await waiter
