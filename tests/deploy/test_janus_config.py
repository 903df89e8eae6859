"""deploy/janus: the entrypoint renders a private config and refuses unsafe ones; compose wires it.

Rendering is checked with a stand-in `janus` on PATH that records how it was
started (the real one is started by tests/sfu/); refusals never get as
far as starting anything.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.procs import REPO, clean_environ, free_port, parse_env_file, processes
from tests.deploy.test_config_files import compose, compose_project, yaml_to_dict
from tests.sfu.janusproc import ENTRYPOINT, JanusServer, require_janus

HEALTHCHECK = REPO / "deploy" / "janus" / "healthcheck"
SECRET = "a-secret-of-24-characters"
KEY = "a-key-of-at-least-16-chars"

# Records its arguments and environment, then exits: stands in for Janus.
FAKE_JANUS = """#!/bin/sh
python3 - "$@" <<'PY'
import json, os, sys
json.dump({"args": sys.argv[1:], "env": dict(os.environ)}, open(os.environ["RECORD"], "w"))
PY
"""


def render(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict, Path]:
    """Run the entrypoint with a fake janus; return the result, what janus got, the runtime dir."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "janus"
    fake.write_text(FAKE_JANUS)
    fake.chmod(0o755)
    runtime = tmp_path / "run"
    record = tmp_path / "record.json"
    environ = {
        **clean_environ(),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RECORD": str(record),
        "JANUS_API_SECRET": SECRET,
        "JANUS_ADMIN_KEY": KEY,
        "JANUS_WS_IP": "127.0.0.1",
        "JANUS_WS_PORT": "18188",
        "JANUS_RUNTIME_DIR": str(runtime),
        **env,
    }
    result = subprocess.run(
        [str(ENTRYPOINT), "--debug-timestamps"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
    )
    started = json.loads(record.read_text()) if record.exists() else {}
    return result, started, runtime


def settings_of(path: Path) -> dict[str, str]:
    """`name = value` lines of a rendered jcfg (comments dropped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_entrypoint_renders_a_private_copy_and_starts_janus_on_it(tmp_path):
    """Secrets land in mode-600 files in a 700 dir; Janus gets -F that dir and no secrets in env."""
    require_janus()
    result, started, runtime = render(tmp_path)

    assert result.returncode == 0, result.stderr
    assert started["args"] == ["-F", str(runtime / "conf"), "--debug-timestamps"]
    assert "JANUS_API_SECRET" not in started["env"]
    assert "JANUS_ADMIN_KEY" not in started["env"]
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    names = sorted(p.name for p in (runtime / "conf").iterdir())
    assert names == ["janus.jcfg", "janus.plugin.videoroom.jcfg", "janus.transport.websockets.jcfg"]
    for name in names:
        path = runtime / "conf" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert re.search(r"@[A-Z0-9_]+@", path.read_text()) is None, name
    core = settings_of(runtime / "conf" / "janus.jcfg")
    assert core["api_secret"] == f'"{SECRET}"'
    assert (core["token_auth"], core["session_timeout"], core["reclaim_session_timeout"]) == (
        "false",
        "60",
        "30",
    )
    assert core["plugins_folder"] == f'"{runtime}/plugins"'
    assert core["full_trickle"] == "false"
    assert core["ice_ignore_list"] == '"vmnet,docker,br-,veth,172.29.80.,172.29.81."'
    assert core["rtp_port_range"] == '"20000-20999"'
    for absent in ("nat_1_1_mapping", "ice_enforce_list", "turn_server", "turn_user", "turn_pwd"):
        assert absent not in core, absent
    assert settings_of(runtime / "conf" / "janus.plugin.videoroom.jcfg")["admin_key"] == f'"{KEY}"'
    transport = settings_of(runtime / "conf" / "janus.transport.websockets.jcfg")
    assert (transport["ws_ip"], transport["ws_port"], transport["ws_acl"]) == (
        '"127.0.0.1"',
        "18188",
        '"127.0.0.1"',
    )
    assert "ws_unix" not in transport
    assert (transport["admin_ws"], transport["admin_wss"], transport["wss"]) == ("false",) * 3
    # Exactly the two libraries, nothing else to load.
    assert [p.name for p in (runtime / "plugins").iterdir()] == ["libjanus_videoroom.so"]
    assert [p.name for p in (runtime / "transports").iterdir()] == ["libjanus_websockets.so"]
    assert list((runtime / "events").iterdir()) == list((runtime / "loggers").iterdir()) == []


def test_optional_settings_appear_only_when_given(tmp_path):
    """Public IP, ICE enforce list, TURN for Janus and a UNIX socket are rendered when set."""
    require_janus()
    result, _started, runtime = render(
        tmp_path,
        JANUS_PUBLIC_IP="203.0.113.7",
        JANUS_ICE_ENFORCE_LIST="eth0",
        JANUS_TURN_SERVER="turn.example.org",
        JANUS_TURN_USER="1767225600:janus",
        JANUS_TURN_PWD="c2lnbmVkLXdpdGgtdHVybi1zZWNyZXQ=",
        JANUS_WS_UNIX=str(tmp_path / "api.sock"),
    )

    assert result.returncode == 0, result.stderr
    core = settings_of(runtime / "conf" / "janus.jcfg")
    assert core["nat_1_1_mapping"] == '"203.0.113.7"'
    assert core["ice_enforce_list"] == '"eth0"'
    assert "ice_ignore_list" not in core  # the enforce list decides
    assert (core["turn_server"], core["turn_port"], core["turn_type"]) == (
        '"turn.example.org"',
        "3478",
        '"udp"',
    )
    assert (core["turn_user"], core["turn_pwd"]) == (
        '"1767225600:janus"',
        '"c2lnbmVkLXdpdGgtdHVybi1zZWNyZXQ="',
    )
    transport = settings_of(runtime / "conf" / "janus.transport.websockets.jcfg")
    assert transport["ws_unix"] == f'"{tmp_path / "api.sock"}"'
    for absent in ("ws_ip", "ws_port", "ws_acl"):
        assert absent not in transport, absent


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JANUS_API_SECRET": ""}, "JANUS_API_SECRET must be set"),
        ({"JANUS_ADMIN_KEY": ""}, "JANUS_ADMIN_KEY must be set"),
        ({"JANUS_API_SECRET": "short"}, "JANUS_API_SECRET must be at least 16 characters"),
        ({"JANUS_ADMIN_KEY": 'x" ; admin_key = "x' * 2}, "JANUS_ADMIN_KEY may only contain"),
        (
            {"JANUS_WS_IP": ""},
            "set JANUS_WS_IP (an internal address of this host) or JANUS_WS_UNIX",
        ),
        (
            {"JANUS_WS_IP": "192.0.2.1", "JANUS_WS_WAIT": "0"},
            "192.0.2.1 is not an address of this host; refusing to listen on every interface",
        ),
        ({"JANUS_WS_ACL": "127.0.0.1 ; x"}, "JANUS_WS_ACL has characters other than"),
        ({"JANUS_RTP_PORT_RANGE": "99-10"}, "JANUS_RTP_PORT_RANGE must be MIN-MAX"),
        ({"JANUS_TURN_SERVER": "turn.example.org"}, "JANUS_TURN_USER must be set"),
    ],
)
def test_entrypoint_refuses_unsafe_settings(tmp_path, env, message):
    """Missing or malformed secrets, a non-local listen address, bad lists: exit before Janus."""
    result, started, _runtime = render(tmp_path, **env)

    assert result.returncode != 0
    assert message in result.stderr
    assert started == {}


@pytest.mark.slow
def test_healthcheck_sees_a_serving_janus_and_a_missing_one(tmp_path):
    """deploy/janus/healthcheck: 0 against Janus' API over TCP, non-zero when nothing listens."""
    with processes(tmp_path) as start:
        server = JanusServer(start, name="janus-health", isolated=False)
        server.start()
        env = {**clean_environ(), "JANUS_WS_IP": "127.0.0.1", "JANUS_WS_PORT": str(server.port)}
        ok = subprocess.run([str(HEALTHCHECK)], env=env, capture_output=True, timeout=10)
        server.stop()
    assert ok.returncode == 0, ok.stderr
    env["JANUS_WS_PORT"] = str(free_port())
    down = subprocess.run([str(HEALTHCHECK)], env=env, capture_output=True, timeout=10)
    assert down.returncode != 0


def test_compose_runs_janus_on_the_host_with_its_api_on_the_edge_gateway(tmp_path):
    """The janus service: profile sfu, host network, no ports, API on 172.29.80.1, .env secrets."""
    project = compose_project(tmp_path)
    env = parse_env_file(project / ".env")
    result = compose(project, "config")
    assert result.returncode == 0, result.stderr
    config = yaml_to_dict(result.stdout)
    janus = config["services"]["janus"]

    assert janus["profiles"] == ["sfu"]
    assert janus["network_mode"] == "host"
    assert "ports" not in janus
    assert janus["read_only"] is True
    assert janus["environment"]["JANUS_API_SECRET"] == env["JANUS_API_SECRET"]
    assert janus["environment"]["JANUS_ADMIN_KEY"] == env["JANUS_ADMIN_KEY"]
    assert len(env["JANUS_API_SECRET"]) >= 32 and env["JANUS_API_SECRET"] != env["JANUS_ADMIN_KEY"]
    (edge,) = config["networks"]["edge"]["ipam"]["config"]
    assert janus["environment"]["JANUS_WS_IP"] == edge["gateway"] == "172.29.80.1"
    assert janus["environment"]["JANUS_WS_ACL"] == "172.29.80."
    # Without JANUS_URL the site runs without an SFU, as before.
    assert env["JANUS_URL"] == ""
