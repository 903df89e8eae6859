"""Limits on what one signaling socket or one account may send.

- `TokenBucket`: per-connection rates (all messages; chat lines). Bursts pass
  (a mesh join sends an offer and a score of candidates to each peer at
  once); a sustained flood is refused message by message with
  `rate-limited`, and a connection that keeps flooding runs out of strikes
  and is closed with 4429. Pure arithmetic on the connection's own state: it
  never slows another room.
- `account_volume`: joins and chat lines per account across sockets and
  workers.
- `QualityLimit`: how often one socket may report call quality.

Join attempts, wrong PINs and failures per address are the room's own
(rooms/attempts.py); signaling sockets per account across every worker:
`signaling.connections`; joins in flight per account: `signaling.runtime.joins`;
sign-ups: `accounts.limits`.
"""

from __future__ import annotations

import time

from django.conf import settings

from infra import counters


class TokenBucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, *, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def message_bucket() -> TokenBucket:
    return TokenBucket(rate=settings.SIGNALING_RATE, capacity=settings.SIGNALING_BURST)


def strike_bucket() -> TokenBucket:
    # Refusals tolerated in a row before the connection is closed; one forgiven per second.
    return TokenBucket(rate=1, capacity=settings.SIGNALING_RATE_STRIKES)


def resubscribe_bucket() -> TokenBucket:
    # A browser's SFU watchdog asks at most once per SFU_SETUP-ish wait; a few
    # at once after a network change, never a stream (each costs a Janus handle).
    return TokenBucket(rate=1 / 5, capacity=4)


def chat_bucket() -> TokenBucket:
    return TokenBucket(rate=settings.CHAT_RATE, capacity=settings.CHAT_BURST)


async def account_volume(*, user_id: int, kind: str) -> bool:
    """One more join or chat line (`kind`) of the account, over all its sockets and workers.

    False past the account's rate (`JOINS_PER_USER_PER_HOUR` /
    `CHAT_PER_USER_PER_HOUR`: that many at once, then evenly spread over the
    hour): what bounds the rows one account adds to the database, however
    many sockets it opens.
    """
    limit = settings.JOINS_PER_USER_PER_HOUR if kind == "join" else settings.CHAT_PER_USER_PER_HOUR
    turn = await counters.throttle(
        f"{settings.CHANNEL_LAYER_PREFIX}:volume:{kind}:{user_id}", limit=limit, window=3600
    )
    return turn.allowed


class QualityLimit:
    """How often one socket may report call quality (docs/reliability.md, Limits).

    Per remote peer, one live and one final report per `QUALITY_MIN_INTERVAL`
    seconds on average (browsers send one every 10 s); all reports together,
    `QUALITY_RATE` a second with bursts of `QUALITY_BURST`.

    The per-peer interval is a GCRA with a tolerance of one interval: a
    report may come up to an interval early as long as the ones before it
    were on time. A browser that keeps to the interval on its own clock is
    then never refused because the network or a busy worker delayed one
    report more than the next (seen on a loaded machine: seconds), while the
    long-run rate stays one per interval. Memory stays bounded: a key is
    forgotten once its next theoretical time has passed (it would be taken
    as fresh), and the bucket bounds how many keys can be younger.
    """

    __slots__ = ("bucket", "interval", "last")

    def __init__(self) -> None:
        self.interval = settings.QUALITY_MIN_INTERVAL
        self.bucket = TokenBucket(rate=settings.QUALITY_RATE, capacity=settings.QUALITY_BURST)
        # (peer, final) -> the theoretical time of its next report.
        self.last: dict[tuple[str, bool], float] = {}

    def take(self, *, peer: str, final: bool) -> bool:
        now = time.monotonic()
        due = max(self.last.get((peer, final), now), now)
        if due - now > self.interval:
            return False
        if not self.bucket.take():
            return False
        if len(self.last) >= self.bucket.capacity:
            self.last = {key: at for key, at in self.last.items() if at > now}
        self.last[(peer, final)] = due + self.interval
        return True
