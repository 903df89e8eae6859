"""The signaling edge's Prometheus series: sockets, peers, rooms, joins, messages, leaves.

Beside what they measure (signaling/observe.py counts them; the runtime's
registry feeds the gauges, signaling/runtime/worker.py); the shared helpers
and the dependencies' series (Redis, database, publish batches, TURN
credentials) are infra/metrics.py's, which says how they are named and served.

Label values come from the vocabulary they count, not from hand lists: the
leave reasons from `Participant.LeftReason`, the refusals from the
protocol's error codes, the forwards from the relayed message types. A
child per value is made here, once, so each series exists from the start
at 0, and the hot path costs one dict lookup and one increment.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from infra.metrics import children
from rooms import protocol as p
from rooms.models import Participant
from signaling.messages import RELAYED

# --- Signaling sockets and rooms: gauges read at scrape time from the worker's state ---------

SOCKETS_OPEN = Gauge(
    "videorooms_sockets_open",
    "Signed-in signaling sockets open on this worker.",
)
PEERS = Gauge(
    "videorooms_peers",
    "People in a room whose signaling socket is on this worker.",
)
ROOMS_OCCUPIED = Gauge(
    "videorooms_rooms_occupied",
    "Rooms with people in them, each counted by one worker only (the one holding the room's"
    " lowest peer id), so that sum() over the workers is the number of rooms in use.",
)

# --- Joins ---------------------------------------------------------------------------------

JOIN_KINDS = ("create", "join", "resume")
# A join's refusal code -> its outcome label.
JOIN_OUTCOME_BY_CODE = {
    p.ROOM_FULL: "full",
    p.ROOM_LOCKED: "locked",
    p.BAD_PIN: "bad_pin",
    p.ROOM_NOT_FOUND: "not_found",
    p.ROOM_CLOSED_CODE: "closed",
    p.RATE_LIMITED: "rate_limited",
    p.SERVER_BUSY: "error",
}
# "invalid": any other refusal; "replaced": a resume that found its seat taken (4409).
JOIN_OUTCOMES = ("ok", *JOIN_OUTCOME_BY_CODE.values(), "invalid", "replaced")
JOINS = Counter(
    "videorooms_joins",
    "Join requests (create, join, resume) by how they ended.",
    ["kind", "outcome"],
)
JOINS_BY = {
    (kind, outcome): JOINS.labels(kind, outcome) for kind in JOIN_KINDS for outcome in JOIN_OUTCOMES
}
JOIN_SECONDS = Histogram(
    "videorooms_join_duration_seconds",
    "Seconds from a socket's opening (from the join frame for a later join on the same"
    " socket) to its `joined` answer.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOIN_SECONDS_BY = children(JOIN_SECONDS, JOIN_KINDS)

RESUME_OUTCOMES = ("resumed", "expired", "invalid", "replaced")
RESUMES = Counter(
    "videorooms_resumes",
    "Joins carrying a resume token, by what became of the token.",
    ["outcome"],
)
RESUMES_BY = children(RESUMES, RESUME_OUTCOMES)

# --- Messages -------------------------------------------------------------------------------

FORWARD_TYPES = RELAYED
FORWARDED = Counter(
    "videorooms_forwarded_messages",
    "Signaling messages (offer, answer, candidate) handed to the channel layer for their peer.",
    ["type"],
)
FORWARDED_BY = children(FORWARDED, FORWARD_TYPES)


def refusal_reason(code: str) -> str:
    """An error code as a label value (Prometheus' style: underscores)."""
    return code.replace("-", "_")


REFUSAL_REASONS = tuple(sorted(refusal_reason(code) for code in p.ERROR_CODES))
REFUSED = Counter(
    "videorooms_refused_frames",
    "Frames the server did not act on, by the error code it answered (or would have: a"
    " flood's frames are refused without an answer each).",
    ["reason"],
)
REFUSED_BY = children(REFUSED, REFUSAL_REASONS)

# --- Leaves ---------------------------------------------------------------------------------

# A socket's peer taken from it by the server because it expired while the
# socket lived on (closed 1012). Not a `LeftReason`: the database says
# `timeout` for it, which the sweeper's own count is (PEERS_EXPIRED).
EXPIRED = "expired"
LEAVE_REASONS = (
    *(
        reason
        for reason in Participant.LeftReason.values
        if reason != Participant.LeftReason.TIMEOUT
    ),
    EXPIRED,
)
LEAVES = Counter(
    "videorooms_leaves",
    "Peers of this worker's sockets that left their room, by reason.",
    ["reason"],
)
LEAVES_BY = children(LEAVES, LEAVE_REASONS)

PEERS_EXPIRED = Counter(
    "videorooms_peers_expired",
    "Peers whose presence ran out (socket gone past the grace period, or a dead worker's),"
    " expired by this worker's sweeper.",
)

RATE_LIMIT_CLOSE_REASONS = ("messages", "connections")
RATE_LIMIT_CLOSES = Counter(
    "videorooms_rate_limit_closes",
    "Sockets closed with 4429: a message flood, or an account over its open sockets.",
    ["reason"],
)
RATE_LIMIT_CLOSES_BY = children(RATE_LIMIT_CLOSES, RATE_LIMIT_CLOSE_REASONS)
