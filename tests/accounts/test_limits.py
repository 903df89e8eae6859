"""accounts/limits.py: sign-ups per address slowed past the burst, not refused for an hour."""

from __future__ import annotations

import uuid

from accounts.limits import signup_turn
from infra import counters
from infra.counters import Turn


def test_fifty_sign_ups_then_one_every_72_seconds(settings, monkeypatch):
    """At the defaults: 50 from one address at once; the 51st in 72 s, not an hour; others free."""
    settings.REDIS_URL = ""
    settings.CHANNEL_LAYER_PREFIX = f"signups-{uuid.uuid4().hex[:8]}"
    assert settings.SIGNUPS_PER_ADDRESS_PER_HOUR == 50
    now = [3_000_000.0]
    monkeypatch.setattr(counters.time, "time", lambda: now[0])
    assert [signup_turn(address="192.0.2.7").allowed for _ in range(50)] == [True] * 50
    assert signup_turn(address="192.0.2.7") == Turn(False, 72.0)
    # Another address (the school next door) is not affected.
    assert signup_turn(address="198.51.100.7") == Turn(True, 0.0)
    now[0] += 71
    assert signup_turn(address="192.0.2.7") == Turn(False, 1.0)
    now[0] += 1
    assert signup_turn(address="192.0.2.7") == Turn(True, 0.0)
    assert signup_turn(address="192.0.2.7") == Turn(False, 72.0)
    # No address known (a UNIX socket): not counted.
    assert signup_turn(address=None) == Turn(True, 0.0)
