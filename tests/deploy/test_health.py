"""/healthz and /readyz (config/health.py), through the project's real URLconf."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer
from django.db import OperationalError

from config import health
from tests.deploy.procs import free_port

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


@pytest.mark.django_db
async def test_readyz_503_when_database_fails(async_client, settings, monkeypatch):
    """A failing database query makes /readyz answer 503 naming the database."""
    settings.CHANNEL_LAYERS = IN_MEMORY

    async def broken() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = await async_client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failing": ["database"],
        "checks": {"database": "error", "channel_layer": "ok"},
    }


@pytest.mark.django_db
async def test_readyz_503_when_a_check_hangs(async_client, settings, monkeypatch):
    """A check that does not answer in time counts as failed ("timeout"), not as a hung probe."""
    settings.CHANNEL_LAYERS = IN_MEMORY

    async def hangs() -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.2)
    monkeypatch.setitem(health.CHECKS, "channel_layer", hangs)
    response = await async_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["channel_layer"]
    assert response.json()["checks"]["channel_layer"] == "timeout"
