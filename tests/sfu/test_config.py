"""The SFU's settings, the per-loop client, and the TURN credential for Janus itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import ipaddress
import subprocess
import time

import pytest
from django.core.management import CommandError, call_command

from sfu import CandidatePolicy, JanusClient, candidate_policy, get_janus
from tests.deploy.procs import PYTHON, REPO, clean_environ


def check_errors(**env: str) -> list[str]:
    """Run `manage.py check` with ``env``; return the SFU's error lines ([] if it passes)."""
    result = subprocess.run(
        [PYTHON, "manage.py", "check"],
        cwd=REPO,
        env={**clean_environ(), "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode == 0:
        return []
    return [line for line in result.stderr.splitlines() if line.startswith("?: (sfu.")]


GOOD = {
    "JANUS_URL": "ws://127.0.0.1:8188",
    "JANUS_API_SECRET": "s" * 16,
    "JANUS_ADMIN_KEY": "k" * 16,
}


def test_janus_settings_are_checked_when_janus_url_is_set():
    """JANUS_URL needs both secrets and a sane keepalive; unset, nothing is required."""
    assert check_errors() == []
    assert check_errors(**GOOD) == []
    assert check_errors(**{**GOOD, "JANUS_URL": "unix:/run/janus/api.sock"}) == []
    assert check_errors(**{**GOOD, "JANUS_URL": "http://127.0.0.1:8088"}) == [
        "?: (sfu.E001) JANUS_URL must be ws://host:port, wss://... or unix:/path"
    ]
    assert check_errors(**{**GOOD, "JANUS_ADMIN_KEY": ""}) == [
        "?: (sfu.E002) JANUS_URL is set: JANUS_API_SECRET and JANUS_ADMIN_KEY must be set too"
        " (at least 16 characters each; deploy/make-env writes them)"
    ]
    assert check_errors(**{**GOOD, "JANUS_KEEPALIVE_INTERVAL": "60"}) == [
        "?: (sfu.E003) JANUS_KEEPALIVE_INTERVAL must be 1-20 s (Janus' session_timeout is 60 s)"
    ]


def test_every_sfu_setting_problem_is_reported_at_once():
    """One `check` names every bad SFU setting, not only the first."""
    assert check_errors(
        JANUS_URL="http://127.0.0.1:8088",
        JANUS_KEEPALIVE_INTERVAL="0",
        MESH_MAX_PEERS="13",
        SFU_CAPACITY_MAX="11",
        MESH_RETURN_AFTER="30",
        SFU_RETURN_GRACE="30",
    ) == [
        "?: (sfu.E001) JANUS_URL must be ws://host:port, wss://... or unix:/path",
        "?: (sfu.E002) JANUS_URL is set: JANUS_API_SECRET and JANUS_ADMIN_KEY must be set too"
        " (at least 16 characters each; deploy/make-env writes them)",
        "?: (sfu.E003) JANUS_KEEPALIVE_INTERVAL must be 1-20 s (Janus' session_timeout is 60 s)",
        "?: (sfu.E004) MESH_MAX_PEERS must be 1-12",
        "?: (sfu.E005) SFU_CAPACITY_MAX must be 12-200",
        "?: (sfu.E006) SFU_RETURN_GRACE must be at least 1 and below MESH_RETURN_AFTER",
    ]


def test_the_launcher_refuses_to_serve_with_a_bad_sfu_setting():
    """`python -m config.serve` runs the system checks: exits naming the error, serves nothing."""
    result = subprocess.run(
        [PYTHON, "-m", "config.serve", "-b", "127.0.0.1", "-p", "1"],
        cwd=REPO,
        env={**clean_environ(), "DEBUG": "true", **GOOD, "JANUS_ADMIN_KEY": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("SystemCheckError: System check identified some issues:")
    assert "?: (sfu.E002) JANUS_URL is set: JANUS_API_SECRET and JANUS_ADMIN_KEY" in result.stderr


def test_candidate_networks_are_checked_and_default_to_public_only(settings):
    """SFU_CANDIDATE_ALLOW / _DENY take CIDRs (a typo stops start-up); unset, public only."""
    assert check_errors(SFU_CANDIDATE_ALLOW="127.0.0.0/8, ::1/128", SFU_CANDIDATE_DENY="") == []
    assert check_errors(SFU_CANDIDATE_ALLOW="10.0.0.0/33") == [
        "?: (sfu.E007) SFU_CANDIDATE_ALLOW / SFU_CANDIDATE_DENY: '10.0.0.0/33' is not a network"
        " (CIDR)"
    ]
    assert check_errors(SFU_CANDIDATE_DENY="example.org") == [
        "?: (sfu.E007) SFU_CANDIDATE_ALLOW / SFU_CANDIDATE_DENY: 'example.org' is not a network"
        " (CIDR)"
    ]
    settings.SFU_CANDIDATE_ALLOW = ["198.18.0.0/15"]
    settings.SFU_CANDIDATE_DENY = ["198.18.5.0/24"]
    policy = candidate_policy()
    assert policy == CandidatePolicy(
        allow=(ipaddress.ip_network("198.18.0.0/15"),),
        deny=(ipaddress.ip_network("198.18.5.0/24"),),
    )
    settings.SFU_CANDIDATE_ALLOW = settings.SFU_CANDIDATE_DENY = []
    assert candidate_policy() == CandidatePolicy()


async def test_get_janus_is_none_without_an_sfu_and_one_client_per_loop(settings):
    """Unset JANUS_URL means no SFU; set, the loop gets one client built from the settings."""
    settings.JANUS_URL = ""
    assert get_janus() is None
    settings.JANUS_URL = "unix:/nonexistent/api.sock"
    settings.JANUS_API_SECRET = "s" * 16
    client = get_janus()
    assert isinstance(client, JanusClient)
    assert get_janus() is client
    assert (client.url, client.api_secret, client.keepalive_interval, client.reclaim_window) == (
        "unix:/nonexistent/api.sock",
        "s" * 16,
        15,
        25,
    )


def test_turn_credential_for_janus_is_coturns_rest_scheme(settings):
    """janus_turn_credential prints "<expiry>:janus" signed with TURN_SECRET, as coturn checks."""
    settings.TURN_SECRET = "turn-secret-for-the-test"
    out = io.StringIO()
    before = int(time.time())
    call_command("janus_turn_credential", "--days", "7", stdout=out)

    user_line, password_line = out.getvalue().splitlines()
    user = user_line.removeprefix("JANUS_TURN_USER=")
    expiry, name = user.split(":")
    assert name == "janus"
    assert before + 7 * 86400 <= int(expiry) <= int(time.time()) + 7 * 86400
    digest = hmac.new(b"turn-secret-for-the-test", user.encode(), hashlib.sha1).digest()
    assert password_line == f"JANUS_TURN_PWD={base64.b64encode(digest).decode()}"
    settings.TURN_SECRET = ""
    with pytest.raises(CommandError, match="TURN_SECRET is not set"):
        call_command("janus_turn_credential")
