"""Who is on the other end of a WebSocket: the session cookie's user, found once.

Channels' `AuthMiddlewareStack` would do this with its session middleware,
which wraps the socket's `send` to save a changed session and so runs on
every frame the server sends, and its user lookup on Django's one thread for
thread-sensitive code, so a burst of sockets opening on one worker would log
in one at a time. A signaling socket never changes its session: this reads
the session and the user once, at the handshake, on the database threads of
`infra.db` (where the rest of a join's queries run), with the same checks as
Channels' and Django's own (backend, session hash, `is_active`), and leaves
`send` alone.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.auth import get_user
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from infra.db import db_call

# The plain function under Channels' `database_sync_to_async` wrapper: the
# session hash and backend checks, as the HTTP side makes them.
_get_user = get_user.func


def user_for_session(session_key: str | None) -> Any:
    """The user whose session `session_key` is, else an AnonymousUser."""
    if not session_key:
        return AnonymousUser()
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return _get_user({"session": store})


class SessionUserMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        user = await db_call(user_for_session)(key)
        return await self.inner(dict(scope, user=user, session_key=key), receive, send)


def WebSocketAuthStack(inner: Any) -> Any:
    """Cookies, then the session's user."""
    return CookieMiddleware(SessionUserMiddleware(inner))
