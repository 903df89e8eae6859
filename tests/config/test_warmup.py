"""The warm-up (config/warmup.py): /readyz waits for it when armed, and it runs through."""

from __future__ import annotations

import asyncio

import pytest

from config import warmup

IN_MEMORY = {"default": {"BACKEND": "transport.layer.InMemoryLayer"}}


@pytest.fixture
def fresh_state(monkeypatch):
    """A warm-up state of this test's own (the module's is per process)."""
    monkeypatch.setattr(warmup, "state", warmup._State())
    return warmup.state


@pytest.mark.django_db
async def test_readyz_is_not_ready_until_the_armed_warm_up_is_done(
    async_client, settings, monkeypatch, fresh_state
):
    """Armed, /readyz answers 503 `warm_up: pending` until the warm-up ends, then 200."""
    settings.CHANNEL_LAYERS = IN_MEMORY
    barrier = asyncio.Event()
    entered = asyncio.Event()

    async def held_warm_up() -> None:
        entered.set()
        await barrier.wait()

    monkeypatch.setattr(warmup, "warm_up", held_warm_up)
    warmup.arm()
    task = warmup.start()
    await entered.wait()
    response = await async_client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failing": ["warm_up"],
        "checks": {"database": "ok", "channel_layer": "ok", "warm_up": "pending"},
    }
    barrier.set()
    await task
    response = await async_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}


@pytest.mark.django_db
async def test_readyz_does_not_wait_when_nothing_armed_it(async_client, settings, fresh_state):
    """In a process the launcher did not start (tests, manage.py) /readyz ignores the warm-up."""
    settings.CHANNEL_LAYERS = IN_MEMORY
    response = await async_client.get("/readyz")
    assert response.status_code == 200
    assert not warmup.pending()


async def test_a_failed_warm_up_is_tried_again_until_it_succeeds(monkeypatch, fresh_state):
    """A step failing (the database not up yet) keeps /readyz waiting; the retry finishes it."""
    monkeypatch.setattr(warmup, "RETRY_SECONDS", 0)
    calls = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")

    monkeypatch.setattr(warmup, "warm_up", flaky)
    warmup.arm()
    await warmup.start()
    assert len(calls) == 3
    assert not warmup.pending()


@pytest.mark.django_db(transaction=True)
async def test_the_real_warm_up_runs_through(settings, fresh_state):
    """The real warm-up goes through the database, the registries, the layer and the worker."""
    settings.CHANNEL_LAYERS = IN_MEMORY
    warmup.arm()
    await asyncio.wait_for(warmup.start(), 30)
    assert not warmup.pending()
    assert warmup.state.took is not None
