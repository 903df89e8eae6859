"""deploy/grafana/videorooms.json: valid, and every metric it charts is one the app exports.

tests/integration/test_prometheus.py also runs each of its queries against a
real Prometheus scraping two real workers, and every one must return data.
"""

from __future__ import annotations

import json
import re

from prometheus_client import REGISTRY

import signaling.runtime  # noqa: F401 - registers the per-worker gauges, as a worker does
from infra import metrics
from tests.deploy.procs import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "videorooms.json"
# A metric name in an expression: not a function or keyword, followed by a selector,
# a range, an aggregation's end or the end.
METRIC = re.compile(r"\b((?:videorooms|process|python)_[a-z0-9_]+|up)\b(?=\s*[{\[)]|\s*$)")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def expressions() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", ())]


def app_series() -> set[str]:
    """Every series name the app's /metrics has, with the samples' suffixes."""
    names = metrics.exported_names()
    for family in REGISTRY.collect():
        names.update(sample.name for sample in family.samples)
    return names


def test_dashboard_is_a_grafana_dashboard():
    """Valid JSON with a uid, unique panel ids, and every query on the chosen Prometheus."""
    board = dashboard()
    assert board["uid"] == "videorooms"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    charts = [p for p in board["panels"] if p["type"] != "row"]
    assert len(charts) == 19
    for panel in charts:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]


def test_dashboard_covers_what_an_operator_looks_at():
    """Sockets, people, rooms, joins, join p50/p95, forwards, refusals, resumes, expiries, DB."""
    text = "\n".join(expressions())
    for needle in (
        "sum(videorooms_sockets_open)",
        "sum(videorooms_peers)",
        "sum(videorooms_rooms_occupied)",
        "sum by (outcome) (rate(videorooms_joins_total[",
        "histogram_quantile(0.5, sum by (le) (rate(videorooms_join_duration_seconds_bucket[",
        "histogram_quantile(0.95, sum by (le) (rate(videorooms_join_duration_seconds_bucket[",
        "rate(videorooms_forwarded_messages_total[",
        "rate(videorooms_refused_frames_total[",
        "rate(videorooms_resumes_total[",
        "rate(videorooms_peers_expired_total[",
        "histogram_quantile(0.95, sum by (le) (rate(videorooms_database_call_duration_seconds",
        "rate(videorooms_redis_errors_total[",
        "rate(videorooms_database_errors_total[",
    ):
        assert needle in text, needle


def test_every_metric_on_the_dashboard_is_exported():
    """Each metric name in the queries is a series the app exports (or Prometheus' own `up`)."""
    exported = app_series() | {"up"}
    used = {name for expr in expressions() for name in METRIC.findall(expr)}
    assert used - exported == set()
    assert {n for n in used if n.startswith("videorooms_")} == {
        "videorooms_sockets_open",
        "videorooms_peers",
        "videorooms_rooms_occupied",
        "videorooms_joins_total",
        "videorooms_join_duration_seconds_bucket",
        "videorooms_resumes_total",
        "videorooms_forwarded_messages_total",
        "videorooms_refused_frames_total",
        "videorooms_rate_limit_closes_total",
        "videorooms_leaves_total",
        "videorooms_peers_expired_total",
        "videorooms_redis_errors_total",
        "videorooms_database_errors_total",
        "videorooms_database_call_duration_seconds_bucket",
        "videorooms_database_call_duration_seconds_count",
        "videorooms_channel_layer_publish_batch_messages_bucket",
        "videorooms_turn_credentials_issued_total",
    }
