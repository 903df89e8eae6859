"""Every metric the app exports, in one place (docs/operations.md has the table and the queries).

Each worker process has its own figures, on prometheus-client's default
registry, and serves them at `/metrics` (config/metrics.py); Prometheus
scrapes every worker and adds the `instance` label, so `sum()` over the
workers is the site's figure. Names follow Prometheus' conventions: a
`videorooms_` prefix, base units (`_seconds`), `_total` on counters, labels
with a small fixed set of values only (never a room, a peer or a user).

Children of labelled metrics are resolved here, once, into dicts keyed by
the label value: on the signaling hot path a forward costs one dict lookup
and one counter increment, never a `.labels()` call.

What observes what: `signaling/observe.py` for the signaling socket (joins,
forwards, refusals, resumes, leaves, the per-worker gauges), `infra/db.py`
(database calls), `signaling/worker.py` (expiries, Redis errors of the worker's
loops), `accounts/ice.py` (TURN credentials), and the channel layer's flush
(`observe_publish_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

# No `_created` series next to every counter and histogram: twice the series
# for a timestamp nobody queries (rate() copes with restarts by itself).
prometheus_client.disable_created_metrics()

PREFIX = "videorooms_"


def _children(metric: Counter | Histogram, values: Iterable[str]) -> dict[str, object]:
    """Every child of a one-label metric, created now, so each series exists from the start at 0."""
    return {value: metric.labels(value) for value in values}


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


def gauge_from(gauge: Gauge, read: Callable[[], float]) -> None:
    """Have `gauge` read its value from `read()` at every scrape (nothing to keep up to date)."""
    gauge.set_function(read)


# --- Joins ---------------------------------------------------------------------------------

JOIN_KINDS = ("create", "join", "resume")
JOIN_OUTCOMES = (
    "ok",
    "full",
    "locked",
    "bad_pin",
    "not_found",
    "closed",
    "rate_limited",
    "invalid",
    "replaced",
    "error",
)
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
JOIN_SECONDS_BY = _children(JOIN_SECONDS, JOIN_KINDS)

RESUME_OUTCOMES = ("resumed", "expired", "invalid", "replaced")
RESUMES = Counter(
    "videorooms_resumes",
    "Joins carrying a resume token, by what became of the token.",
    ["outcome"],
)
RESUMES_BY = _children(RESUMES, RESUME_OUTCOMES)

# --- Messages -------------------------------------------------------------------------------

FORWARD_TYPES = ("offer", "answer", "candidate", "handover")
FORWARDED = Counter(
    "videorooms_forwarded_messages",
    "Signaling messages (offer, answer, candidate) handed to the channel layer for their peer.",
    ["type"],
)
FORWARDED_BY = _children(FORWARDED, FORWARD_TYPES)

# The protocol's error codes (rooms/protocol.py ERROR_CODES), with underscores.
REFUSAL_REASONS = (
    "bad_message",
    "too_large",
    "rate_limited",
    "room_not_found",
    "room_closed",
    "room_full",
    "room_locked",
    "bad_pin",
    "not_in_room",
    "already_in_room",
    "unknown_peer",
    "forbidden",
    "server_busy",
    "sfu_unavailable",
    "pin_locked",
)
REFUSED = Counter(
    "videorooms_refused_frames",
    "Frames the server did not act on, by the error code it answered (or would have: a"
    " flood's frames are refused without an answer each).",
    ["reason"],
)
REFUSED_BY = _children(REFUSED, REFUSAL_REASONS)

LEAVE_REASONS = (
    "left",
    "disconnected",
    "kicked",
    "closed",
    "signed-out",
    "replaced",
    "expired",
)
LEAVES = Counter(
    "videorooms_leaves",
    "Peers of this worker's sockets that left their room, by reason.",
    ["reason"],
)
LEAVES_BY = _children(LEAVES, LEAVE_REASONS)

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
RATE_LIMIT_CLOSES_BY = _children(RATE_LIMIT_CLOSES, RATE_LIMIT_CLOSE_REASONS)

# --- Dependencies -----------------------------------------------------------------------------

REDIS_ERRORS = Counter(
    "videorooms_redis_errors",
    "Redis failures met by this worker: a signaling request, a worker loop, the Redis watch.",
)
DATABASE_ERRORS = Counter(
    "videorooms_database_errors",
    "Database calls from async code (infra/db.py) that raised a database error.",
)
DATABASE_SECONDS = Histogram(
    "videorooms_database_call_duration_seconds",
    "Seconds a database call from async code takes, waiting for a database thread included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
PUBLISH_BATCH = Histogram(
    "videorooms_channel_layer_publish_batch_messages",
    "Messages the channel layer wrote to Redis in one pipeline.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
TURN_CREDENTIALS = Counter(
    "videorooms_turn_credentials_issued",
    "TURN credentials handed to clients (accounts/ice.py).",
)


def observe_publish_batch(size: int) -> None:
    """Record one channel-layer flush of `size` messages (called by the layer's flusher)."""
    PUBLISH_BATCH.observe(size)


def is_redis_error(error: BaseException | None) -> bool:
    import redis.exceptions

    return isinstance(error, redis.exceptions.RedisError)


def exported_names() -> set[str]:
    """Every series name this module exports (counters with `_total`, histograms' three)."""
    names: set[str] = set()
    for metric in prometheus_client.REGISTRY.collect():
        if not metric.name.startswith(PREFIX):
            continue
        names.update(sample.name for sample in metric.samples)
        if metric.type == "counter":
            names.add(metric.name + "_total")
        elif metric.type == "histogram":
            names.update(metric.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(metric.name)
    return names


def exposition() -> bytes:
    """This process's metrics in Prometheus' text format."""
    return prometheus_client.generate_latest(prometheus_client.REGISTRY)


CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
