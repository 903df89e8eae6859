"""The compose stack's own pieces, run natively and wired as docker-compose.yml wires them.

PostgreSQL (a fresh database on the local server) and a private Redis stand
in for the `postgres` and `redis` services. Two `web` workers are started by
the real deploy/entrypoint at the same moment (so the migration lock is
exercised), Caddy runs this repo's Caddyfile for https://localhost with its
internal CA, and coturn runs this repo's turnserver.conf through
deploy/coturn-entrypoint with Caddy's certificate for TLS. The only
differences from compose: loopback addresses and free ports, a static
upstream list instead of Docker's DNS, and STATIC_MANIFEST=false (the image
collects static files at build time; tests must not write into the repo).
Everything the tests send goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from accounts.ice import turn_password
from tests.deploy import turnclient
from tests.deploy.procs import (
    PYTHON,
    REPO,
    Process,
    clean_environ,
    free_port,
    http_status,
    make_env,
    processes,
    require,
    wait_for,
)
from tests.deploy.test_turn import start_coturn

pytestmark = pytest.mark.slow

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
BOB_PASSWORD = "a long passphrase for bob"


@dataclass
class Stack:
    env: dict[str, str]
    workers: list[Process]
    worker_ports: list[int]
    caddy: Process
    https_port: int
    http_port: int
    turn_port: int
    turn_tls_port: int
    tls: ssl.SSLContext

    def https(self, method: str, path: str, body: Any = None, headers=None):
        """One request through Caddy; returns (status, headers, parsed JSON or text)."""
        conn = http.client.HTTPSConnection(
            "localhost", self.https_port, context=self.tls, timeout=10
        )
        try:
            data = json.dumps(body).encode() if body is not None else None
            all_headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            raw = response.read().decode()
            with contextlib.suppress(ValueError):
                return response.status, response, json.loads(raw)
            return response.status, response, raw
        finally:
            conn.close()

    def login(self, username: str, password: str) -> tuple[dict, str]:
        status, response, config = self.https(
            "POST", "/api/auth/login", {"username": username, "password": password}
        )
        assert status == 200, config
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
        return config, cookies["sessionid"].value

    def ws_counts(self) -> list[int]:
        return [w.output.count('"WSCONNECT /ws/signaling/"') for w in self.workers]


@contextlib.contextmanager
def postgres_database() -> str:
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    name = f"deploy_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgres://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def https_answers(port: int, tls: ssl.SSLContext) -> bool:
    conn = http.client.HTTPSConnection("localhost", port, context=tls, timeout=3)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Stack:
    require("caddy", "turnserver", "redis-server")
    tmp = tmp_path_factory.mktemp("stack")
    logs = tmp / "logs"
    logs.mkdir()
    dotenv = make_env(tmp / "project", "localhost")
    coturn_runtime: Path | None = None
    with postgres_database() as database_url, processes(logs) as start:
        # --- redis (compose: `redis`) --------------------------------------------
        redis_port = free_port()
        redis = start(
            "redis",
            [
                *("redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            clean_environ(),
        )
        wait_for("redis", lambda: redis_answers(redis_port), procs=(redis,))

        # --- web x2 (compose: `web`, env_file .env + environment) -----------------
        env = {
            **clean_environ(),
            **dotenv,
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "BEHIND_PROXY": "true",
            "STATIC_MANIFEST": "false",
            "PYTHON": PYTHON,
            "PYTHONUNBUFFERED": "1",
            "DAPHNE_BIND": "127.0.0.1",
        }
        worker_ports = [free_port(), free_port()]
        workers = [
            start(
                f"web{i}", [str(REPO / "deploy" / "entrypoint")], {**env, "DAPHNE_PORT": str(port)}
            )
            for i, port in enumerate(worker_ports, 1)
        ]
        for port in worker_ports:
            wait_for(
                f"worker :{port} /readyz",
                lambda port=port: http_status(port, "/readyz") == 200,
                timeout=90,
                procs=tuple(workers),
            )

        # A one-off command through the entrypoint, as `docker compose run web ...`.
        code = (
            "from django.contrib.auth import get_user_model; "
            f"get_user_model().objects.create_user('bob', password={BOB_PASSWORD!r})"
        )
        subprocess.run(
            [str(REPO / "deploy" / "entrypoint"), PYTHON, "manage.py", "shell", "-c", code],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            timeout=120,
        )

        # --- proxy (compose: `proxy`) ----------------------------------------------
        https_port, http_port = free_port(), free_port()
        caddy_home = tmp / "caddy"
        caddy_env = {
            **clean_environ(),
            "DOMAIN": "localhost",
            "HTTPS_PORT": str(https_port),
            "HTTP_PORT": str(http_port),
            "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
            "WEB_UPSTREAMS": "to " + " ".join(f"127.0.0.1:{p}" for p in worker_ports),
            "HOME": str(caddy_home),
            "XDG_DATA_HOME": str(caddy_home / "data"),
            "XDG_CONFIG_HOME": str(caddy_home / "config"),
        }
        caddy = start(
            "caddy",
            ["caddy", "run", "--config", str(REPO / "deploy/Caddyfile"), "--adapter", "caddyfile"],
            caddy_env,
        )
        caddy_data = caddy_home / "data" / "caddy"
        root_cert = caddy_data / "pki" / "authorities" / "local" / "root.crt"
        wait_for("Caddy's internal CA", root_cert.exists, procs=(caddy,))
        tls = ssl.create_default_context(cafile=str(root_cert))
        wait_for("https://localhost", lambda: https_answers(https_port, tls), procs=(caddy,))

        # --- coturn (compose: `coturn`, reading Caddy's certificate) ------------------
        coturn, turn_port, turn_tls_port, coturn_runtime = start_coturn(
            start, secret=dotenv["TURN_SECRET"], caddy_data=caddy_data, wait_tls=30
        )
        try:
            yield Stack(
                env=env,
                workers=workers,
                worker_ports=worker_ports,
                caddy=caddy,
                https_port=https_port,
                http_port=http_port,
                turn_port=turn_port,
                turn_tls_port=turn_tls_port,
                tls=tls,
            )
        finally:
            coturn.stop()
            shutil.rmtree(coturn_runtime, ignore_errors=True)
            for worker in workers:
                worker.stop()  # before the database is dropped


def test_workers_migrate_once_under_the_lock(stack):
    """Two workers starting together: one applies the migrations and creates the admin."""
    outputs = [w.output for w in stack.workers]
    assert sum("Applying " in out for out in outputs) == 1, outputs
    assert sum("No migrations to apply" in out for out in outputs) == 1, outputs
    assert sum("created the admin user 'admin'" in out for out in outputs) == 1, outputs


def test_compose_healthcheck_script(stack):
    """deploy/healthcheck (the `web` healthcheck) passes on a live worker, fails on a dead port."""

    def run(port: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PYTHON, str(REPO / "deploy" / "healthcheck"), "/readyz"],
            env={**stack.env, "DAPHNE_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert run(stack.worker_ports[0]).returncode == 0
    dead = run(free_port())
    assert dead.returncode == 1
    assert "healthcheck:" in dead.stderr


def test_http_redirects_to_https(stack):
    """Plain HTTP on the proxy is redirected to HTTPS."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=5)
    try:
        conn.request("GET", "/accounts/login/", headers={"Host": "localhost"})
        response = conn.getresponse()
    finally:
        conn.close()
    assert response.status in (301, 308)
    assert response.getheader("Location").startswith("https://localhost")


