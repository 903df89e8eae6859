"""coturn with this repo's deploy/turnserver.conf, started by deploy/coturn-entrypoint.

Only the listening addresses, ports and relay IP are overridden (to loopback
and free ports); every hardening line of the production file stays in force,
so the loopback peer is refused exactly as it would be in production. coturn
listens on two loopback addresses, as a real host has several (its public
one, Docker's bridges): that is when coturn would turn RFC 5780 on by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from accounts.ice import turn_credentials
from tests.deploy import turnclient
from tests.deploy.procs import (
    REPO,
    clean_environ,
    free_tcp_udp_port,
    free_udp_range,
    processes,
    require,
    wait_for,
)

pytestmark = pytest.mark.slow


def coturn_args(port: int, tls_port: int, relay_ports: int = 21) -> list[str]:
    """Command-line overrides that keep every packet on 127.0.0.1."""
    relay_min = free_udp_range(relay_ports) if relay_ports > 21 else free_tcp_udp_port()
    return [
        "--listening-ip=127.0.0.1",
        "--listening-ip=127.0.0.2",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--tls-listening-port={tls_port}",
        f"--alt-listening-port={free_tcp_udp_port()}",
        f"--alt-tls-listening-port={free_tcp_udp_port()}",
        f"--min-port={relay_min}",
        f"--max-port={relay_min + relay_ports - 1}",
    ]


CONF = REPO / "deploy" / "turnserver.conf"


def entrypoint_env(secret: str, runtime: Path, **extra: str) -> dict[str, str]:
    return {
        **clean_environ(),
        "TURN_SECRET": secret,
        "DOMAIN": "localhost",
        "TURN_CONFIG": str(CONF),
        "TURN_RUNTIME_DIR": str(runtime),
        "CADDY_DATA": str(runtime / "no-caddy"),
        "TURN_TLS_WAIT": "0",
        **extra,
    }


def start_coturn(
    start,
    *,
    secret: str,
    caddy_data: Path | None = None,
    wait_tls: int = 0,
    config: Path = CONF,
    external_ip: str | None = None,
    allow_self_peer: bool = False,
    relay_ports: int = 21,
):
    """Start coturn through deploy/coturn-entrypoint; return (process, port, tls_port, dir)."""
    require("turnserver")
    port, tls_port = free_tcp_udp_port(), free_tcp_udp_port()
    # Directly under /tmp: coturn drops to `nobody` when started as root and
    # must still reach its runtime directory.
    runtime = Path(tempfile.mkdtemp(prefix="coturn-test-"))
    runtime.chmod(0o755)
    env = entrypoint_env(
        secret,
        runtime,
        TURN_CONFIG=str(config),
        CADDY_DATA=str(caddy_data or runtime / "no-caddy"),
        TURN_TLS_WAIT=str(wait_tls),
        **({"TURN_EXTERNAL_IP": external_ip} if external_ip else {}),
        **({"TURN_ALLOW_SELF_PEER": "true"} if allow_self_peer else {}),
    )
    proc = start(
        "coturn",
        [str(REPO / "deploy" / "coturn-entrypoint"), *coturn_args(port, tls_port, relay_ports)],
        env,
    )

    def answers() -> bool:
        with turnclient.TurnClient("127.0.0.1", port, timeout=0.5) as client:
            return client.binding()[0] == "127.0.0.1"

    wait_for("coturn to answer STUN", answers, timeout=30, procs=(proc,))
    return proc, port, tls_port, runtime


class Coturn(NamedTuple):
    port: int
    secret: str
    proc: object
    runtime: Path


@pytest.fixture(scope="module")
def coturn(tmp_path_factory):
    """A running coturn with a random shared secret."""
    secret = secrets.token_urlsafe(32)
    with processes(tmp_path_factory.mktemp("coturn-logs")) as start:
        proc, port, _tls, runtime = start_coturn(start, secret=secret)
        try:
            yield Coturn(port, secret, proc, runtime)
        finally:
            proc.stop()
            shutil.rmtree(runtime, ignore_errors=True)


def app_credentials(settings, secret: str, *, expires: int | None = None) -> dict[str, str]:
    settings.TURN_SECRET = secret
    return turn_credentials(pool="127.0.0.1", expires=expires or int(time.time()) + 600)


def test_app_credential_allocates_a_relay(coturn, settings):
    """A credential made by accounts.ice with the shared secret allocates a UDP relay."""
    port, secret = coturn.port, coturn.secret
    cred = app_credentials(settings, secret)
    with turnclient.TurnClient("127.0.0.1", port) as client:
        relay_ip, relay_port = client.allocate(cred["username"], cred["credential"])
        assert client.realm == "localhost"
        assert relay_ip == "127.0.0.1"
        assert relay_port > 0
        client.release()


def test_allocations_are_granted_no_longer_than_a_credential_lives(coturn, settings):
    """An allocation asking for an hour is granted max-allocate-lifetime: 300 s, TURN_TTL."""
    cred = app_credentials(settings, coturn.secret)
    with turnclient.TurnClient("127.0.0.1", coturn.port) as client:
        client.allocate(cred["username"], cred["credential"], lifetime=3600)
        assert client.lifetime == 300
        client.release()


def test_forged_credential_is_rejected(coturn, settings):
    """A password not made with the server's secret gets 401."""
    port = coturn.port
    cred = app_credentials(settings, "not-the-secret")
    with (
        turnclient.TurnClient("127.0.0.1", port) as client,
        pytest.raises(turnclient.TurnError) as exc,
    ):
        client.allocate(cred["username"], cred["credential"])
    assert exc.value.code == 401


