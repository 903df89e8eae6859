"""Join attempts (rooms/attempts.py, issue 5): numbers and PINs cannot be enumerated by trying.

Capped per account through the real consumer; per account and per address
with Redis, exactly.
"""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async

from rooms import attempts

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
async def alice(make_user):
    return await database_sync_to_async(make_user)(f"alice-{uuid.uuid4().hex[:6]}")


@pytest.fixture
async def bob(make_user):
    return await database_sync_to_async(make_user)(f"bob-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def join_cap(settings):
    settings.JOIN_FAILURE_LIMIT = 3


async def test_failed_joins_are_capped(join_cap, connect, alice, bob):
    """Unknown numbers and wrong PINs count; at the cap every join is refused, even a right one."""
    a = await connect(alice)
    number = (await a.create(pin="2468"))["room"]["number"]
    b = await connect(bob)
    missing = "100000000" if number != "100000000" else "100000001"
    assert await b.request({"type": "join", "room": missing, "id": "1"}) == {
        "type": "error",
        "code": "room-not-found",
        "message": "There is no room with that number.",
        "re": "1",
    }
    for n, pin in enumerate(("1111", "2222"), start=2):
        answer = await b.request({"type": "join", "room": number, "pin": pin, "id": str(n)})
        assert (answer["code"], answer["re"]) == ("bad-pin", str(n))
    refused = {
        "type": "error",
        "code": "rate-limited",
        "message": "Too many failed attempts to join; wait a while.",
        "re": "4",
    }
    # The right PIN now gets the same answer as a wrong number: nothing to learn.
    assert await b.request({"type": "join", "room": number, "pin": "2468", "id": "4"}) == refused
    assert await b.request({"type": "join", "room": missing, "id": "4"}) == refused
    # Someone else is not affected, and the socket stays usable.
    c = await connect(await database_sync_to_async(lambda: type(bob).objects.create_user("c"))())
    assert (await c.join(number, pin="2468"))["type"] == "joined"
    assert await b.request({"type": "ping", "id": "p"}) == {"type": "pong", "re": "p"}


async def test_join_attempts_are_reserved_per_user_and_slowed_per_address(settings, monkeypatch):
    """With Redis: a cap per user (all or nothing, with expiry); per address a rate, not a cap."""
    import redis.asyncio as aioredis

    from infra import counters
    from tests.integration.conftest import REDIS_URL

    settings.REDIS_URL = REDIS_URL
    settings.CHANNEL_LAYER_PREFIX = f"limits-{uuid.uuid4().hex[:8]}"
    settings.JOIN_FAILURE_LIMIT, settings.JOIN_FAILURE_ADDRESS_LIMIT = 3, 4
    settings.JOIN_FAILURE_WINDOW, settings.JOIN_FAILURE_ADDRESS_MAX_WAIT = 600, 200
    held = [await attempts.reserve_attempt(user_id=7) for _ in range(3)]
    assert all(held)
    assert await attempts.reserve_attempt(user_id=7) is None
    # Another account is not at its cap, whatever the first one did.
    assert await attempts.reserve_attempt(user_id=8) is not None
    # An attempt that did not fail gives its reservation back.
    await attempts.release_attempt(held[0])
    assert await attempts.reserve_attempt(user_id=7) is not None
    # The address: 4 failures at once, then one per 150 s, waited for up to 200 s.
    now = [2_000_000.0]
    monkeypatch.setattr(counters.time, "time", lambda: now[0])
    turns = [await attempts.address_failed(address="192.0.2.1") for _ in range(6)]
    assert turns == [counters.Turn(True, 0.0)] * 4 + [
        counters.Turn(True, 150.0),
        counters.Turn(False, 100.0),
    ]
    assert await attempts.address_failed(address="198.51.100.2") == counters.Turn(True, 0.0)
    assert await attempts.address_failed(address=None) == counters.Turn(True, 0.0)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        prefix = f"{settings.CHANNEL_LAYER_PREFIX}:join-attempts"
        [user_key] = await client.keys(f"{prefix}:user:7:*")
        assert int(await client.get(user_key)) == 3
        assert 0 < await client.ttl(user_key) <= 600
        await client.delete(*await client.keys(f"{settings.CHANNEL_LAYER_PREFIX}:*"))
    finally:
        await client.aclose()
