"""Sign-ups per client address (infra/counters.py), so a script cannot mint accounts.

Slowed, not stopped: `SIGNUPS_PER_ADDRESS_PER_HOUR` (50) at once, which a
classroom of 30 behind one NAT address signing up at 9:00 fits in, then one
every 3600/50 = 72 s. Past the burst, the next classmate waits about a
minute, not an hour, while a script making accounts gets one every 72 s:
50 an hour at most, as before. A wait rather than a puzzle (a proof of work)
because the cost that matters is the accounts, not the requests: a script
would solve the puzzle as fast as a browser does.
"""

from __future__ import annotations

from django.conf import settings

from infra import counters
from infra.counters import address_key


def signup_turn(*, address: str | None) -> counters.Turn:
    """Count one sign-up from `address`, or say in how many seconds one may be made.

    Counted when the form is valid, just before the account is created, so a
    mistyped form costs nothing.
    """
    key = address_key(address)
    if key is None:
        return counters.Turn(allowed=True, wait=0.0)
    return counters.throttle_sync(
        f"{settings.CHANNEL_LAYER_PREFIX}:signups:{key}",
        limit=settings.SIGNUPS_PER_ADDRESS_PER_HOUR,
        window=3600,
    )
