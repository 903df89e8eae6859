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
