"""The metrics (infra/metrics.py, signaling/metrics.py) and their endpoint (config/metrics.py)."""

from __future__ import annotations

import re

import pytest
from channels.testing import HttpCommunicator
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from accounts import ice
from config.asgi import application
from infra import metrics
from infra.db import db_call
from rooms import protocol as p
from signaling import metrics as signaling_metrics

NAME_RE = re.compile(r"videorooms_[a-z_]+")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def get(path: str = "/metrics", *, method: str = "GET", headers=()) -> dict:
    communicator = HttpCommunicator(
        application, method, path, headers=[(b"host", b"10.0.0.7:8000"), *headers]
    )
    # Channels' default of 1 s is too short for Django's 404 page on a loaded machine.
    return await communicator.get_response(timeout=30)


def test_names_follow_prometheus_conventions():
    """Every metric is listed with its type; counters end in _total, durations in _seconds."""
    families = [m for m in REGISTRY.collect() if m.name.startswith("videorooms_")]
    assert {(f.name, f.type) for f in families} == {
        ("videorooms_sockets_open", "gauge"),
        ("videorooms_peers", "gauge"),
        ("videorooms_rooms_occupied", "gauge"),
        ("videorooms_joins", "counter"),
        ("videorooms_join_duration_seconds", "histogram"),
        ("videorooms_resumes", "counter"),
        ("videorooms_forwarded_messages", "counter"),
        ("videorooms_refused_frames", "counter"),
        ("videorooms_leaves", "counter"),
        ("videorooms_peers_expired", "counter"),
        ("videorooms_rate_limit_closes", "counter"),
        ("videorooms_redis_errors", "counter"),
        ("videorooms_database_errors", "counter"),
        ("videorooms_database_call_duration_seconds", "histogram"),
        ("videorooms_channel_layer_publish_batch_messages", "histogram"),
        ("videorooms_turn_credentials_issued", "counter"),
    }
    for family in families:
        assert NAME_RE.fullmatch(family.name), family.name
        if family.type == "counter":
            assert {s.name for s in family.samples} == {family.name + "_total"}
        if "duration" in family.name:
            assert family.name.endswith("_seconds"), family.name


def test_refusal_reasons_are_the_protocol_codes():
    """The refusal label's values are exactly the protocol's error codes."""
    assert set(signaling_metrics.REFUSAL_REASONS) == {c.replace("-", "_") for c in p.ERROR_CODES}


async def test_metrics_endpoint_answers_a_direct_scrape(settings):
    """A scrape straight to the worker (any Host, plain http) gets the text format."""
    settings.BEHIND_PROXY = True
    settings.SECURE_SSL_REDIRECT = True
    response = await get()
    assert response["status"] == 200
    headers = dict(response["headers"])
    assert headers[b"content-type"].startswith(b"text/plain; version=")
    names = {f.name for f in text_string_to_metric_families(response["body"].decode())}
    assert {"videorooms_sockets_open", "videorooms_joins", "process_cpu_seconds"} <= names


@pytest.mark.parametrize("header", [b"x-forwarded-for", b"X-Forwarded-For", b"forwarded"], ids=str)
async def test_metrics_endpoint_refuses_what_came_through_the_proxy(settings, header):
    """Behind the proxy, a request the proxy handed on (X-Forwarded-For, Forwarded) gets 404."""
    settings.BEHIND_PROXY = True
    response = await get(headers=[(header, b"203.0.113.9")])
    assert response["status"] == 404
    assert b"videorooms_" not in response["body"]


async def test_metrics_endpoint_only_reads(settings):
    """POST gets 405; /metrics/ and other spellings are Django's pages, not the metrics."""
    assert (await get(method="POST"))["status"] == 405
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["10.0.0.7"]
    for path in ("/metrics/", "//metrics", "/metricsx"):
        response = await get(path)
        assert response["status"] in (301, 404), path
        assert b"videorooms_" not in response["body"], path


def test_turn_credentials_are_counted(settings):
    """Each TURN credential handed out counts once."""
    settings.TURN_URLS = ["turn:turn.example.org:3478"]
    settings.TURN_SECRET = "s" * 32
    before = value("videorooms_turn_credentials_issued_total")
    ice.seated_ice(user_id=1, address="198.51.100.1", now=1_800_000_000)
    ice.seated_ice(user_id=2, address="198.51.100.1", now=1_800_000_000)
    ice.session_ice()  # STUN only: no credential
    assert value("videorooms_turn_credentials_issued_total") - before == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
async def test_database_calls_are_timed_and_their_errors_counted():
    """db_call observes every call's duration; a database error counts once."""
    from django.db import connection

    def ok() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    def broken() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    calls = value("videorooms_database_call_duration_seconds_count")
    errors = value("videorooms_database_errors_total")
    assert await db_call(ok)() == 1
    with pytest.raises(Exception, match="no_such_table"):
        await db_call(broken)()
    assert value("videorooms_database_call_duration_seconds_count") - calls == 2
    assert value("videorooms_database_errors_total") - errors == 1


def test_publish_batches_are_observed():
    """The channel layer's flush reports its batch size into the histogram."""
    count = value("videorooms_channel_layer_publish_batch_messages_count")
    small = value("videorooms_channel_layer_publish_batch_messages_bucket", le="1.0")
    metrics.observe_publish_batch(1)
    metrics.observe_publish_batch(40)
    assert value("videorooms_channel_layer_publish_batch_messages_count") - count == 2
    assert value("videorooms_channel_layer_publish_batch_messages_bucket", le="1.0") - small == 1
