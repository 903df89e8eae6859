"""Warm a worker up before `/readyz` calls it ready: its first joins then cost what the others do.

A fresh worker's first joins used to pay for what nothing had needed yet:
the database threads and their pooled connections, the Redis connections
(and the scripts each registry loads on first use), the channel layer's
subscription connection, the worker's revocation listener, and the first
run through the ORM, the session store, the signer and the encoder. The
launcher (config/serve.py) arms this module and starts `warm_up()` once
the loop runs; `/readyz` answers 503 with `warm-up` failing until it is
done. It goes through the real code (a join of a room that does not exist,
a session that does not exist) rather than copies of its queries, so it
stays what a first join needs as that changes.

Nothing here is required for correctness: in processes that do not arm it
(the tests' in-process clients, `manage.py`), `/readyz` does not wait for it.
When a step fails (the database or Redis is not up yet) the whole warm-up is
tried again a second later; `/readyz` names the failing dependency meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from types import SimpleNamespace

logger = logging.getLogger(__name__)

# Redis connections opened up front: a burst of joins uses several at once.
REDIS_CONNECTIONS = 8
RETRY_SECONDS = 1.0


class _State:
    armed = False
    done = False
    task: asyncio.Task | None = None
    took: float | None = None


state = _State()


def arm() -> None:
    """Make `/readyz` wait for the warm-up (the launcher calls this; tests may)."""
    state.armed = True
    state.done = False


def pending() -> bool:
    """True while an armed warm-up has not finished."""
    return state.armed and not state.done


def start() -> asyncio.Task:
    """Start the warm-up on the running loop (once); it retries until it succeeds."""
    if state.task is None:
        state.task = asyncio.ensure_future(_until_warm())
    return state.task


async def _until_warm() -> None:
    started = time.monotonic()
    while True:
        try:
            await warm_up()
        except Exception as exc:
            logger.warning("warm-up failed (%r); trying again", exc)
            await asyncio.sleep(RETRY_SECONDS)
            continue
        state.took = time.monotonic() - started
        state.done = True
        logger.info("warm-up done in %.0f ms", state.took * 1000)
        return


async def warm_up() -> None:
    """Everything a first join touches, once: database, Redis, channel layer, worker, codecs."""
    await asyncio.gather(_database(), _redis(), _channel_layer(), _worker())
    _codecs()


# --- the parts ----------------------------------------------------------------


def _database_thread(barrier: threading.Barrier | None) -> None:
    """On one database thread: its pooled connection, the handshake's and a join's reads."""
    from django.contrib.auth.models import AnonymousUser

    from accounts.middleware import user_for_session
    from rooms import errors, services

    try:
        # The session store (cache, then database) and Django's get_user().
        user_for_session("warm-up-no-such-session")
        # The join's locking read and the closed-room check after it, for a
        # number no room can have (the room_number_format constraint).
        services.room_join(number="000000000", user=AnonymousUser(), channel_name="warm-up!")
    except errors.RoomNotFound:
        pass
    except BaseException:
        if barrier is not None:
            barrier.abort()  # the others stop waiting: the warm-up is tried again
        raise
    if barrier is not None:
        # Every thread holds its connection at once, so the pool opens one per thread.
        barrier.wait(timeout=10)


async def _database() -> None:
    from infra.db import THREADS, db_call

    barrier = threading.Barrier(THREADS) if THREADS > 1 else None
    call = db_call(_database_thread)
    await asyncio.gather(*(call(barrier) for _ in range(THREADS)))


async def _redis() -> None:
    from django.conf import settings

    from infra import counters
    from infra.redis import get_redis
    from signaling.connections import get_connections
    from signaling.presence import get_presence

    client = get_redis()
    if client is not None:
        await asyncio.gather(*(client.ping() for _ in range(REDIS_CONNECTIONS)))
    # The scripts a join runs (loaded into Redis on first use) and their registries.
    registry = get_connections()
    await registry.admit(user_id=0, channel="warm-up!")
    await registry.release(user_id=0, channel="warm-up!")
    key = f"{settings.CHANNEL_LAYER_PREFIX}:warm-up:join-attempts"
    if await counters.reserve([(key, 1)], window=1):
        await counters.release([key])
    presence = get_presence()
    await presence.take("warm-up", seconds=1)
    await presence.remove("warm-up")


async def _channel_layer() -> None:
    from channels.layers import get_channel_layer

    from infra.probes import check_channel_layer

    await check_channel_layer()
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("warm-up", channel)
    await layer.group_discard("warm-up", channel)
    if hasattr(layer, "delete_channel"):
        await layer.delete_channel(channel)


async def _worker() -> None:
    from signaling.runtime import get_worker

    await get_worker().ready()


def _codecs() -> None:
    """The encoder, the signer (resume tokens) and the protocol parser, once each."""
    from django.core import signing

    from rooms import protocol, services, wire

    protocol.parse('{"type":"join","room":"100000000","id":"w"}')
    token = signing.dumps(
        {"p": "warm-up", "u": 0, "r": 0}, salt=services.RESUME_SALT, compress=True
    )
    services.resume_token_peer(token=token, user=SimpleNamespace(pk=0))
    wire.encode(wire.error("server-busy", "warm-up", "w"))
