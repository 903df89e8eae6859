"""The systems under test, each started as two server processes sharing one Redis.

Every system binds 127.0.0.1 on free ports and is stopped (by the pids this
module started, nothing else) when its block ends.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.client import Target

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
VENV_BIN = Path(sys.executable).parent
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "13"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
PG = ["-h", "127.0.0.1", "-U", "postgres"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench-Password-4711"  # noqa: S105 - a throwaway account in a throwaway database


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the benchmark dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def proc_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLK_TCK


def proc_rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


class RedisProbe:
    """The shared Redis: flushed before each system, memory and CPU read from INFO."""

    def __init__(self) -> None:
        self.client = redis.Redis.from_url(REDIS_URL)

    def flush(self) -> None:
        self.client.flushdb()

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def pid(self) -> int:
        return int(self.client.info("server")["process_id"])

    def cpu_seconds(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    def version(self) -> str:
        return str(self.client.info("server")["redis_version"])


@dataclass
class System(abc.ABC):
    """Base: start two processes, hand out cookies (none), stop what was started."""

    name: str
    label: str
    logdir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    socketio: bool = False
    # Where the processes start: the checkout under test (another revision's for --ref).
    root: Path = ROOT

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    @property
    def target(self) -> Target:
        return Target(ports=list(self.ports), socketio=self.socketio)

    @abc.abstractmethod
    def commands(self, port: int) -> list[str]:
        """The command line of one server process; every system defines its own."""

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self, users: int) -> None:  # noqa: B027 - optional hook
        """One-time work before the processes start (databases, npm)."""

    def cookies(self, n: int) -> list[str | None]:
        return [None] * n

    def start(self) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        for worker in range(2):
            port = free_port()
            log = open(self.logdir / f"{self.name}-{worker + 1}.log", "ab")  # noqa: SIM115
            proc = subprocess.Popen(
                self.commands(port),
                cwd=self.root,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # safe: the coordinator runs no threads
            )
            log.close()
            self.procs.append(proc)
            self.ports.append(port)
        for port, proc in zip(self.ports, self.procs, strict=True):
            wait_port(port, proc)
        self.ready()

    def ready(self) -> None:  # noqa: B027 - optional hook
        """Extra readiness check after the ports accept connections."""

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs, self.ports = [], []

    def cleanup(self) -> None:  # noqa: B027 - optional hook
        """Undo prepare()."""


class PythonRelay(System):
    def commands(self, port: int) -> list[str]:
        relay = str(PEERS / "python_relay.py")
        return [sys.executable, relay, "--port", str(port), "--redis", REDIS_URL]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT)}


class SocketIO(System):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.socketio = True

    def prepare(self, users: int) -> None:
        ensure_node_modules()

    def commands(self, port: int) -> list[str]:
        server = str(PEERS / "socketio" / "server.js")
        return ["node", server, "--port", str(port), "--redis", REDIS_URL]


def ensure_node_modules() -> None:
    """`npm ci` the socket.io peer when its node_modules is missing or older than the lock."""
    here = PEERS / "socketio"
    marker = here / "node_modules" / ".package-lock.json"
    lock = here / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed for the socket.io peer (apt-get install nodejs npm)")
    print("bench: npm ci in bench/peers/socketio", file=sys.stderr, flush=True)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=here, check=True
    )


_MAKE_SESSIONS = """
import json, sys
from datetime import timedelta
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.utils import timezone
N = {n}
User = get_user_model()
User.objects.filter(username__startswith="bench").delete()
pw = make_password({password!r})
users = User.objects.bulk_create(
    [User(username=f"bench{{i}}", password=pw, first_name=f"Bench {{i}}") for i in range(N)]
)
from django.contrib.auth import load_backend
# The backend login() would record: the first that can load users (not e.g. axes').
backend = next(b for b in settings.AUTHENTICATION_BACKENDS if hasattr(load_backend(b), "get_user"))
store = import_module(settings.SESSION_ENGINE).SessionStore
keys = []
if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
    from django.contrib.sessions.models import Session
    expire = timezone.now() + timedelta(days=1)
    rows = []
    for u in users:
        key = store()._get_new_session_key()
        data = {{SESSION_KEY: str(u.pk), BACKEND_SESSION_KEY: backend,
                HASH_SESSION_KEY: u.get_session_auth_hash()}}
        rows.append(Session(session_key=key, session_data=store().encode(data), expire_date=expire))
        keys.append(key)
    Session.objects.bulk_create(rows, batch_size=2000)
