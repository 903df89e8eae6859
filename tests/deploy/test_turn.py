"""coturn with this repo's deploy/turnserver.conf, started by deploy/coturn-entrypoint.

Only the listening address, ports and relay IP are overridden (to loopback and
free ports); every hardening line of the production file stays in force, so
the loopback peer is refused exactly as it would be in production.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from accounts.ice import turn_credentials, turn_password
from tests.deploy import turnclient
from tests.deploy.procs import REPO, clean_environ, free_tcp_udp_port, processes, require, wait_for

pytestmark = pytest.mark.slow


def coturn_args(port: int, tls_port: int) -> list[str]:
    """Command-line overrides that keep every packet on 127.0.0.1."""
    relay_min = free_tcp_udp_port()
    return [
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--tls-listening-port={tls_port}",
        f"--alt-listening-port={free_tcp_udp_port()}",
        f"--alt-tls-listening-port={free_tcp_udp_port()}",
        f"--min-port={relay_min}",
        f"--max-port={relay_min + 20}",
    ]


def start_coturn(start, *, secret: str, caddy_data: Path | None = None, wait_tls: int = 0):
    """Start coturn through deploy/coturn-entrypoint; return (process, port, tls_port, dir)."""
    require("turnserver")
    port, tls_port = free_tcp_udp_port(), free_tcp_udp_port()
    # Directly under /tmp: coturn drops to `nobody` when started as root and
    # must still reach its runtime directory.
    runtime = Path(tempfile.mkdtemp(prefix="coturn-test-"))
    runtime.chmod(0o755)
    env = {
        **clean_environ(),
        "TURN_SECRET": secret,
        "DOMAIN": "localhost",
        "TURN_CONFIG": str(REPO / "deploy" / "turnserver.conf"),
        "TURN_RUNTIME_DIR": str(runtime),
        "CADDY_DATA": str(caddy_data or runtime / "no-caddy"),
        "TURN_TLS_WAIT": str(wait_tls),
    }
    proc = start(
        "coturn", [str(REPO / "deploy" / "coturn-entrypoint"), *coturn_args(port, tls_port)], env
    )

    def answers() -> bool:
        with turnclient.TurnClient("127.0.0.1", port, timeout=0.5) as client:
            return client.binding()[0] == "127.0.0.1"

    wait_for("coturn to answer STUN", answers, timeout=30, procs=(proc,))
    return proc, port, tls_port, runtime


@pytest.fixture(scope="module")
def coturn(tmp_path_factory):
    """A running coturn with a random shared secret: (port, secret, process)."""
    secret = secrets.token_urlsafe(32)
    with processes(tmp_path_factory.mktemp("coturn-logs")) as start:
        proc, port, _tls, runtime = start_coturn(start, secret=secret)
        try:
            yield port, secret, proc
        finally:
            proc.stop()
            shutil.rmtree(runtime, ignore_errors=True)


def app_credentials(settings, secret: str, *, expires: int | None = None) -> dict[str, str]:
    settings.TURN_SECRET = secret
    return turn_credentials(user_id=7, expires=expires or int(time.time()) + 600)


def test_app_credential_allocates_a_relay(coturn, settings):
    """A credential made by accounts.ice with the shared secret allocates a UDP relay."""
    port, secret, _ = coturn
    cred = app_credentials(settings, secret)
    with turnclient.TurnClient("127.0.0.1", port) as client:
        relay_ip, relay_port = client.allocate(cred["username"], cred["credential"])
        assert client.realm == "localhost"
        assert relay_ip == "127.0.0.1"
        assert relay_port > 0
        client.release()


def test_forged_credential_is_rejected(coturn, settings):
    """A password not made with the server's secret gets 401."""
    port, _secret, _ = coturn
    cred = app_credentials(settings, "not-the-secret")
    with (
        turnclient.TurnClient("127.0.0.1", port) as client,
        pytest.raises(turnclient.TurnError) as exc,
    ):
        client.allocate(cred["username"], cred["credential"])
    assert exc.value.code == 401


def test_expired_credential_is_rejected(coturn, settings):
    """A correctly signed credential whose expiry has passed gets 401."""
    port, secret, _ = coturn
    cred = app_credentials(settings, secret, expires=int(time.time()) - 60)
    assert cred["credential"] == turn_password(secret=secret, username=cred["username"])
    with (
        turnclient.TurnClient("127.0.0.1", port) as client,
        pytest.raises(turnclient.TurnError) as exc,
    ):
        client.allocate(cred["username"], cred["credential"])
    assert exc.value.code == 401


@pytest.mark.parametrize(
    "peer",
    [
        "127.0.0.1",  # the host itself
        "10.0.0.1",  # RFC 1918
        "172.16.5.4",  # RFC 1918
        "192.168.1.1",  # RFC 1918
        "172.29.81.10",  # the compose backend network (PostgreSQL, Redis)
        "169.254.169.254",  # link-local: the cloud metadata service
        "100.64.0.1",  # CGNAT
        "0.0.0.0",  # noqa: S104 - "this network", as a peer address
        "224.0.0.1",  # multicast
    ],
)
def test_permission_to_private_peer_is_forbidden(coturn, settings, peer):
    """CreatePermission towards a non-public address is refused with 403."""
    port, secret, _ = coturn
    cred = app_credentials(settings, secret)
    with turnclient.TurnClient("127.0.0.1", port) as client:
        client.allocate(cred["username"], cred["credential"])
        with pytest.raises(turnclient.TurnError) as exc:
            client.create_permission(peer)
        assert exc.value.code == 403
        client.release()


def test_permission_to_public_peer_is_allowed(coturn, settings):
    """The denials are specific: a public peer gets its permission.

    CreatePermission only records the address in coturn; nothing is sent to it.
    """
    port, secret, _ = coturn
    cred = app_credentials(settings, secret)
    with turnclient.TurnClient("127.0.0.1", port) as client:
        client.allocate(cred["username"], cred["credential"])
        client.create_permission("8.8.8.8")
        client.release()


def test_secret_is_not_on_the_command_line(coturn):
    """The entrypoint passes the secret in a private file, never in argv (visible in ps)."""
    _port, secret, proc = coturn
    cmdline = Path(f"/proc/{proc.popen.pid}/cmdline").read_bytes().decode(errors="replace")
    assert "turnserver" in cmdline
    assert secret not in cmdline
