"""Real Prometheus scraping two real workers: the site's figures are sums of what the sockets did.

Debian's `prometheus` runs with deploy/prometheus.yml as the deployment has
it, rendered with two changes only: a 1 s scrape interval (and timeout), and
the two test workers' 127.0.0.1 ports instead of DNS discovery of `web`. It
listens on 127.0.0.1 and scrapes nothing else. The test waits on barriers,
never on time: after each step it polls Prometheus' query API until both
workers have a sample from a scrape that began after the step's last answer,
then compares `sum(...)` over both workers with what it did. The workers log
JSON lines (LOG_FORMAT=json), read back at the end.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, free_port, wait_http

pytestmark = pytest.mark.slow

PIN = "730519284617"
WRONG_PIN = "730519284618"
SDP = "v=0\r\no=- 7305192846 2 IN IP4 198.51.100.77\r\ns=-\r\nt=0 0\r\n"
INSTALL = "apt-get install -y prometheus"


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(f"Debian's prometheus is needed for this test: {INSTALL}")
    return binary


def render_config(targets: list[str]) -> str:
    """deploy/prometheus.yml with a 1 s scrape interval and `targets` in place of DNS discovery."""
    text = (ROOT / "deploy" / "prometheus.yml").read_text()
    swaps = [
        (r"  scrape_interval: 15s\n", "  scrape_interval: 1s\n"),
        (r"  scrape_timeout: 10s\n", "  scrape_timeout: 1s\n"),
        (
            r"    dns_sd_configs:\n(?:      .*\n)+",
            "    static_configs:\n      - targets: [" + ", ".join(targets) + "]\n",
        ),
    ]
    for pattern, replacement in swaps:
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, pattern
    return text


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    def api(self, path: str, **params: str) -> object:
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def by(self, expr: str, label: str) -> dict[str, float]:
        """`expr`'s series as {label value: value}, zeros left out."""
        out = {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}
        return {k: v for k, v in out.items() if v != 0}

    def scalar(self, expr: str) -> float:
        [result] = self.query(expr)
        return float(result["value"][1])

    async def scraped_after(self, moment: float, *, timeout: float = 20) -> float:
        """Wait until both workers have a sample from a scrape that began after `moment`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            result = self.query("timestamp(videorooms_sockets_open)")
            if len(result) == 2 and min(float(r["value"][1]) for r in result) > moment:
                return time.monotonic() - started
            await asyncio.sleep(0.05)
        raise AssertionError(f"no scrape of both workers after {moment} within {timeout}s")


@pytest.fixture
def prometheus_for(tmp_path):
    """Start Debian's prometheus on the repo's config, scraping the given worker bases."""
    procs: list[subprocess.Popen] = []

    def start(bases: list[str]) -> Prometheus:
        binary = prometheus_binary()
        config = tmp_path / "prometheus.yml"
        config.write_text(render_config([b.removeprefix("http://") for b in bases]))
        port = free_port()
        log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log = log
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/-/ready", proc=proc)
        return Prometheus(base)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.log.close()


def dashboard_queries() -> list[str]:
    board = json.loads((ROOT / "deploy" / "grafana" / "videorooms.json").read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", ())]


def signaling_lines(logs: str) -> list[dict]:
    out = []
    for line in logs.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record["logger"] == "rooms.signaling":
                out.append(record)
    return out


async def test_prometheus_sums_what_two_workers_did(make_stack, ws_connect, prometheus_for):
    """Sockets, people, rooms, joins by outcome, forwards and refusals, summed over two workers."""
    began = time.monotonic()
    stack = make_stack(LOG_FORMAT="json")
    w1, w2 = stack.workers
    prom = prometheus_for([w1, w2])
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]
    sessions = dict(zip(names, stack.sessions(len(names)), strict=True))
    ids = {
        name: stack.sql("SELECT id FROM auth_user WHERE username = %s", username)[0][0]
        for name, (username, _) in sessions.items()
    }
    home = {"alice": w1, "bob": w2, "carol": w2, "dave": w1, "erin": w1, "frank": w2, "grace": w1}
    ws = {name: await ws_connect(home[name], sessions[name][1]) for name in names}

    # Joins on both workers: two rooms, some refused.
    first = (await ws["alice"].create(pin=PIN))["room"]["number"]
    assert (await ws["bob"].join(first, pin=PIN))["type"] == "joined"
    assert (await ws["carol"].join(first, pin=WRONG_PIN))["code"] == "bad-pin"
    missing = "100000001" if first != "100000001" else "100000002"
    assert (await ws["dave"].join(missing))["code"] == "room-not-found"
    assert (await ws["erin"].join(first))["code"] == "bad-pin"
    second = (await ws["frank"].create())["room"]["number"]
    assert (await ws["grace"].join(second))["type"] == "joined"
    # Signaling across the workers: bob (w2) and alice (w1).
    alice, bob = ws["alice"], ws["bob"]
    await alice.next("peer-joined")
    await bob.send({"type": "offer", "to": alice.peer_id, "sdp": SDP})
    await alice.next("offer")
    await alice.send({"type": "answer", "to": bob.peer_id, "sdp": SDP})
    await bob.next("answer")
    for _ in range(2):
        await bob.send({"type": "candidate", "to": alice.peer_id, "candidate": None})
        await alice.next("candidate")
    waited = [await prom.scraped_after(time.time())]

    assert prom.scalar("sum(videorooms_sockets_open)") == 7
    assert prom.scalar("sum(videorooms_peers)") == 4
    assert prom.scalar("sum(videorooms_rooms_occupied)") == 2
    assert prom.by("sum by (outcome) (videorooms_joins_total)", "outcome") == {
        "ok": 4,
        "bad_pin": 2,
        "not_found": 1,
    }
    assert prom.by('sum by (kind) (videorooms_joins_total{outcome="ok"})', "kind") == {
        "create": 2,
        "join": 2,
    }
    per_worker = prom.by("sum by (instance) (videorooms_joins_total)", "instance")
    assert per_worker == {w1.removeprefix("http://"): 4, w2.removeprefix("http://"): 3}
    assert prom.scalar("sum(videorooms_join_duration_seconds_count)") == 4
    assert prom.by("sum by (type) (videorooms_forwarded_messages_total)", "type") == {
        "offer": 1,
        "answer": 1,
        "candidate": 2,
    }
    assert prom.by("sum by (reason) (videorooms_refused_frames_total)", "reason") == {
        "bad_pin": 2,
        "room_not_found": 1,
    }
    assert prom.scalar("sum(videorooms_database_call_duration_seconds_count)") > 0
    assert prom.scalar("sum(videorooms_database_errors_total)") == 0
    assert prom.scalar("sum(videorooms_redis_errors_total)") == 0

    # People go: bob leaves, carol closes her socket, then alice leaves (her room empties).
    await bob.send({"type": "leave"})
    await alice.next("peer-left", peerId=bob.peer_id)
    await ws["carol"].close()
    waited.append(await prom.scraped_after(time.time()))
    assert prom.scalar("sum(videorooms_sockets_open)") == 6
    assert prom.scalar("sum(videorooms_peers)") == 3
    assert prom.scalar("sum(videorooms_rooms_occupied)") == 2
    await alice.send({"type": "leave"})
    assert (await alice.request({"type": "ping"}))["type"] == "pong"
    waited.append(await prom.scraped_after(time.time()))
    assert prom.scalar("sum(videorooms_peers)") == 2
    assert prom.scalar("sum(videorooms_rooms_occupied)") == 1
    assert prom.by("sum by (reason) (videorooms_leaves_total)", "reason") == {"left": 2}

    # Every query of the Grafana dashboard runs and has data.
    for expr in dashboard_queries():
        assert prom.query(expr.replace("$__rate_interval", "1m")), expr

    # The workers' JSON lines: one per join, with the fields; no PIN, no SDP anywhere.
    logs = stack.worker_logs()
    lines = signaling_lines(logs)
    # The two workers' logs one after the other: in order of the users, made in that order.
    joins = sorted(
        (
            {k: v for k, v in line.items() if k not in ("time", "seconds")}
            for line in lines
            if line["event"] == "join"
        ),
        key=lambda line: line["user"],
    )
    peer = {name: client.peer_id for name, client in ws.items()}
    assert joins == [
        {
            "level": "INFO",
            "logger": "rooms.signaling",
            "message": "join",
            "event": "join",
            "kind": kind,
            "outcome": outcome,
            "room": room,
            "peer": peer[name] if outcome == "ok" else None,
            "user": ids[name],
        }
        for name, kind, outcome, room in (
            ("alice", "create", "ok", first),
            ("bob", "join", "ok", first),
            ("carol", "join", "bad_pin", first),
            ("dave", "join", "not_found", missing),
            ("erin", "join", "bad_pin", first),
            ("frank", "create", "ok", second),
            ("grace", "join", "ok", second),
        )
    ]
    leaves = {(line["reason"], line["peer"]) for line in lines if line["event"] == "leave"}
    assert leaves == {("left", peer["bob"]), ("left", peer["alice"])}
    leaked = [s for s in (PIN, WRONG_PIN, "v=0", "198.51.100.77") if s in logs]
    assert leaked == []
    print(
        f"FIGURE prometheus test: {time.monotonic() - began:.1f} s in all; scrape barriers "
        + ", ".join(f"{w:.2f}" for w in waited)
        + " s"
    )


def test_the_rendered_config_changes_only_interval_and_targets():
    """The test's config is deploy/prometheus.yml but for the interval, timeout and targets."""
    original = (ROOT / "deploy" / "prometheus.yml").read_text().splitlines()
    rendered = render_config(["127.0.0.1:1", "127.0.0.1:2"]).splitlines()
    removed = [line for line in original if line not in rendered]
    added = [line for line in rendered if line not in original]
    assert removed == [
        "  scrape_interval: 15s",
        "  scrape_timeout: 10s",
        "    dns_sd_configs:",
        "      - names: [web]",
        "        type: A",
        "        port: 8000",
        "        refresh_interval: 30s",
    ]
    assert added == [
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "    static_configs:",
        "      - targets: [127.0.0.1:1, 127.0.0.1:2]",
    ]
    assert Path(prometheus_binary()).exists()
