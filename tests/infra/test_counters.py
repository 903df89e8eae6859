"""infra/counters.py: windowed counters, all or nothing, and how client addresses are counted."""

from __future__ import annotations

import pytest

from infra import counters
from infra.counters import address_key


async def test_reserve_is_all_or_nothing_under_each_limit():
    """A reservation takes one unit from every counter, or none when any is full."""
    both = [("test:a", 2), ("test:b", 1)]
    assert await counters.reserve(both, window=60)
    assert not await counters.reserve(both, window=60)  # b is full: a is not taken either
    assert await counters.reserve([("test:a", 2)], window=60)
    assert not await counters.reserve([("test:a", 2)], window=60)
    await counters.release(["test:b"])
    assert not await counters.reserve(both, window=60)  # a is full now
    await counters.release(["test:a"])
    assert await counters.reserve(both, window=60)


@pytest.mark.django_db
def test_the_sync_and_async_paths_share_the_counters():
    """What the HTTP views take, the consumer sees, and the other way round."""
    assert counters.reserve_sync([("test:s", 1)], window=60)
    assert not counters.reserve_sync([("test:s", 1)], window=60)
    counters.release_sync(["test:s"])
    assert counters.reserve_sync([("test:s", 1)], window=60)


def test_addresses_are_counted_by_ipv4_or_ipv6_slash_64():
    """An IPv6 client counts by its /64 (what one line gets); IPv4-mapped counts as IPv4."""
    assert address_key("203.0.113.9") == "203.0.113.9"
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:bbbb::7") == "2001:db8:1:2::/64"
    assert address_key("::ffff:198.51.100.4") == "198.51.100.4"
    assert address_key(None) is None
    assert address_key("not an address") is None


@pytest.mark.parametrize("redis", [False, True], ids=["memory", "redis"])
async def test_a_throttle_takes_its_burst_then_spaces_the_rest(settings, redis, monkeypatch):
    """`limit` at once, then one per window/limit: a wait up to max_wait, a refusal past it."""
    import uuid

    from infra import counters as c

    settings.REDIS_URL = "redis://127.0.0.1:6379/0" if redis else ""
    now = [1_000_000.0]
    monkeypatch.setattr(c.time, "time", lambda: now[0])
    key = f"test:throttle:{uuid.uuid4().hex}"
    turns = [await c.throttle(key, limit=3, window=30, max_wait=15) for _ in range(6)]
    # Three at once; then one every 10 s: waits of 10, then 20 > 15 (refused, not counted).
    assert turns == [
        c.Turn(True, 0.0),
        c.Turn(True, 0.0),
        c.Turn(True, 0.0),
        c.Turn(True, 10.0),
        c.Turn(False, 5.0),
        c.Turn(False, 5.0),
    ]
    # The fourth took the turn 10 s on; the next is 10 s after that.
    now[0] += 20
    assert await c.throttle(key, limit=3, window=30, max_wait=0) == c.Turn(True, 0.0)
    assert c.throttle_sync(key, limit=3, window=30, max_wait=0) == c.Turn(False, 10.0)


@pytest.mark.parametrize("redis", [False, True], ids=["memory", "redis"])
@pytest.mark.django_db
def test_an_event_given_back_frees_its_place(settings, redis, monkeypatch):
    """`unthrottle_sync` undoes one event: the burst is whole again, never more than whole."""
    import uuid

    from infra import counters as c

    settings.REDIS_URL = "redis://127.0.0.1:6379/0" if redis else ""
    now = [2_000_000.0]
    monkeypatch.setattr(c.time, "time", lambda: now[0])
    key = f"test:unthrottle:{uuid.uuid4().hex}"
    assert [c.throttle_sync(key, limit=3, window=30).allowed for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    c.unthrottle_sync(key, limit=3, window=30)
    assert c.throttle_sync(key, limit=3, window=30) == c.Turn(True, 0.0)
    assert c.throttle_sync(key, limit=3, window=30) == c.Turn(False, 10.0)
    # Given back more often than taken: the burst is 3, not more.
    for _ in range(5):
        c.unthrottle_sync(key, limit=3, window=30)
    assert [c.throttle_sync(key, limit=3, window=30).allowed for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
