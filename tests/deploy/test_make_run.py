"""`make run` serves through the production launcher: pages, static files and a 1012 close.

runserver (which `make run` used before) has none of the launcher's (config/serve.py)
patches, so there the server's 1012 ("come back") close raised instead of
closing the socket. This runs the Makefile's own `run` target.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.integration.conftest import free_port, wait_http

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

MAKE_SESSION = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
user = get_user_model().objects.create_user("runner", password=None)
session = SessionStore()
session.update({"_auth_user_id": str(user.pk), "_auth_user_hash": user.get_session_auth_hash(),
    "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"})
session.create()
print("KEY", session.session_key)
"""


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return response.status, response.headers.get("Content-Type", ""), response.read()


@pytest.fixture
def make_run(tmp_path) -> Iterator[tuple[str, subprocess.Popen, str]]:
    """`make run` on a free port and a fresh SQLite file: (base URL, make's process, a session)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "SIGTERM_DRAIN": "true",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DEBUG", None)  # make run's own default: on
    log_path = tmp_path / "make-run.log"
    with open(log_path, "w") as log:
        make = subprocess.Popen(
            # -o: the venv is there already; do not reinstall it.
            [
                *("make", "--no-print-directory", "-o", ".venv/.installed", "run"),
                *(f"PORT={port}", f"PY={sys.executable}"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/accounts/login/", timeout=90, proc=make)
        shell = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", MAKE_SESSION],
            cwd=ROOT,
            env={**env, "DEBUG": "true"},
            capture_output=True,
            text=True,
            check=True,
        )
        yield base, make, shell.stdout.split("KEY ", 1)[1].strip()
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGTERM)
        try:
            make.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(5)
    assert "Traceback" not in log_path.read_text()


def test_make_run_serves_pages_and_static_files(make_run):
    """The login page, and /static/ files straight from static/ (DEBUG on, as runserver did)."""
    base, _, _ = make_run
    status, kind, _ = get(f"{base}/accounts/login/")
    assert (status, kind.split(";")[0]) == (200, "text/html")
    status, kind, body = get(f"{base}/static/js/wire.js")
    assert (status, kind.split(";")[0]) == (200, "text/javascript")
    assert body == (ROOT / "static" / "js" / "wire.js").read_bytes()


async def test_make_run_closes_sockets_with_1012_on_sigterm(make_run):
    """A socket of `make run` works, and SIGTERM closes it with 1012 (runserver raised instead)."""
    base, make, key = make_run
    url = base.replace("http://", "ws://") + "/ws/signaling/"
    async with connect(url, origin=base, additional_headers={"Cookie": f"sessionid={key}"}) as ws:
        await ws.send(json.dumps({"type": "create", "id": "c"}))
        assert json.loads(await ws.recv())["type"] == "joined"
        # To make and the server it started: the worker closes its sockets with 1012.
        os.killpg(make.pid, signal.SIGTERM)
        await ws.wait_closed()
        assert ws.close_code == 1012
