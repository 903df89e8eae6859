"""Helpers for the deployment tests: free ports, the production .env, processes."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else "python3"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free on 127.0.0.1 right now (for TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_tcp_udp_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with contextlib.suppress(OSError), socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
            return port
    raise RuntimeError("no port free for both TCP and UDP")


def free_udp_range(size: int) -> int:
    """The first of `size` consecutive UDP ports free on 127.0.0.1 now (coturn's relay range)."""
    for _ in range(50):
        start = free_port(socket.SOCK_DGRAM)
        if start + size > 65535:
            continue
        with contextlib.ExitStack() as held:
            try:
                for port in range(start, start + size):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return start
    raise RuntimeError(f"no {size} consecutive UDP ports free")


def require(*binaries: str) -> None:
    """Fail unless every binary is installed: not optional here (.ci/run installs them)."""
    missing = [name for name in binaries if shutil.which(name) is None]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (apt-get install; see .ci/run)")


def make_env(tmp_path: Path, domain: str = "localhost") -> dict[str, str]:
    """Run the real deploy/make-env into tmp_path/.env and return its variables."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    env_file = tmp_path / ".env"
    subprocess.run(
        [str(REPO / "deploy" / "make-env"), domain],
        env={**os.environ, "ENV_FILE": str(env_file)},
        check=True,
        capture_output=True,
        timeout=30,
    )
    return parse_env_file(env_file)


def parse_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def clean_environ() -> dict[str, str]:
    """The test process's environment without the app's variables (those come from .env)."""
    drop = {
        "DEBUG",
        "SECRET_KEY",
        "DOMAIN",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "DATABASE_URL",
        "REDIS_URL",
        "CHANNEL_LAYER",
        "STUN_URLS",
        "TURN_URLS",
        "TURN_SECRET",
        "SIGNALING_URL",
        "STATIC_MANIFEST",
        "DJANGO_SETTINGS_MODULE",
        # tests/testenv.py turns these off for the test client; .env decides here.
        "SECURE_SSL_REDIRECT",
        "SECURE_COOKIES",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
    }
    return {k: v for k, v in os.environ.items() if k not in drop}


class Process:
    """A child process whose output goes to a log file, stopped at teardown."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            # Our own process group (start_new_session), so the signal reaches
            # exactly what this helper started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self._log.close()


@contextlib.contextmanager
def processes(log_dir: Path) -> Iterator[Callable[..., Process]]:
    """Yield a starter for processes; stop them all (in reverse order) on exit."""
    started: list[Process] = []

    def start(name: str, args: list[str], env: dict[str, str]) -> Process:
        proc = Process(name, args, env, log_dir)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in reversed(started):
            proc.stop()


def wait_for(
    what: str, check: Callable[[], bool], *, timeout: float = 30, procs: tuple = ()
) -> None:
    """Poll check() until true; fail with the processes' logs after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                pytest.fail(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.output[-4000:]}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.2)
    logs = "\n".join(f"--- {p.name}:\n{p.output[-3000:]}" for p in procs)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def http_status(port: int, path: str, host: str = "localhost") -> int:
    """GET path from a worker directly, as Caddy would send it (Host, X-Forwarded-Proto)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host, "X-Forwarded-Proto": "https"})
        return conn.getresponse().status
    finally:
        conn.close()
