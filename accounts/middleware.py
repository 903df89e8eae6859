"""Who is on the other end of a WebSocket: Channels' auth, on the database threads.

Channels' `AuthMiddleware` loads the session and the user on Django's one
thread for thread-sensitive code, so a burst of sockets opening on one worker
logs in one at a time. This is the same middleware with that lookup moved to
the database threads of `rooms.db`, where the rest of a join's queries run.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddleware, get_user
from channels.sessions import CookieMiddleware, SessionMiddleware

from rooms.db import db_call

# The plain function under Channels' `database_sync_to_async` wrapper.
_get_user = get_user.func


class ThreadedAuthMiddleware(AuthMiddleware):
    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        scope["user"]._wrapped = await db_call(_get_user)(scope)


def WebSocketAuthStack(inner: Any) -> Any:
    """Cookies, then the session, then the user: Channels' AuthMiddlewareStack, threaded."""
    return CookieMiddleware(SessionMiddleware(ThreadedAuthMiddleware(inner)))
