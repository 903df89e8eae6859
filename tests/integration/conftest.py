"""Real processes for the multi-worker tests: PostgreSQL, Redis and daphne workers.

Each test run gets its own PostgreSQL database and its own channel-layer
prefix on the shared Redis, so runs on one machine never hear each other.
The fault tests build their own stacks (`make_stack`) with custom settings,
sometimes on a private `redis-server` they may restart (`private_redis`).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import redis.asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def layer_subscribers(layer: Any, channel: str, *, expect: int, within: float = 3) -> int:
    """How many subscribe in Redis to `layer`'s `channel`, waiting up to `within` s for `expect`.

    The layer unsubscribes on its subscription connection and this asks on
    another, so Redis may answer before it has read the command.
    """
    client = redis.asyncio.Redis.from_url(layer.url)
    try:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            [(_, count)] = await client.pubsub_numsub(layer.redis_channel(channel))
            if count == expect or asyncio.get_running_loop().time() > deadline:
                return count
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()


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
    # Worker base URL -> its process, to kill or stop one worker.
    by_base: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return self.env["CHANNEL_LAYER_PREFIX"]

    def redis(self) -> redis.Redis:
        """A client of the Redis this stack's workers use."""
        return redis.Redis.from_url(self.env["REDIS_URL"], decode_responses=True)

    def sql(self, query: str, *params: Any) -> list[tuple]:
        """Run one query against this stack's database (to check what the workers wrote)."""
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description is not None else []

    def sessions(self, count: int) -> list[tuple[str, str]]:
        """Create `count` users with a logged-in session each, in one process: (username, key)."""
        tag = uuid.uuid4().hex[:6]
        out = self.manage(
            "shell",
            "-c",
            "import json\n"
            "from django.contrib.auth import get_user_model\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            "out = []\n"
            f"for i in range({count}):\n"
            f"    u = get_user_model().objects.create_user(f'u{tag}-{{i}}', password=None)\n"
            "    s = SessionStore()\n"
            "    s['_auth_user_id'] = str(u.pk)\n"
            "    s['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'\n"
            "    s['_auth_user_hash'] = u.get_session_auth_hash()\n"
            "    s.create()\n"
            "    out.append([u.username, s.session_key])\n"
            "print(json.dumps(out))\n",
        )
        return [tuple(pair) for pair in json.loads(out.strip().splitlines()[-1])]

    def worker_logs(self) -> str:
        """Everything the workers have logged so far."""
        for proc in self.procs:
            proc.log.flush()
        return "".join(Path(proc.log.name).read_text(errors="replace") for proc in self.procs)

    def signal_worker(self, base: str, signum: int) -> subprocess.Popen:
        proc = self.by_base[base]
        proc.send_signal(signum)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.log.close()

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
        self.by_base[base] = proc
        return base


def stack_env(dbname: str, **overrides: str) -> dict[str, str]:
    """The environment of a stack's processes: its database, Redis and a fresh prefix."""
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
        # Plain http on loopback: the HTTPS settings that DEBUG off turns on, off.
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
    }
    for name in ("TURN_URLS", "TURN_SECRET", "STUN_URLS", "SIGNALING_URL", "DOMAIN"):
        env.pop(name, None)
    env.update(overrides)
    return env