def test_expired_credential_is_rejected(coturn, settings):
    """A correctly signed credential whose expiry has passed gets 401."""
    port, secret = coturn.port, coturn.secret
    cred = app_credentials(settings, secret, expires=int(time.time()) - 60)
    # Correctly signed: base64(HMAC-SHA1(secret, username)), computed here, not by accounts.ice.
    signed = hmac.new(secret.encode(), cred["username"].encode(), hashlib.sha1).digest()
    assert cred["credential"] == base64.b64encode(signed).decode()
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
    port, secret = coturn.port, coturn.secret
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
    port, secret = coturn.port, coturn.secret
    cred = app_credentials(settings, secret)
    with turnclient.TurnClient("127.0.0.1", port) as client:
        client.allocate(cred["username"], cred["credential"])
        client.create_permission("8.8.8.8")
        client.release()


def test_secret_is_not_on_the_command_line(coturn):
    """The entrypoint passes the secret in a private file, never in argv (visible in ps)."""
    cmdline = Path(f"/proc/{coturn.proc.popen.pid}/cmdline").read_bytes().decode(errors="replace")
    assert "turnserver" in cmdline
    assert coturn.secret not in cmdline


def test_rendered_config_has_the_hardening_options(coturn):
    """The config coturn runs with (the entrypoint's private copy) has no-rfc5780 and
    no-software-attribute, and nobody but its owner can read it."""
    rendered = coturn.runtime / "turnserver.conf"
    lines = rendered.read_text().splitlines()
    assert "no-rfc5780" in lines
    assert "no-software-attribute" in lines
    assert f"static-auth-secret={coturn.secret}" in lines
    assert stat.S_IMODE(rendered.stat().st_mode) == 0o600


def test_binding_answers_name_no_version_and_no_other_address(coturn):
    """On two addresses coturn would add RESPONSE-ORIGIN, OTHER-ADDRESS (RFC 5780) and SOFTWARE:
    the answer is only the mapped address and the fingerprint."""
    with turnclient.TurnClient("127.0.0.1", coturn.port) as client:
        answer = client.transact(turnclient.encode(turnclient.BINDING, []))
    assert answer.cls == turnclient.CLASS_SUCCESS
    assert [kind for kind, _ in answer.attributes] == [
        turnclient.XOR_MAPPED_ADDRESS,
        turnclient.MAPPED_ADDRESS,
        turnclient.FINGERPRINT,
    ]


# --- The host's own address (TURN_EXTERNAL_IP) ------------------------------------------------
#
# TURN_EXTERNAL_IP is a public address, and a test may never send anything to
# one. CreatePermission sends nothing to the peer (coturn only records it), so
# asking for permissions is safe. The addresses used are documentation ones
# (203.0.113.0/24, owned by no one); turnserver.conf denies that whole range,
# so these tests run coturn with the production file minus exactly that one
# line: 203.0.113.x then stands for any public address, and only the
# entrypoint's rule can refuse the announced one.
DOC_RANGE = "denied-peer-ip=203.0.113.0-203.0.113.255"


@pytest.fixture(scope="module")
def config_without_the_doc_range(tmp_path_factory) -> Path:
    lines = CONF.read_text().splitlines()
    assert lines.count(DOC_RANGE) == 1
    path = tmp_path_factory.mktemp("coturn-conf") / "turnserver.conf"
    path.write_text("\n".join(line for line in lines if line != DOC_RANGE) + "\n")
    return path


def entrypoint_lines(runtime: Path) -> list[str]:
    """What deploy/coturn-entrypoint added to the config coturn runs with."""
    lines = (runtime / "turnserver.conf").read_text().splitlines()
    return lines[lines.index("# --- added by deploy/coturn-entrypoint ---") + 1 :]