def test_https_login_returns_production_session_config(stack):
    """HTTPS login through Caddy: secure session cookie, HSTS, wss:// URL, STUN (no TURN: that
    comes to a seated socket)."""
    status, response, config = stack.https(
        "POST",
        "/api/auth/login",
        {"username": "admin", "password": stack.env["DJANGO_SUPERUSER_PASSWORD"]},
    )
    assert status == 200, config
    assert config["user"]["username"] == "admin"
    assert config["signaling"]["url"] == "wss://localhost/ws/signaling/"
    assert config["iceServers"] == [{"urls": [stack.env["STUN_URLS"]]}]
    assert config["expiresAt"] is None
    assert "max-age=31536000" in response.getheader("Strict-Transport-Security")
    cookie = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie"):
        cookie.load(header)
    assert cookie["sessionid"]["secure"]
    assert cookie["sessionid"]["httponly"]


def test_readyz_through_the_proxy(stack):
    """/readyz passes through Caddy with real PostgreSQL and Redis."""
    status, _response, body = stack.https("GET", "/readyz")
    assert status == 200
    assert body == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}


async def receive_type(ws, wanted: str, timeout: float = 10) -> dict:
    """Next message of type `wanted`, skipping others (presence, pongs)."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == wanted:
                return message
            assert message["type"] != "error", message


async def test_wss_signaling_between_workers(stack):
    """Two clients on different workers, over wss:// through Caddy: create, join, offer."""
    _, alice_sid = stack.login("admin", stack.env["DJANGO_SUPERUSER_PASSWORD"])
    _, bob_sid = stack.login("bob", BOB_PASSWORD)
    url = f"wss://localhost:{stack.https_port}/ws/signaling/"
    origin = f"https://localhost:{stack.https_port}"

    def open_ws(sid: str):
        return connect(
            url, ssl=stack.tls, origin=origin, additional_headers={"Cookie": f"sessionid={sid}"}
        )

    async with contextlib.AsyncExitStack() as sockets:
        before = stack.ws_counts()
        alice = await sockets.enter_async_context(open_ws(alice_sid))
        await alice.send(json.dumps({"type": "create", "id": "c1"}))
        created = await receive_type(alice, "joined")
        assert created["created"] is True
        assert created["re"] == "c1"
        room = created["room"]["number"]
        after = stack.ws_counts()
        alice_worker = next(i for i in range(2) if after[i] > before[i])

        # Round robin sends the next connection to the other worker; check, and retry if not.
        for _attempt in range(4):
            before = stack.ws_counts()
            bob = await open_ws(bob_sid).__aenter__()
            await bob.send(json.dumps({"type": "join", "room": room, "id": "j1"}))
            joined = await receive_type(bob, "joined")
            after = stack.ws_counts()
            if after[1 - alice_worker] > before[1 - alice_worker]:
                sockets.push_async_exit(bob)
                break
            # Leave explicitly: a bare disconnect keeps the seat for the resume grace period.
            await bob.send(json.dumps({"type": "leave"}))
            await bob.close()
            await receive_type(alice, "peer-left")
        else:
            pytest.fail("could not reach the second worker through Caddy")

        assert joined["re"] == "j1"
        assert [p["peerId"] for p in joined["peers"]] == [created["peerId"]]
        peer_joined = await receive_type(alice, "peer-joined")
        assert peer_joined["peer"]["peerId"] == joined["peerId"]

        sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        await bob.send(json.dumps({"type": "offer", "to": created["peerId"], "sdp": sdp}))
        offer = await receive_type(alice, "offer")
        assert offer["from"] == joined["peerId"]
        assert offer["sdp"] == sdp

        await alice.send(json.dumps({"type": "answer", "to": joined["peerId"], "sdp": sdp}))
        answer = await receive_type(bob, "answer")
        assert answer["from"] == created["peerId"]


