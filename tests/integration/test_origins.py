"""The WebSocket origin check on real daphne workers: 403 unless it is the site's own origin."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

pytestmark = pytest.mark.slow


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws/signaling/"


async def handshake_status(base: str, key: str, origin: str | None, **headers: str) -> int:
    """Open a socket with `origin`: 101 when accepted (and ping answers), else the HTTP status."""
    try:
        ws = await connect(
            ws_url(base),
            origin=origin,
            additional_headers={"Cookie": f"sessionid={key}", **headers},
            open_timeout=20,
        )
    except InvalidStatus as refused:
        return refused.response.status_code
    try:
        await ws.send(json.dumps({"type": "ping", "id": "o"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong", "re": "o"}
        return ws.response.status_code
    finally:
        await ws.close()


async def test_a_worker_accepts_only_its_own_scheme_host_and_port(make_stack):
    """http://127.0.0.1:PORT opens; the other worker's port, https or no Origin get 403."""
    stack = make_stack(workers=2)
    here, other = stack.workers
    port = here.rsplit(":", 1)[1]
    ((_, key),) = stack.sessions(1)
    assert await handshake_status(here, key, here) == 101
    # Another page of the same machine, served by the other worker: another origin.
    assert await handshake_status(here, key, other) == 403
    assert await handshake_status(here, key, f"https://127.0.0.1:{port}") == 403
    assert await handshake_status(here, key, "http://127.0.0.1") == 403
    assert await handshake_status(here, key, f"http://localhost:{port}") == 403
    assert await handshake_status(here, key, None) == 403
    # The other worker takes its own origin (the socket, not the session, is refused above).
    assert await handshake_status(other, key, other) == 101


async def test_behind_the_proxy_the_forwarded_scheme_decides(make_stack):
    """BEHIND_PROXY (--proxy-headers): with X-Forwarded-Proto https only https://host:PORT opens."""
    stack = make_stack(workers=1, BEHIND_PROXY="true")
    (base,) = stack.workers
    port = base.rsplit(":", 1)[1]
    ((_, key),) = stack.sessions(1)
    # As Caddy forwards a browser's wss:// handshake.
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    assert await handshake_status(base, key, f"https://127.0.0.1:{port}", **proxied) == 101
    assert await handshake_status(base, key, base, **proxied) == 403
    # Without the header the connection is what daphne saw: plain http.
    assert await handshake_status(base, key, base) == 101
    assert await handshake_status(base, key, f"https://127.0.0.1:{port}") == 403
