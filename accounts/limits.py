"""What one client address may ask of the account pages (infra/counters.py): slowed, not stopped.

- Sign-ups: `SIGNUPS_PER_ADDRESS_PER_HOUR` (50) accounts at once, which a
  classroom of 30 behind one NAT address signing up at 9:00 fits in, then one
  every 3600/50 = 72 s. Past the burst, the next classmate waits about a
  minute, not an hour, while a script making accounts gets one every 72 s:
  50 an hour at most, as before. A wait rather than a puzzle (a proof of
  work) because the cost that matters is the accounts, not the requests: a
  script would solve the puzzle as fast as a browser does.
- Sign-up forms, valid or not: each one says whether its username is taken,
  so they are counted before the form is looked at
  (`SIGNUP_ATTEMPT_ADDRESS_LIMIT` at once, then one per
  window/limit seconds); past that the answer says only when to try again.
- Failed logins, whatever the username: each costs a full password hash
  (Django hashes once for a username nobody has, so that the time does not
  tell which names exist), so a script trying fresh usernames could keep a
  worker hashing. One failure is *taken* before the password is checked and
  given back when the login succeeds (or django-axes refused it unhashed),
  so parallel attempts cannot hash past the bound; past
  `LOGIN_FAILURE_ADDRESS_LIMIT` the address gets one attempt per
  window/limit seconds, answered 429 with Retry-After before any hash.
  django-axes still locks one username from one address after a few wrong
  passwords; this bounds what the address does across usernames.
"""

from __future__ import annotations

from django.conf import settings

from infra import counters
from infra.counters import address_key


def signup_turn(*, address: str | None) -> counters.Turn:
    """Count one sign-up from `address`, or say in how many seconds one may be made.

    Counted when the form is valid, just before the account is created, so a
    mistyped form costs nothing here (it costs a sign-up attempt).
    """
    key = address_key(address)
    if key is None:
        return counters.Turn(allowed=True, wait=0.0)
    return counters.throttle_sync(
        f"{settings.CHANNEL_LAYER_PREFIX}:signups:{key}",
        limit=settings.SIGNUPS_PER_ADDRESS_PER_HOUR,
        window=3600,
    )


def signup_attempt_turn(*, address: str | None) -> counters.Turn:
    """Count one sign-up form from `address` before it is validated, or say when one may be."""
    key = address_key(address)
    if key is None:
        return counters.Turn(allowed=True, wait=0.0)
    return counters.throttle_sync(
        f"{settings.CHANNEL_LAYER_PREFIX}:signup-attempts:{key}",
        limit=settings.SIGNUP_ATTEMPT_ADDRESS_LIMIT,
        window=settings.SIGNUP_ATTEMPT_ADDRESS_WINDOW,
    )


def _login_key(address: str | None) -> str | None:
    key = address_key(address)
    if key is None:
        return None
    return f"{settings.CHANNEL_LAYER_PREFIX}:login-failures:{key}"


def login_turn(*, address: str | None) -> counters.Turn:
    """Take one failed login for `address` before its password is hashed, or say when one may be.

    Give it back with `login_not_failed` when the attempt turns out not to
    be a failure that cost a hash.
    """
    key = _login_key(address)
    if key is None:
        return counters.Turn(allowed=True, wait=0.0)
    return counters.throttle_sync(
        key,
        limit=settings.LOGIN_FAILURE_ADDRESS_LIMIT,
        window=settings.LOGIN_FAILURE_ADDRESS_WINDOW,
    )


def login_not_failed(*, address: str | None) -> None:
    """Give back what `login_turn` took: the login succeeded, or was refused without a hash."""
    key = _login_key(address)
    if key is not None:
        counters.unthrottle_sync(
            key,
            limit=settings.LOGIN_FAILURE_ADDRESS_LIMIT,
            window=settings.LOGIN_FAILURE_ADDRESS_WINDOW,
        )