@pytest.mark.parametrize(
    ("external_ip", "host_addresses", "announced_args"),
    [
        # A host whose public address is on its own interface: coturn announces it.
        ("203.0.113.7", ["203.0.113.7"], ["--external-ip=203.0.113.7"]),
        # 1:1 NAT, public/private. A private address must be one of this
        # machine's: 127.0.0.1 stands in (refused as loopback anyway; the
        # denial of a non-loopback address is what the case above proves).
        (
            "203.0.113.7/127.0.0.1",
            ["203.0.113.7", "127.0.0.1"],
            ["--external-ip=203.0.113.7", "--relay-ip=127.0.0.1"],
        ),
    ],
)
def test_the_hosts_own_address_is_denied_as_a_peer(
    tmp_path_factory,
    settings,
    config_without_the_doc_range,
    external_ip,
    host_addresses,
    announced_args,
):
    """TURN_EXTERNAL_IP's addresses get 403 for a permission, while another address of the same
    (here undenied) range is granted; the public address is still what allocations announce."""
    secret = secrets.token_urlsafe(32)
    with processes(tmp_path_factory.mktemp("coturn-logs")) as start:
        proc, port, _tls, runtime = start_coturn(
            start, secret=secret, config=config_without_the_doc_range, external_ip=external_ip
        )
        try:
            denied = [line for line in entrypoint_lines(runtime) if line.startswith("denied-")]
            assert denied == [f"denied-peer-ip={address}" for address in host_addresses]
            argv = Path(f"/proc/{proc.popen.pid}/cmdline").read_bytes().decode().split("\0")
            assert [arg for arg in argv if arg.startswith(("--external-ip", "--relay-ip="))] == [
                *announced_args,
                "--relay-ip=127.0.0.1",  # coturn_args': every test relays on loopback
            ]
            cred = app_credentials(settings, secret)
            with turnclient.TurnClient("127.0.0.1", port) as client:
                assert client.allocate(cred["username"], cred["credential"])[0] == "203.0.113.7"
                for address in host_addresses:
                    with pytest.raises(turnclient.TurnError) as exc:
                        client.create_permission(address)
                    assert exc.value.code == 403, address
                client.create_permission("203.0.113.8")
                client.release()
            # The two-part external-ip would have put the private half on coturn's
            # allowed list, which outranks every denied-peer-ip.
            assert "Whitelisting external-ip private part" not in proc.output
        finally:
            proc.stop()
            shutil.rmtree(runtime, ignore_errors=True)


def test_allow_self_peer_leaves_the_hosts_address_to_the_relay(
    tmp_path_factory, settings, config_without_the_doc_range
):
    """TURN_ALLOW_SELF_PEER=true (relay-to-relay calls through this one server): no denial,
    the permission to the announced address is granted."""
    secret = secrets.token_urlsafe(32)
    with processes(tmp_path_factory.mktemp("coturn-logs")) as start:
        proc, port, _tls, runtime = start_coturn(
            start,
            secret=secret,
            config=config_without_the_doc_range,
            external_ip="203.0.113.7",
            allow_self_peer=True,
        )
        try:
            assert not [line for line in entrypoint_lines(runtime) if line.startswith("denied-")]
            cred = app_credentials(settings, secret)
            with turnclient.TurnClient("127.0.0.1", port) as client:
                assert client.allocate(cred["username"], cred["credential"])[0] == "203.0.113.7"
                client.create_permission("203.0.113.7")
                client.release()
        finally:
            proc.stop()
            shutil.rmtree(runtime, ignore_errors=True)


def test_tcp_relays_are_refused(coturn, settings):
    """An allocation asking for a TCP relay (RFC 6062) gets 442: relays carry UDP only."""
    cred = app_credentials(settings, coturn.secret)
    with (
        turnclient.TurnClient("127.0.0.1", coturn.port) as client,
        pytest.raises(turnclient.TurnError) as exc,
    ):
        client.allocate(cred["username"], cred["credential"], transport=turnclient.TCP_PROTOCOL)
    assert exc.value.code == 442


@pytest.mark.parametrize(
    "value",
    [
        "203.0.113.7\nallow-loopback-peers",  # a line of its own in the config
        "203.0.113.7/",
        "/203.0.113.7",
        "203.0.113.7/203.0.113.8/203.0.113.9",
        "turn.example.org",
    ],
)
def test_entrypoint_refuses_a_malformed_external_ip(tmp_path, value):
    """TURN_EXTERNAL_IP goes into the config file: anything but an address (or two) is refused."""
    require("turnserver")
    result = subprocess.run(
        [str(REPO / "deploy" / "coturn-entrypoint")],
        env=entrypoint_env("s3cret", tmp_path, TURN_EXTERNAL_IP=value),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "TURN_EXTERNAL_IP must be an IP address or public/private" in result.stderr
    assert not (tmp_path / "turnserver.conf").exists()


def test_entrypoint_refuses_an_unknown_allow_self_peer(tmp_path):
    """TURN_ALLOW_SELF_PEER is true or false; anything else stops the start, loudly."""
    require("turnserver")
    result = subprocess.run(
        [str(REPO / "deploy" / "coturn-entrypoint")],
        env=entrypoint_env("s3cret", tmp_path, TURN_ALLOW_SELF_PEER="yes"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stderr) == (
        2,
        "coturn-entrypoint: TURN_ALLOW_SELF_PEER must be true or false\n",
    )
