"""What the signaling socket tells operators: metrics (signaling/metrics.py), a log line per event.

The consumer and the seating functions call these at fixed points, one
line each, with the socket (signaling/socket.py, read, never written) or the
plain facts; every function here
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

from infra import metrics as infra_metrics
from infra.logs import log_event
from rooms import errors
from rooms import protocol as p
from rooms.models import Participant
from signaling import metrics

if TYPE_CHECKING:
    from rooms.events import Outbox
    from signaling.membership import Membership
    from signaling.socket import Socket

logger = logging.getLogger("rooms.signaling")

_LEFT_BY_CODE = {
    p.CLOSE_REPLACED: Participant.LeftReason.REPLACED.value,
    p.CLOSE_RECONNECT: metrics.EXPIRED,
}

_forwarded = metrics.FORWARDED_BY
_refused = metrics.REFUSED_BY


def _log(event: str, **fields: Any) -> None:
    log_event(logger, event, **fields)


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
        async def observed(socket: Any, msg: dict[str, Any], msg_id: str | None) -> None:
            join = _Join(kind=kind, room=msg.get("room"), started=time.monotonic())
            token = _join.set(join)
            try:
                await handler(socket, msg, msg_id)
            except errors.RoomsError as err:
                refusal = errors.refusal(err, msg_id=msg_id)
                _join_refused(socket, join, refusal)
                raise refusal from None
            except p.ClientError as err:
                _join_refused(socket, join, err)
                raise
            except Exception:
                _join_ended(socket, join, "error")
                raise
            else:
                if not join.done:
                    # No seat and no refusal: the resume found the seat taken (closed 4409).
                    _join_ended(socket, join, "replaced" if socket.closing else "error")
            finally:
                _join.reset(token)

        return observed

    return decorate


def _join_refused(socket: Socket, join: _Join, err: p.ClientError) -> None:
    err.observed = True
    _join_ended(socket, join, metrics.JOIN_OUTCOME_BY_CODE.get(err.code, "invalid"))


def _join_ended(socket: Socket, join: _Join, outcome: str) -> None:
    if join.done:
        return  # seated already; what failed afterwards is the socket's, not the join's
    join.done = True
    kind = "resume" if outcome == "replaced" else join.kind
    metrics.JOINS_BY[kind, outcome].inc()
    _log("join", kind=kind, outcome=outcome, room=join.room, peer=None, user=socket.user_id)


def seated(*, user: int, membership: Membership, kind: str, opened_at: float | None) -> None:
    """A socket took its seat (`kind`: create, join, resume) and is about to send `joined`.

    The socket's first join is timed from the socket's opening (`opened_at`),
    later ones from their frame.
    """
    now = time.monotonic()
    join = _join.get()
    started = opened_at if opened_at is not None else join.started if join is not None else now
    seconds = now - started
    if join is not None:
        join.done = True
    metrics.JOINS_BY[kind, "ok"].inc()
    metrics.JOIN_SECONDS_BY[kind].observe(seconds)
    _log(
        "join",
        kind=kind,
        outcome="ok",
        room=membership.number,
        peer=membership.peer_id,
        user=user,
        seconds=round(seconds, 6),
    )


def resumed(outcome: str) -> None:
    """A resume token was tried: `resumed`, `expired` (grace over), `invalid`, `replaced`."""
    metrics.RESUMES_BY[outcome].inc()


# --- Messages -------------------------------------------------------------------------------


def forwarded(kind: str) -> None:
    """An offer, answer or candidate goes to its peer (the hot path: a counter, nothing else)."""
    _forwarded[kind].inc()


def refused(socket: Socket, err: p.ClientError) -> None:
    """The consumer answers a frame with `error`."""
    reason = metrics.refusal_reason(err.code)
    _refused[reason].inc()
    if getattr(err, "observed", False):
        return  # a join's refusal: its `join` line says it
    m = socket.membership
    _log(
        "refused",
        reason=reason,
        room=m.number if m else None,
        peer=m.peer_id if m else None,
        user=socket.user_id,
    )


def flooded() -> None:
    """A frame refused by the message rate limit (one notice a second answers them)."""
    _refused["rate_limited"].inc()


def rate_limit_close(socket: Socket, reason: str) -> None:
    """The socket is closed with 4429: `messages` (a flood) or `connections` (too many sockets)."""
    metrics.RATE_LIMIT_CLOSES_BY[reason].inc()
    m = socket.membership
    _log(
        "rate_limit_close",
        reason=reason,
        room=m.number if m else None,
        peer=m.peer_id if m else None,
        user=socket.user_id,
    )


def server_fault() -> None:
    """Inside the consumer's `except`: a fault of ours, answered `server-busy` (already logged)."""
    _refused["server_busy"].inc()
    if infra_metrics.is_redis_error(sys.exception()):
        infra_metrics.REDIS_ERRORS.inc()


# --- Membership ------------------------------------------------------------------------------


def left(*, user: int, was: Membership, reason: str) -> None:
    """A peer of this socket left its room (`reason`: Participant.LeftReason)."""
    _left(user, was, str(reason))


def let_go(*, user: int, was: Membership, code: int) -> None:
    """The server took the seat from this socket: replaced (4409) or expired (1012)."""
    _left(user, was, _LEFT_BY_CODE.get(code, metrics.EXPIRED))


def _left(user: int, was: Membership, reason: str) -> None:
    child = metrics.LEAVES_BY.get(reason)
    if child is not None:
        child.inc()
    _log("leave", reason=reason, room=was.number, peer=was.peer_id, user=user)


def detached(*, user: int, was: Membership) -> None:
    """The socket dropped without a close frame: the seat waits RESUME_GRACE for a resume."""
    _log("detach", room=was.number, peer=was.peer_id, user=user)


def kicked(*, user: int, membership: Membership, target: str) -> None:
    """The room's owner removed peer `target`."""
    _log("kick", room=membership.number, peer=membership.peer_id, user=user, target=target)


def closed_room(*, user: int, membership: Membership) -> None:
    """The room's owner ended the meeting for everyone."""
    _log("close", room=membership.number, peer=membership.peer_id, user=user)


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
    if infra_metrics.is_redis_error(sys.exception()):
        infra_metrics.REDIS_ERRORS.inc()


def redis_unreachable() -> None:
    """The worker's Redis watch found Redis away (once a check, while it lasts)."""
    infra_metrics.REDIS_ERRORS.inc()