async def test_wss_refuses_other_origins_through_the_proxy(stack):
    """Through Caddy only https://localhost:PORT opens the socket; http or another port: 403."""
    _, sid = stack.login("bob", BOB_PASSWORD)
    url = f"wss://localhost:{stack.https_port}/ws/signaling/"
    for origin in (
        f"http://localhost:{stack.https_port}",
        f"https://localhost:{stack.http_port}",
        # (https://localhost itself is CSRF_TRUSTED_ORIGINS here: DOMAIN=localhost.)
        "https://127.0.0.1",
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                url, ssl=stack.tls, origin=origin, additional_headers={"Cookie": f"sessionid={sid}"}
            ):
                pass
        assert refused.value.response.status_code == 403, origin


async def seated_turn_entry(stack: Stack) -> dict:
    """Bob's TURN entry, as a socket seated in a room gets it (over wss:// through Caddy)."""
    _, sid = stack.login("bob", BOB_PASSWORD)
    async with connect(
        f"wss://localhost:{stack.https_port}/ws/signaling/",
        ssl=stack.tls,
        origin=f"https://localhost:{stack.https_port}",
        additional_headers={"Cookie": f"sessionid={sid}"},
    ) as ws:
        await ws.send(json.dumps({"type": "create", "id": "c1"}))
        joined = await receive_type(ws, "joined")
        await ws.send(json.dumps({"type": "close"}))
    return next(s for s in joined["ice"]["iceServers"] if "username" in s)


