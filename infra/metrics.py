"""The app's metrics: how they are named and served, the shared helpers, the dependencies' series.

docs/operations.md has the table of every series and the queries.

Each worker process has its own figures, on prometheus-client's default
registry, and serves them at `/metrics` (config/metrics.py); Prometheus
scrapes every worker and adds the `instance` label, so `sum()` over the
workers is the site's figure. Names follow Prometheus' conventions: a
`videorooms_` prefix, base units (`_seconds`), `_total` on counters, labels
with a small fixed set of values only (never a room, a peer or a user).

Children of labelled metrics are resolved once, where the metric is
defined (`children()`), into dicts keyed by the label value: on the
signaling hot path a forward costs one dict lookup and one counter
increment, never a `.labels()` call.

Series live beside what they measure: the signaling edge's (sockets,
peers, rooms, joins, resumes, forwards, refusals, leaves, expiries, rate-limit
closes) in signaling/metrics.py. Here: the shared helpers and the series of
the dependencies, observed by `infra/db.py` (database calls), the signaling
edge and its worker (Redis errors), `accounts/ice.py` (TURN credentials) and
the channel layer's flush (`observe_publish_batch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

# No `_created` series next to every counter and histogram: twice the series
# for a timestamp nobody queries (rate() copes with restarts by itself).
prometheus_client.disable_created_metrics()

PREFIX = "videorooms_"


def children(metric: Counter | Histogram, values: Iterable[str]) -> dict[str, object]:
    """Every child of a one-label metric, created now, so each series exists from the start at 0."""
    return {value: metric.labels(value) for value in values}


def gauge_from(gauge: Gauge, read: Callable[[], float]) -> None:
    """Have `gauge` read its value from `read()` at every scrape (nothing to keep up to date)."""
    gauge.set_function(read)


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
    """Every `videorooms_` series name here (counters with `_total`, histograms' three)."""
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
