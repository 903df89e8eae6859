"""What the signaling socket tells operators: metrics (infra/metrics.py) and one log line per event.

The consumer calls these at fixed points, one line each; every function here
counts and, where an operator wants a line, logs it on the `rooms.signaling`
logger (docs/operations.md lists the lines and their fields):

- `join`: a create, join or resume ended (`joined`, a refusal, a fault):
  kind, outcome, room, peer, user, and seconds when it succeeded.
- `leave`: a peer of this worker left its room: reason, room, peer, user.
- `detach`: a socket dropped without a close frame, its seat waiting for a
  resume: room, peer, user.
- `kick`: the owner removed someone: room, peer, user, target.
- `close`: the owner ended the meeting: room, peer, user.
- `refused`: any other frame answered with an error: reason, room, peer, user.
- `rate_limit_close`: a socket closed with 4429: reason, room, peer, user.

A field is the server's own value, never a client's text: the room is a
validated room number, the peer a peer id, the user an id. No PIN, SDP,
candidate, chat line, token or session key is ever a field or part of a
message here. Refused flood frames are counted but not logged one by one
(the 4429 close that ends a flood is).

The hot path, a forward, costs one dict lookup and one counter increment.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra import metrics
from rooms import errors
from rooms import protocol as p

if TYPE_CHECKING:
    from rooms.events import Outbox
    from signaling.consumer import Membership, SignalingConsumer

logger = logging.getLogger("rooms.signaling")

# A join's refusal code -> its outcome label.
_JOIN_OUTCOMES = {
    p.ROOM_FULL: "full",
    p.ROOM_LOCKED: "locked",
    p.BAD_PIN: "bad_pin",
    p.ROOM_NOT_FOUND: "not_found",
    p.ROOM_CLOSED_CODE: "closed",
    p.RATE_LIMITED: "rate_limited",
    p.SERVER_BUSY: "error",
}
_LEFT_BY_CODE = {p.CLOSE_REPLACED: "replaced", p.CLOSE_RECONNECT: "expired"}

_forwarded = metrics.FORWARDED_BY
_refused = metrics.REFUSED_BY


def _reason(code: str) -> str:
    return code.replace("-", "_")


def _user_id(consumer: SignalingConsumer) -> int | None:
    if consumer.account is not None:
        return consumer.account.user.pk
    user = consumer.scope.get("user")
    return user.pk if user is not None and user.is_authenticated else None


def _log(event: str, **fields: Any) -> None:
    logger.info(event, extra={"fields": {"event": event, **fields}})


# --- Per-worker gauges, read at scrape time from the worker's own registry -----------------------


def _memberships() -> list[Membership]:
    from signaling.worker import all_workers

    return [
        c.membership for w in all_workers() for c in list(w.sockets) if c.membership is not None
    ]


def _sockets_open() -> float:
    from signaling.worker import all_workers

    return sum(len(w.sockets) for w in all_workers())


def _peers() -> float:
    return len(_memberships())


def _rooms_counted_here() -> float:
    # Each room is counted by the worker holding its lowest peer id (every
    # membership knows all its room's peers), so sum() over workers counts it
    # once. While that peer's socket is away (its resume grace) nobody counts it.
    return sum(1 for m in _memberships() if not m.peers or m.peer_id < min(m.peers))


metrics.gauge_from(metrics.SOCKETS_OPEN, _sockets_open)
metrics.gauge_from(metrics.PEERS, _peers)
metrics.gauge_from(metrics.ROOMS_OCCUPIED, _rooms_counted_here)


# --- Joins ----------------------------------------------------------------------------------


@dataclass
class _Join:
    kind: str
    room: str | None
    started: float
    done: bool = False


_join: contextvars.ContextVar[_Join | None] = contextvars.ContextVar("join", default=None)

Handler = Callable[[Any, dict[str, Any], str | None], Awaitable[None]]


def join_request(kind: str) -> Callable[[Handler], Handler]:
    """Decorate the consumer's `create`/`join` handler: each request ends counted and logged once.

    `joined` is counted by `seated()` (called just before it is sent); a
    refusal here, before the consumer answers it: a domain refusal is turned
    into its protocol error on the way (the same answer the consumer would
    give), marked so that `refused()` does not log it a second time.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def observed(consumer: Any, msg: dict[str, Any], msg_id: str | None) -> None:
            join = _Join(kind=kind, room=msg.get("room"), started=time.monotonic())
            token = _join.set(join)
            try:
                await handler(consumer, msg, msg_id)
            except errors.RoomsError as err:
                refusal = p.refusal(err, msg_id=msg_id)
                _join_refused(consumer, join, refusal)
                raise refusal from None
            except p.ClientError as err:
                _join_refused(consumer, join, err)
                raise
            except Exception:
                _join_ended(consumer, join, "error")
                raise
            else:
                if not join.done:
                    # No seat and no refusal: the resume found the seat taken (closed 4409).
                    _join_ended(consumer, join, "replaced" if consumer.closing else "error")
            finally:
                _join.reset(token)

        return observed

    return decorate


def _join_refused(consumer: SignalingConsumer, join: _Join, err: p.ClientError) -> None:
    err.observed = True
    _join_ended(consumer, join, _JOIN_OUTCOMES.get(err.code, "invalid"))


def _join_ended(consumer: SignalingConsumer, join: _Join, outcome: str) -> None:
    if join.done:
        return  # seated already; what failed afterwards is the socket's, not the join's
    join.done = True
    kind = "resume" if outcome == "replaced" else join.kind
    metrics.JOINS_BY[kind, outcome].inc()
    _log("join", kind=kind, outcome=outcome, room=join.room, peer=None, user=_user_id(consumer))


