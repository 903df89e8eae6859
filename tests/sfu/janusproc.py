"""Real Janus for the tests: deploy/janus/entrypoint on its templates, every packet kept local.

Janus 1.1.2 never gathers ICE candidates on a loopback interface (src/ice.c
skips IFF_LOOPBACK), and when it has no address of its own libnice falls back
to *every* other interface of the machine. So "loopback only" cannot be had in
the machine's own network namespace. Instead Janus runs in a network
namespace of its own (`unshare --net`, which also frees the namespace when
Janus exits), holding nothing but `lo` and a veth pair whose two ends are
both inside it (a cable plugged into itself) with 127.0.0.2 on one end:
Janus gathers 127.0.0.2 (ICE enforce list), and no interface leads anywhere.
The test process stays where it is (it also talks to Redis and PostgreSQL)
and reaches Janus' API through a UNIX socket, which a network namespace does
not confine. Media tests run where browsers are: tests/e2e/test_sfu.py.

The production templates are used as they are; only addresses, ports and the
socket move (the same overrides the compose file makes, pointed at the test).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.deploy.procs import REPO, clean_environ, free_port, processes

ENTRYPOINT = REPO / "deploy" / "janus" / "entrypoint"
INSTALL_HINT = "Janus is required: apt-get install janus (Debian's 1.1.2; see .ci/run)"
# The one address Janus may gather on inside its namespace.
JANUS_IP = "127.0.0.2"

NETNS_SETUP = f"""set -eu
ip link set lo up
ip link add janus0 type veth peer name janus1
ip addr add {JANUS_IP}/32 dev janus0
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
ip link set janus1 up
ip link set janus0 up
# Janus skips interfaces that are not running yet: wait for the veth's carrier.
# (Not via /sys: it still shows the namespace it was mounted in.)
tries=0
until ip -o link show janus0 | grep -q "state UP"; do
    tries=$((tries + 1))
    [ "$tries" -le 100 ] || {{ echo "janus0 never came up" >&2; exit 1; }}
    sleep 0.05
done
exec "$@"
"""


def require_janus() -> None:
    """Fail (never skip) unless Janus and a way to make a network namespace exist."""
    if shutil.which("janus") is None:
        pytest.fail(INSTALL_HINT)
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("util-linux (unshare) and iproute2 (ip) are required for the Janus tests")


def unshare_command() -> list[str]:
    """A new network namespace: as root directly, else inside a user namespace."""
    if os.geteuid() == 0:
        return ["unshare", "--net"]
    return ["unshare", "--net", "--map-root-user"]


class JanusServer:
    """One Janus, started with the real entrypoint; restartable on the same socket."""

    def __init__(
        self,
        start,
        *,
        name: str = "janus",
        isolated: bool = True,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        require_janus()
        self._start = start
        self.name = name
        self.isolated = isolated
        self.args = args
        # Directly under /tmp: a UNIX socket path must stay under 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="janus-test-"))
        self.api_secret = secrets.token_urlsafe(24)
        self.admin_key = secrets.token_urlsafe(24)
        rtp_min = free_port(socket.SOCK_DGRAM)
        rtp_min = min(rtp_min, 65000)
        self.env = {
            **clean_environ(),
            "JANUS_API_SECRET": self.api_secret,
            "JANUS_ADMIN_KEY": self.admin_key,
            "JANUS_RUNTIME_DIR": str(self.dir / "run"),
            "JANUS_RTP_PORT_RANGE": f"{rtp_min}-{rtp_min + 100}",
            "JANUS_DEBUG_LEVEL": "4",
        }
        if isolated:
            self.socket = self.dir / "api.sock"
            self.url = f"unix:{self.socket}"
            self.env["JANUS_WS_UNIX"] = str(self.socket)
            self.env["JANUS_ICE_ENFORCE_LIST"] = "janus0"
        else:
            # The machine's own namespace: for API-only tests that never
            # create a PeerConnection, so Janus never gathers anything.
            self.socket = None
            self.port = free_port()
            self.url = f"ws://127.0.0.1:{self.port}"
            self.env.update(
                JANUS_WS_IP="127.0.0.1",
                JANUS_WS_PORT=str(self.port),
                JANUS_WS_ACL="127.0.0.1",
                JANUS_ICE_ENFORCE_LIST="lo",
            )
        self.env.update(env or {})
        self.proc = None
        self.starts = 0

    @property
    def runtime(self) -> Path:
        return Path(self.env["JANUS_RUNTIME_DIR"])

    def start(self) -> None:
        self.starts += 1
        command = [str(ENTRYPOINT), *self.args]
        if self.isolated:
            command = [*unshare_command(), "sh", "-c", NETNS_SETUP, "janus-netns", *command]
        self.proc = self._start(f"{self.name}-{self.starts}", command, self.env)
        self.wait_ready()

    def wait_ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                pytest.fail(f"{self.name} exited ({self.proc.popen.returncode}):\n{self.log()}")
            if "WebSockets thread started" in self.log() and self._listening():
                return
            time.sleep(0.05)
        pytest.fail(f"{self.name} did not start within {timeout}s:\n{self.log()}")

    def _listening(self) -> bool:
        family, address = (
            (socket.AF_UNIX, str(self.socket))
            if self.socket
            else (socket.AF_INET, ("127.0.0.1", self.port))
        )
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(address)
            except OSError:
                return False
        return True

    def log(self) -> str:
        return self.proc.output[-6000:] if self.proc else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye on any socket."""
        os.killpg(self.proc.popen.pid, signal.SIGKILL)
        self.proc.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def janus_servers(log_dir: Path):
    """A context manager yielding a factory of started `JanusServer`s, all stopped at exit."""
    return _Servers(log_dir)


class _Servers:
    def __init__(self, log_dir: Path) -> None:
        self._processes = processes(log_dir)
        self._servers: list[JanusServer] = []

    def __enter__(self):
        start = self._processes.__enter__()

        def make(**options) -> JanusServer:
            server = JanusServer(start, **options)
            self._servers.append(server)
            server.start()
            return server

        return make

    def __exit__(self, *exc) -> None:
        try:
            self._processes.__exit__(*exc)
        finally:
            for server in self._servers:
                shutil.rmtree(server.dir, ignore_errors=True)


def run_entrypoint(env: dict[str, str], *, timeout: float = 10) -> subprocess.CompletedProcess:
    """Run the entrypoint to its end (for configurations it must refuse)."""
    return subprocess.run(
        [str(ENTRYPOINT)],
        env={**clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
