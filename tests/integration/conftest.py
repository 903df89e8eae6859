"""Real processes for the multi-worker tests: PostgreSQL, Redis and daphne workers.

Each test run gets its own PostgreSQL database and its own channel-layer
prefix on the shared Redis, so runs on one machine never hear each other.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, *, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback URL
                return
        except urllib.error.HTTPError:
            return  # the server answered
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class Stack:
    env: dict[str, str]
    workers: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def create_users(self, *usernames: str, superusers: tuple[str, ...] = ()) -> None:
        """Create users (password PASSWORD) in one process start: Django boots slowly."""
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model as g\n"
            f"for name in {list(usernames)!r}:\n"
            f"    make = g().objects.create_superuser if name in {list(superusers)!r} "
            "else g().objects.create_user\n"
            f"    make(name, name + '@example.org', {PASSWORD!r})",
        )

    def create_user(self, username: str, *, superuser: bool = False) -> None:
        self.create_users(username, superusers=(username,) if superuser else ())

    def start_worker(self) -> str:
        port = free_port()
        log = open(ROOT / "var" / f"daphne-{port}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log = log
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/accounts/login/", proc=proc)
        self.workers.append(base)
        return base


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Two daphne workers sharing a fresh PostgreSQL database and the real Redis."""
    (ROOT / "var").mkdir(exist_ok=True)
    dbname = f"vr_it_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    redis.Redis.from_url(REDIS_URL).ping()  # fail now, loudly, if Redis is not there
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "integration-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}",
        "REDIS_URL": REDIS_URL,
        "CHANNEL_LAYER_PREFIX": f"it-{uuid.uuid4().hex[:8]}",
        "STATIC_MANIFEST": "false",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("TURN_URLS", "TURN_SECRET", "STUN_URLS", "SIGNALING_URL", "DOMAIN"):
        env.pop(name, None)
    s = Stack(env=env)
    try:
        s.manage("migrate", "--noinput")
        s.start_worker()
        s.start_worker()
        yield s
    finally:
        for proc in s.procs:
            proc.terminate()
        for proc in s.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            proc.log.close()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


class HttpSession:
    """A logged-in browser-like HTTP client: cookies, CSRF header, JSON."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def request(
        self, method: str, path: str, *, json_body: Any = None, form: dict | None = None
    ) -> tuple[int, bytes]:
        headers = {"Referer": self.base + "/"}
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if method != "GET" and self.cookie("csrftoken"):
            headers["X-CSRFToken"] = self.cookie("csrftoken")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with self.opener.open(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def login(self, username: str) -> dict[str, Any]:
        status, body = self.request(
            "POST", "/api/auth/login", json_body={"username": username, "password": PASSWORD}
        )
        assert status == 200, body
        return json.loads(body)

    def ws_headers(self) -> dict[str, str]:
        return {"Cookie": f"sessionid={self.cookie('sessionid')}"}


@pytest.fixture
def http_session():
    return HttpSession