async def test_turn_credential_of_a_seat_allocates(stack):
    """The TURN credential a seated socket gets allocates a relay on coturn (UDP and TLS); its
    quota pool is the client address Caddy passed on."""
    turn = await seated_turn_entry(stack)
    assert turn["urls"] == stack.env["TURN_URLS"].split(",")
    assert turn["username"].split(":", 1)[1] == "127.0.0.1"
    with turnclient.TurnClient("127.0.0.1", stack.turn_port) as client:
        assert client.allocate(turn["username"], turn["credential"])[0] == "127.0.0.1"
        assert client.realm == "localhost"
        for peer in ("127.0.0.1", "10.0.0.1"):
            with pytest.raises(turnclient.TurnError) as exc:
                client.create_permission(peer)
            assert exc.value.code == 403, peer
        client.release()
    # TURN over TLS on the TLS port, with the certificate coturn took from Caddy.
    raw = socket.create_connection(("127.0.0.1", stack.turn_tls_port), timeout=5)
    stream = stack.tls.wrap_socket(raw, server_hostname="localhost")
    with turnclient.TurnClient(stream=stream) as client:
        assert client.allocate(turn["username"], turn["credential"])[0] == "127.0.0.1"
        client.release()


async def test_turn_rejects_forged_and_expired_credentials(stack):
    """A tampered password, or a correctly signed but expired one, gets 401."""
    turn = await seated_turn_entry(stack)
    pool = turn["username"].split(":", 1)[1]
    expired = f"{int(time.time()) - 60}:{pool}"
    cases = [
        (turn["username"], turn_password(secret="forged", username=turn["username"])),
        (expired, turn_password(secret=stack.env["TURN_SECRET"], username=expired)),
    ]
    for username, password in cases:
        with (
            turnclient.TurnClient("127.0.0.1", stack.turn_port) as client,
            pytest.raises(turnclient.TurnError) as exc,
        ):
            client.allocate(username, password)
        assert exc.value.code == 401, username


def test_metrics_are_for_the_internal_network_only(stack):
    """Through Caddy /metrics is 404; straight to a worker it is served, unless proxied."""
    for path in ("/metrics", "/metrics/", "/METRICS", "/%6detrics", "/metrics?x=1"):
        status, _response, body = stack.https("GET", path)
        assert status == 404, path
        assert "videorooms_" not in str(body), path
    port = stack.worker_ports[0]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        # As Prometheus asks: the worker's address as Host, plain http.
        conn.request("GET", "/metrics", headers={"Host": f"127.0.0.1:{port}"})
        response = conn.getresponse()
        assert response.status == 200
        assert b"videorooms_sockets_open " in response.read()
        # A proxy that forgot the Caddyfile's rule still sets X-Forwarded-For.
        conn.request("GET", "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        response = conn.getresponse()
        assert response.status == 404
        assert b"videorooms_" not in response.read()
    finally:
        conn.close()
