"""signaling/runtime/redis_watch.py: the watch on Redis tells an outage from a busy worker.

A real outage (Redis restarted under two workers) is tests/integration/test_faults.py's.
"""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from infra.redis import get_redis
from signaling.runtime import get_worker
from tests.integration.conftest import REDIS_URL

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_full_pool_is_not_an_outage(settings, connect, alice):
    """Every pooled connection busy past the pool's timeout: no socket is closed for it."""
    settings.REDIS_URL = REDIS_URL
    settings.CHANNEL_LAYER_PREFIX = f"worker-test-{uuid.uuid4().hex[:8]}"
    settings.REDIS_POOL_SIZE, settings.REDIS_POOL_TIMEOUT = 2, 1
    a = await connect(alice)
    worker = get_worker()
    pool = get_redis().connection_pool
    held = [await pool.get_connection() for _ in range(2)]
    try:
        with pytest.raises(aioredis.ConnectionError, match="No connection available"):
            await get_redis().ping()
        await worker.redis.check()
        assert worker.redis.ok
    finally:
        for connection in held:
            await pool.release(connection)
    await worker.redis.check()
    assert worker.redis.ok
    assert len(worker.sockets) == 1
    await a.nothing_before_pong()