@contextlib.contextmanager
def running_stack(*, workers: int = 2, template: str | None = None, **env: str) -> Iterator[Stack]:
    """A fresh database and `workers` daphne workers with `env` on top of the defaults.

    With `template` (a migrated database) the new database is a copy of it,
    which is much faster than migrating again.
    """
    (ROOT / "var").mkdir(exist_ok=True)
    dbname = f"vr_it_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        copy = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{dbname}"{copy}')
    s = Stack(env=stack_env(dbname, **env))
    try:
        redis.Redis.from_url(s.env["REDIS_URL"]).ping()  # fail now, loudly, if Redis is not there
        if template is None:
            s.manage("migrate", "--noinput")
        for _ in range(workers):
            s.start_worker()
        yield s
    finally:
        s.stop()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Two daphne workers sharing a fresh PostgreSQL database and the real Redis."""
    with running_stack() as s:
        yield s


@pytest.fixture(scope="session")
def migrated_template() -> Iterator[str]:
    """A migrated database that stacks copy instead of migrating each time."""
    dbname = f"vr_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        Stack(env=stack_env(dbname)).manage("migrate", "--noinput")
        yield dbname
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture
def make_stack(migrated_template) -> Iterator[Callable[..., Stack]]:
    """Build stacks with custom settings (env vars); all are stopped after the test."""
    with contextlib.ExitStack() as stacks:

        def make(*, workers: int = 2, **env: str) -> Stack:
            return stacks.enter_context(
                running_stack(workers=workers, template=migrated_template, **env)
            )

        yield make


class RedisServer:
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self, *, timeout: float = 15) -> None:
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start") from None
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, with no persistence (a restart loses everything)."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


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


class WsClient:
    """A signaling socket read in the background: every message is kept with its arrival time.

    `next()` consumes messages in order (skipping those that do not match,
    which stay in `log` for later checks such as "no peer-left was ever seen").
    """

    def __init__(self, ws: ClientConnection, base: str) -> None:
        self.ws = ws
        self.base = base
        self.log: list[tuple[float, dict[str, Any]]] = []
        self.cursor = 0
        self.close_code: int | None = None
        self.closed_at: float | None = None
        self.changed = asyncio.Event()
        self.peer_id: str | None = None
        self.joined: dict[str, Any] | None = None
        self._ids = iter(range(1, 1 << 30))
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.log.append((time.monotonic(), json.loads(raw)))
                self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed_at = time.monotonic()
            self.changed.set()

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def until(self, check: Callable[[], Any], timeout: float) -> Any:
        """Wait until `check()` returns something truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {timeout}s; log: {self.log[-5:]}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    async def next(
        self, kind: str | None = None, timeout: float = 10, **fields: Any
    ) -> dict[str, Any]:
        """The next unconsumed message of type `kind` whose fields equal `fields`."""

        def find() -> dict[str, Any] | None:
            for index in range(self.cursor, len(self.log)):
                message = self.log[index][1]
                if (kind is None or message.get("type") == kind) and all(
                    message.get(k) == v for k, v in fields.items()
                ):
                    self.cursor = index + 1
                    return message
            if self.closed:
                raise AssertionError(f"socket closed ({self.close_code}) waiting for {kind}")
            return None

        return await self.until(find, timeout)

    async def request(self, message: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send `message` with a fresh id and return the answer that echoes it."""
        msg_id = f"q{next(self._ids)}"
        await self.send({**message, "id": msg_id})
        return await self.next(re=msg_id, timeout=timeout)

    async def join(self, number: str, **fields: Any) -> dict[str, Any]:
        answer = await self.request({"type": "join", "room": number, **fields})
        if answer["type"] == "joined":
            self.peer_id, self.joined = answer["peerId"], answer
        return answer

    async def create(self, **fields: Any) -> dict[str, Any]:
        answer = await self.request({"type": "create", **fields})
        assert answer["type"] == "joined", answer
        self.peer_id, self.joined = answer["peerId"], answer
        return answer

    async def wait_closed(self, timeout: float = 10) -> int:
        await self.until(lambda: self.closed, timeout)
        return self.close_code

    def seen(self, kind: str) -> list[dict[str, Any]]:
        return [message for _, message in self.log if message.get("type") == kind]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self.reader, 5)


@pytest.fixture
async def ws_connect() -> Any:
    """Open WsClients to a worker with a session key; all are closed after the test."""
    clients: list[WsClient] = []

    async def open_client(base: str, session_key: str, **options: Any) -> WsClient:
        url = base.replace("http://", "ws://") + "/ws/signaling/"
        ws = await connect(
            url,
            origin=base,
            additional_headers={"Cookie": f"sessionid={session_key}"},
            open_timeout=20,
            **options,
        )
        client = WsClient(ws, base)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()
