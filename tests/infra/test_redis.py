"""infra/redis.py: the worker's pool, the batch its small writes share, and the PING kept apart."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
import redis.asyncio as aioredis

from infra.redis import RedisBatch, get_redis, get_redis_batch, ping_redis
from tests.integration.conftest import REDIS_URL


@pytest.fixture
def on_redis(settings):
    settings.REDIS_URL = REDIS_URL
    settings.REDIS_POOL_SIZE = 2
    settings.REDIS_POOL_TIMEOUT = 1
    return f"redis-test-{uuid.uuid4().hex[:8]}"


def connections_made(client: aioredis.Redis) -> int:
    return sum(count for count, _ in client.connection_pool.get_connection_count())


async def test_the_pool_follows_the_settings(on_redis):
    pool = get_redis().connection_pool
    assert (pool.max_connections, pool.timeout) == (2, 1)
    assert get_redis() is get_redis()


async def test_ping_answers_while_every_pooled_connection_is_taken(on_redis):
    """A full pool is a busy worker, not a lost Redis: the watch's PING does not queue for it."""
    client = get_redis()
    pool = client.connection_pool
    held = [await pool.get_connection() for _ in range(2)]
    try:
        with pytest.raises(aioredis.ConnectionError, match="No connection available"):
            await client.ping()
        await ping_redis()
        await ping_redis()
    finally:
        for connection in held:
            await pool.release(connection)
    assert await client.ping() is True


async def test_ping_raises_when_nothing_answers(settings):
    with socket.socket() as probe:  # a port on loopback that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    with pytest.raises(aioredis.ConnectionError):
        await ping_redis()


async def test_many_callers_commands_leave_together_on_one_connection(on_redis):
    """Each caller gets its own reply; 500 at once take one pooled connection, not the pool."""
    client, batch = get_redis(), get_redis_batch()
    assert batch is get_redis_batch()
    key = f"{on_redis}:set"
    await client.zadd(key, {f"m{i}": i for i in range(0, 500, 2)})
    try:
        replies = await asyncio.gather(*(batch.call("ZREM", key, f"m{i}") for i in range(500)))
        # Present members (even) were removed, absent ones (odd) were not: each its own answer.
        assert replies == [1 - i % 2 for i in range(500)]
        assert await client.zcard(key) == 0
        assert connections_made(client) == 1
    finally:
        await client.delete(key)


async def test_a_failing_command_fails_its_caller_alone(on_redis):
    client, batch = get_redis(), get_redis_batch()
    text, scores = f"{on_redis}:text", f"{on_redis}:scores"
    await client.set(text, "not a sorted set")
    try:
        results = await asyncio.gather(
            batch.call("ZADD", scores, 1, "a"),
            batch.call("ZADD", text, 1, "a"),
            batch.call("ZSCORE", scores, "a"),
            return_exceptions=True,
        )
        assert results[0] == 1
        assert isinstance(results[1], aioredis.ResponseError)
        assert "WRONGTYPE" in str(results[1])
        assert float(results[2]) == 1.0
    finally:
        await client.delete(text, scores)


async def test_a_batch_that_cannot_be_sent_fails_all_its_callers(on_redis):
    """The pool stays full past its timeout: every caller of that batch hears why."""
    client = get_redis()
    pool = client.connection_pool
    batch = RedisBatch(client)
    held = [await pool.get_connection() for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(batch.call("ZREM", f"{on_redis}:set", f"m{i}") for i in range(3)),
            return_exceptions=True,
        )
    finally:
        for connection in held:
            await pool.release(connection)
    assert [str(r) for r in results] == ["No connection available."] * 3
    # And the next batch goes out.
    assert await batch.call("ZREM", f"{on_redis}:set", "m0") == 0


async def test_a_cancelled_caller_does_not_stop_the_others(on_redis):
    client, batch = get_redis(), get_redis_batch()
    key = f"{on_redis}:set"
    await client.zadd(key, {"a": 1, "b": 2})
    try:
        gone = asyncio.ensure_future(batch.call("ZREM", key, "a"))
        kept = asyncio.ensure_future(batch.call("ZREM", key, "b"))
        await asyncio.sleep(0)  # both queued for the same batch
        gone.cancel()
        assert await kept == 1
        assert gone.cancelled()
        # Already in the pipeline when its caller gave up: sent all the same.
        assert await client.zcard(key) == 0
    finally:
        await client.delete(key)