def seated(consumer: SignalingConsumer, *, created: bool, resumed: bool | None) -> None:
    """The consumer took its seat and is about to send `joined`."""
    now = time.monotonic()
    join = _join.get()
    kind = "create" if created else "resume" if resumed else "join"
    # The socket's first join is timed from the socket's opening, later ones from their frame.
    opened = getattr(consumer, "opened_at", None)
    consumer.opened_at = None
    started = opened if opened is not None else join.started if join is not None else now
    seconds = now - started
    if join is not None:
        join.done = True
    metrics.JOINS_BY[kind, "ok"].inc()
    metrics.JOIN_SECONDS_BY[kind].observe(seconds)
    membership = consumer.membership
    _log(
        "join",
        kind=kind,
        outcome="ok",
        room=membership.number,
        peer=membership.peer_id,
        user=_user_id(consumer),
        seconds=round(seconds, 6),
    )


def resumed(outcome: str) -> None:
    """A resume token was tried: `resumed`, `expired` (grace over), `invalid`, `replaced`."""
    metrics.RESUMES_BY[outcome].inc()


# --- Messages -------------------------------------------------------------------------------


def forwarded(kind: str) -> None:
    """An offer, answer or candidate goes to its peer (the hot path: a counter, nothing else)."""
    _forwarded[kind].inc()


def refused(consumer: SignalingConsumer, err: p.ClientError) -> None:
    """The consumer answers a frame with `error`."""
    reason = _reason(err.code)
    _refused[reason].inc()
    if getattr(err, "observed", False):
        return  # a join's refusal: its `join` line says it
    m = consumer.membership
    _log(
        "refused",
        reason=reason,
        room=m.number if m else None,
        peer=m.peer_id if m else None,
        user=_user_id(consumer),
    )


def flooded() -> None:
    """A frame refused by the message rate limit (one notice a second answers them)."""
    _refused["rate_limited"].inc()


def rate_limit_close(consumer: SignalingConsumer, reason: str) -> None:
    """The socket is closed with 4429: `messages` (a flood) or `connections` (too many sockets)."""
    metrics.RATE_LIMIT_CLOSES_BY[reason].inc()
    m = consumer.membership
    _log(
        "rate_limit_close",
        reason=reason,
        room=m.number if m else None,
        peer=m.peer_id if m else None,
        user=_user_id(consumer),
    )


def server_fault(consumer: SignalingConsumer) -> None:
    """Inside the consumer's `except`: a fault of ours, answered `server-busy` (already logged)."""
    _refused["server_busy"].inc()
    if metrics.is_redis_error(sys.exception()):
        metrics.REDIS_ERRORS.inc()


# --- Membership ------------------------------------------------------------------------------


def left(consumer: SignalingConsumer, was: Membership, reason: str) -> None:
    """A peer of this socket left its room (`reason`: Participant.LeftReason)."""
    _left(consumer, was, str(reason))


def let_go(consumer: SignalingConsumer, was: Membership, code: int) -> None:
    """The server took the seat from this socket: replaced (4409) or expired (1012)."""
    _left(consumer, was, _LEFT_BY_CODE.get(code, "expired"))


def _left(consumer: SignalingConsumer, was: Membership, reason: str) -> None:
    child = metrics.LEAVES_BY.get(reason)
    if child is not None:
        child.inc()
    _log("leave", reason=reason, room=was.number, peer=was.peer_id, user=_user_id(consumer))


def detached(consumer: SignalingConsumer, was: Membership) -> None:
    """The socket dropped without a close frame: the seat waits RESUME_GRACE for a resume."""
    _log("detach", room=was.number, peer=was.peer_id, user=_user_id(consumer))


def kicked(consumer: SignalingConsumer, target: str) -> None:
    """The room's owner removed peer `target`."""
    m = consumer.membership
    _log("kick", room=m.number, peer=m.peer_id, user=_user_id(consumer), target=target)


def closed_room(consumer: SignalingConsumer) -> None:
    """The room's owner ended the meeting for everyone."""
    m = consumer.membership
    _log(
        "close",
        room=m.number if m else None,
        peer=m.peer_id if m else None,
        user=_user_id(consumer),
    )


def admin_kicked(*, room: str, user: int, target: str) -> None:
    """An admin removed peer `target` from the room's console (Django admin: no peer of theirs)."""
    _log("kick", room=room, peer=None, user=user, target=target)


def admin_closed(*, room: str, user: int) -> None:
    """An admin ended the room (its console, or the rooms list's action)."""
    _log("close", room=room, peer=None, user=user)


# --- The worker -------------------------------------------------------------------------------


def peer_expired(peer_id: str, outbox: Outbox) -> None:
    """The sweeper expired `peer_id` (its outbox is empty when someone else got there first)."""
    if not outbox:
        return
    metrics.PEERS_EXPIRED.inc()
    group = next((item.group for item in outbox if item.group), None) or ""
    room = group.removeprefix("room-") or None
    _log("leave", reason="timeout", room=room, peer=peer_id, user=None)


def worker_failed() -> None:
    """Inside a worker loop's `except`: count what Redis had to do with it."""
    if metrics.is_redis_error(sys.exception()):
        metrics.REDIS_ERRORS.inc()


def redis_unreachable() -> None:
    """The worker's Redis watch found Redis away (once a check, while it lasts)."""
    metrics.REDIS_ERRORS.inc()