else:
    for u in users:
        s = store()
        s.update({{SESSION_KEY: str(u.pk), BACKEND_SESSION_KEY: backend,
                  HASH_SESSION_KEY: u.get_session_auth_hash()}})
        s.create()
        keys.append(s.session_key)
sys.stdout.write("BENCH-KEYS " + json.dumps(keys) + "\\n")
"""


# After the flush that starts each system's turn, the sessions go back into the
# cache as a login leaves them there (cached_db writes through): a socket
# opened right after its login finds its session in Redis, not in PostgreSQL.
_WARM_SESSIONS = """
from importlib import import_module
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.utils import timezone
if settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db":
    store = import_module(settings.SESSION_ENGINE).SessionStore
    cache = caches[settings.SESSION_CACHE_ALIAS]
    batch = {{}}
    for row in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        session = store(row.session_key)
        batch[session.cache_key] = session.decode(row.session_data)
        if len(batch) >= 1000:
            cache.set_many(batch, timeout={timeout})
            batch = {{}}
    cache.set_many(batch, timeout={timeout})
"""


class OurServer(System):
    """The product as deployed: `python -m config.serve` (daphne on uvloop with the project's
    flags), PostgreSQL, Redis channel layer `pubsub` or `core`."""

    _prepared: dict[str, list[str]] = {}
    extra_env: dict[str, str] = {}  # --server-env: A/B a setting without editing anything

    def __init__(
        self, *args, layer: str = "pubsub", db: str = "", env: dict | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.layer = layer
        self.overrides = env or {}
        self.db = db
        self.session_keys: list[str] = []
        self.login_checked = False

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TURN_", "STUN_", "DOMAIN"))
        }
        env.update(
            REDIS_URL=REDIS_URL,
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{self.db}",
            SECRET_KEY="bench-only-secret-key-" + self.db,
            DEBUG="false",
            # Plain http on loopback: the HTTPS settings DEBUG off turns on, off.
            SECURE_SSL_REDIRECT="false",
            SECURE_COOKIES="false",
            SECURE_HSTS_SECONDS="0",
            STATIC_MANIFEST="false",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            CHANNEL_LAYER=self.layer,
            # Pub/sub channels ignore the database number: keep apart from test runs.
            CHANNEL_LAYER_PREFIX=f"bench{os.getpid()}",
            LOG_LEVEL="WARNING",
            # The per-connection rate limit (50 msgs/s by default) protects a
            # deployment from one client; the throughput ramp sends up to
            # ~130 msgs/s per socket, which is load, not abuse: raise it so the
            # benchmark measures forwarding, and say so in the report.
            SIGNALING_RATE="100000",
            SIGNALING_BURST="100000",
            # Likewise the per-account room caps: the benchmark's accounts create
            # rooms in every repetition of every system (their rooms stay open).
            OPEN_ROOMS_PER_USER="100000",
            ROOMS_CREATED_PER_HOUR="100000",
            # And the per-address join cap: every join attempt in flight holds one
            # unit of it until it is answered (rooms/attempts.py), and the burst's
            # 1,000 people (and the room storm's) all come from 127.0.0.1, where in
            # a deployment they come from their own addresses.
            JOIN_FAILURE_ADDRESS_LIMIT="100000",
        )
        env.update(self.extra_env)
        env.update(self.overrides)
        return env

    def commands(self, port: int) -> list[str]:
        return [sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port)]

    def start(self) -> None:
        self.manage("shell", "-c", _WARM_SESSIONS.format(timeout=24 * 3600))
        super().start()

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.root,
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    def prepare(self, users: int) -> None:
        """Create the run's database once: migrate, make `users` users with sessions."""
        if self.db in self._prepared:  # both layers share one database and its users
            self.session_keys = self._prepared[self.db]
            return
        subprocess.run(["dropdb", *PG, "--if-exists", self.db], check=True, capture_output=True)
        subprocess.run(["createdb", *PG, self.db], check=True, capture_output=True)
        self.manage("migrate", "--noinput")
        out = self.manage("shell", "-c", _MAKE_SESSIONS.format(n=users, password=PASSWORD))
        line = next(x for x in out.splitlines() if x.startswith("BENCH-KEYS "))
        self.session_keys = json.loads(line.split(" ", 1)[1])
        self._prepared[self.db] = self.session_keys

    def ready(self) -> None:
        # As a deployment does: no traffic before every worker's /readyz says ready.
        t0 = time.monotonic()
        for port in self.ports:
            deadline = time.monotonic() + 60
            while not http_200(f"http://127.0.0.1:{port}/readyz"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"/readyz on port {port} not ready after 60 s")
                time.sleep(0.05)
        self.ready_wait_s = time.monotonic() - t0
        # The login API must work; the bulk sessions only skip its deliberately slow hashing.
        if self.login_checked:
            return
        body = json.dumps({"username": "bench0", "password": PASSWORD}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[0]}/api/auth/login",
            data=body,
            headers={
                "Content-Type": "application/json",
                "Origin": f"http://127.0.0.1:{self.ports[0]}",
            },
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            cookie = resp.headers.get_all("Set-Cookie") or []
            if resp.status != 200 or not any(c.startswith("sessionid=") for c in cookie):
                raise RuntimeError(f"login API answered {resp.status} without a session cookie")
            session = next(c for c in cookie if c.startswith("sessionid="))
            self.session_keys[0] = session.split(";", 1)[0].split("=", 1)[1]
        self.login_checked = True

    def cookies(self, n: int) -> list[str | None]:
        if n > len(self.session_keys):
            raise RuntimeError(f"need {n} sessions, prepared {len(self.session_keys)}")
        return list(self.session_keys[:n])

    def cleanup(self) -> None:
        subprocess.run(["dropdb", *PG, "--if-exists", "--force", self.db], capture_output=True)


