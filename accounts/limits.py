"""Sign-ups per client address (infra/counters.py), so a script cannot mint accounts."""

from __future__ import annotations

import time

from django.conf import settings

from infra import counters
from infra.counters import address_key


def signup_allowed(*, address: str | None) -> bool:
    """Count one sign-up from `address` this hour; False once the hour's cap is reached.

    Counted when the form is valid, just before the account is created, so a
    mistyped form costs nothing. A classroom of 30 behind one NAT address fits
    under the default (SIGNUPS_PER_ADDRESS_PER_HOUR = 50).
    """
    key = address_key(address)
    if key is None:
        return True
    window = int(time.time() // 3600)
    counter = f"{settings.CHANNEL_LAYER_PREFIX}:signups:{key}:{window}"
    return counters.reserve_sync([(counter, settings.SIGNUPS_PER_ADDRESS_PER_HOUR)], window=3600)
