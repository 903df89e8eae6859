"""accounts/middleware.py: a WebSocket's user is its session cookie's, checked as Django does."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from config.asgi import application
from tests.conftest import session_cookie
from tests.support.transport import WebsocketCommunicator

pytestmark = pytest.mark.django_db(transaction=True)


async def open_with_cookie(cookie: str | None) -> WebsocketCommunicator:
    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost")]
    if cookie is not None:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    ws = WebsocketCommunicator(application, "/ws/signaling/", headers=headers)
    connected, _ = await ws.connect()
    assert connected
    return ws


async def test_a_valid_session_is_its_user(make_user):
    """A live session's user is signed in: ping answers pong."""
    user = await database_sync_to_async(make_user)()
    ws = await open_with_cookie(await database_sync_to_async(session_cookie)(user))
    try:
        await ws.send_json_to({"type": "ping", "id": "1"})
        assert await ws.receive_json_from() == {"type": "pong", "re": "1"}
    finally:
        await ws.disconnect()


@pytest.mark.parametrize(
    "spoil",
    ["no cookie", "unknown key", "password changed", "deactivated", "logged out"],
)
async def test_sockets_without_a_valid_session_are_closed_4401(make_user, spoil):
    """No cookie, an unknown key, a password change, a deactivated user or a logout: 4401."""
    user = await database_sync_to_async(make_user)()
    cookie = await database_sync_to_async(session_cookie)(user)

    def spoil_it() -> str | None:
        if spoil == "no cookie":
            return None
        if spoil == "unknown key":
            return "x" * 32
        if spoil == "password changed":
            user.set_password("another password entirely")
            user.save()
        elif spoil == "deactivated":
            user.is_active = False
            user.save()
        elif spoil == "logged out":
            from importlib import import_module

            from django.conf import settings

            import_module(settings.SESSION_ENGINE).SessionStore(cookie).delete()
        return cookie

    ws = await open_with_cookie(await database_sync_to_async(spoil_it)())
    assert await ws.receive_output(3) == {"type": "websocket.close", "code": 4401}
    await ws.disconnect()