def checkout(rev: str, logdir: Path) -> Path:
    """A copy of revision `rev`'s tree (git archive) under `logdir`, to run it beside this one."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dest = logdir / f"tree-{sha[:12]}"
    if not dest.exists():
        dest.mkdir(parents=True)
        archive = subprocess.Popen(["git", "archive", sha], cwd=ROOT, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"--ref {rev}: git archive failed")
    return dest


def make_systems(
    names: list[str],
    logdir: Path,
    variants: dict[str, dict[str, str]] | None = None,
    refs: dict[str, str] | None = None,
) -> list[System]:
    """The systems called `names`; `ours-NAME` for each of `variants` (our server, changed env)
    and `ours-at-REV` for each of `refs` (our server as of another git revision, in its own
    database: the same run compares a change with the commit before it)."""
    db = f"bench_{os.getpid()}"
    table = {
        "ours-pubsub": lambda: OurServer(
            "ours-pubsub", "ours (daphne, pubsub layer)", logdir, layer="pubsub", db=db
        ),
        "ours-core": lambda: OurServer(
            "ours-core", "ours (daphne, core layer)", logdir, layer="core", db=db
        ),
        "socketio": lambda: SocketIO("socketio", "Node socket.io + redis-adapter", logdir),
        "relay": lambda: PythonRelay("relay", "bare Python relay", logdir),
    }
    for name, env in (variants or {}).items():
        label = "ours, " + ", ".join(f"{k}={v}" for k, v in env.items())
        table[f"ours-{name}"] = lambda n=name, lb=label, e=env: OurServer(
            f"ours-{n}", lb, logdir, layer=e.get("CHANNEL_LAYER", "pubsub"), db=db, env=e
        )
    for name, rev in (refs or {}).items():
        table[name] = lambda n=name, r=rev: OurServer(
            n,
            f"ours at {r}",
            logdir,
            layer="pubsub",
            db=f"{db}_{n.replace('-', '_')}",
            root=checkout(r, logdir),
        )
    unknown = set(names) - set(table)
    if unknown:
        raise SystemExit(f"unknown systems {sorted(unknown)}; choose from {sorted(table)}")
    return [table[n]() for n in names]


def server_is_ready() -> bool:
    """True when `manage.py check` passes (the server can start)."""
    env = {**os.environ, "DEBUG": "true"}
    env.pop("REDIS_URL", None)
    res = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True
    )
    return res.returncode == 0


def http_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
            return resp.status == 200
    except OSError:  # HTTPError (503) included
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
