"""/healthz and /readyz (config/health.py): the real URLconf in process, and a real worker.

The outages are real: a worker (`python -m config.serve`) whose PostgreSQL
database stops taking connections, whose private redis-server is stopped,
and a channel layer pointed at a server that accepts TCP but never answers.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple

import psycopg
import pytest
from channels.layers import get_channel_layer

from config import health
from tests.deploy.procs import free_port
from tests.integration.conftest import PG_ADMIN_URL, RedisServer, Stack, running_stack

IN_MEMORY = {"default": {"BACKEND": "transport.layer.InMemoryLayer"}}
LAYERS = {
    "pubsub": "transport.layer.RedisPubSubLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}


def redis_layer(kind: str, url: str) -> dict:
    # A private prefix: nothing else on the shared Redis can see these channels.
    prefix = f"health-test-{uuid.uuid4().hex[:8]}"
    return {"default": {"BACKEND": LAYERS[kind], "CONFIG": {"hosts": [url], "prefix": prefix}}}


async def test_healthz_answers_ok(async_client):
    """/healthz answers 200 {"status": "ok"} without touching the database."""
    response = await async_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


async def test_healthz_refuses_post(async_client):
    """The probes are GET only."""
    response = await async_client.post("/healthz")
    assert response.status_code == 405


@pytest.mark.django_db
async def test_readyz_ok_with_database_and_layer(async_client, settings):
    """With the database and the channel layer working, /readyz answers 200 naming both."""
    settings.CHANNEL_LAYERS = IN_MEMORY
    response = await async_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok"},
    }


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_readyz_ok_with_real_redis(async_client, settings, kind):
    """A round trip through real Redis succeeds and leaves no channel behind."""
    settings.CHANNEL_LAYERS = redis_layer(kind, "redis://127.0.0.1:6379/13")
    response = await async_client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "channel_layer": "ok"}
    layer = get_channel_layer()
    if kind == "pubsub":
        # No subscription left for the probe's channel (it would pile up per probe).
        assert layer.local_channels() == []
    else:
        assert dict(layer.receive_buffer) == {}
    await layer.flush()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_readyz_503_when_redis_is_unreachable(async_client, settings, kind):
    """With Redis down, /readyz answers 503 and names the channel layer, not the database."""
    closed_port = free_port()  # nothing listens there
    settings.CHANNEL_LAYERS = redis_layer(kind, f"redis://127.0.0.1:{closed_port}/0")
    response = await async_client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failing": ["channel_layer"],
        "checks": {"database": "ok", "channel_layer": "error"},
    }


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A "Redis" that accepts TCP connections and reads what is sent, but never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_readyz_503_when_a_check_hangs(
    async_client, settings, monkeypatch, silent_redis, kind
):
    """A Redis that never answers makes the check time out ("timeout"): 503, not a hung probe."""
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 1.0)
    settings.CHANNEL_LAYERS = redis_layer(kind, silent_redis)
    started = time.monotonic()
    response = await asyncio.wait_for(async_client.get("/readyz"), 30)
    took = time.monotonic() - started
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failing": ["channel_layer"],
        "checks": {"database": "ok", "channel_layer": "timeout"},
    }
    # Loosely, as the suite's other timings: the probe answers about when the check gives up.
    assert 1.0 <= took < 10, took


# --- A real worker, its real dependencies broken and restored ---------------------------------

READY = {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}


class Worker(NamedTuple):
    stack: Stack
    base: str
    redis: RedisServer

    @property
    def database(self) -> str:
        return self.stack.env["DATABASE_URL"].rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    """One daphne worker (config.serve) on its own PostgreSQL database and its own redis-server."""
    redis_server = RedisServer()
    redis_server.start()
    try:
        with running_stack(workers=1, REDIS_URL=redis_server.url) as stack:
            # Serving pages is not ready yet: the worker warms up first (config/warmup.py).
            assert ready_again(stack.workers[0]) == (200, READY)
            yield Worker(stack, stack.workers[0], redis_server)
    finally:
        redis_server.stop(signal.SIGKILL)


def readyz(base: str) -> tuple[int, dict[str, Any]]:
    """GET /readyz from the worker: (status, JSON body)."""
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def ready_again(base: str, *, within: float = 30) -> tuple[int, dict[str, Any]]:
    """Probe until /readyz answers 200 (the dependency is back), or give the last answer."""
    deadline = time.monotonic() + within
    while True:
        answer = readyz(base)
        if answer[0] == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def pg_admin(query: str, *params: Any) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(query, params)


@pytest.mark.slow
def test_readyz_follows_a_real_database_outage(worker):
    """The worker's database refusing connections: /readyz 503 naming it; 200 once it is back."""
    assert readyz(worker.base) == (200, READY)
    name = worker.database
    # No new connection, and the worker's pooled ones cut, as when PostgreSQL goes away.
    pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    pg_admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        name,
    )
    try:
        assert readyz(worker.base) == (
            503,
            {
                "status": "unavailable",
                "failing": ["database"],
                "checks": {"database": "error", "channel_layer": "ok"},
            },
        )
        # Every later probe answers too, within its check timeout (3 s) and not
        # after the connection pool's own 10 s: what the compose healthcheck
        # (5 s) relies on.
        for _ in range(3):
            started = time.monotonic()
            status, body = readyz(worker.base)
            took = time.monotonic() - started
            assert (status, body["failing"]) == (503, ["database"])
            assert took < 5, took
    finally:
        pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert ready_again(worker.base) == (200, READY)


@pytest.mark.slow
def test_readyz_follows_a_real_redis_outage(worker):
    """The worker's redis-server stopped: /readyz 503 naming the channel layer; 200 once back."""
    assert readyz(worker.base) == (200, READY)
    worker.redis.stop()
    try:
        assert readyz(worker.base) == (
            503,
            {
                "status": "unavailable",
                "failing": ["channel_layer"],
                "checks": {"database": "ok", "channel_layer": "error"},
            },
        )
    finally:
        worker.redis.start()
    assert ready_again(worker.base) == (200, READY)
