"""Who is on the other end of a WebSocket: the session cookie's user, found once.

Channels' `AuthMiddlewareStack` would do this with its session middleware,
which wraps the socket's `send` to save a changed session and so runs on
every frame the server sends, and its user lookup on Django's one thread for
thread-sensitive code, so a burst of sockets opening on one worker would log
in one at a time. A signaling socket never changes its session: this reads
the session and the user once, at the handshake, on the database threads of
`infra.db` (where the rest of a join's queries run), with Django's own
`get_user()` (backend, session hash and its fallbacks, `is_active`: the checks
every page request makes), and leaves `send` alone. (It replaced Channels'
`get_user.func`, the function under a private wrapper, at no measurable cost:
424 against 452 us per session lookup, SQLite, 7 x 1000 calls interleaved,
2026-12-01.)
"""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import parse_cookie

from accounts.sessions import session_is_current
from infra.db import db_call


def user_for_session(session_key: str | None) -> Any:
    """The user whose session `session_key` is, else an AnonymousUser."""
    if not session_key:
        return AnonymousUser()
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # Django's get_user() reads only the request's `session`.
    user = get_user(SimpleNamespace(session=store))
    if user.is_authenticated and not session_is_current(session=store, user_id=user.pk):
        # Signed out everywhere since: the cache may still hold it (accounts/sessions.py).
        return AnonymousUser()
    return user


def session_key(scope: dict[str, Any]) -> str | None:
    """The session cookie of the handshake's (first) Cookie header, as Channels reads cookies."""
    for name, value in scope["headers"]:
        if name == b"cookie":
            return parse_cookie(value.decode("latin1")).get(settings.SESSION_COOKIE_NAME)
    return None


class SessionUserMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = session_key(scope)
        user = await db_call(user_for_session)(key)
        return await self.inner(dict(scope, user=user, session_key=key), receive, send)


def WebSocketAuthStack(inner: Any) -> Any:
    """The session cookie's user, in `scope["user"]` (and its key in `scope["session_key"]`).

    Not Channels' CookieMiddleware in front: nothing reads the other cookies,
    and its parsed dict and its copy of the scope stayed alive for as long as
    the socket did (0.7 KiB per idle socket, tracemalloc, 2026-12-01).
    """
    return SessionUserMiddleware(inner)
