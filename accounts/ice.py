"""Everything that decides what a client is told about STUN and TURN.

The session config that carries it (with the user and the signaling URL) is
put together by `rooms.wire.session_config`.

TURN credentials follow the TURN REST API scheme (draft-uberti-behave-turn-rest)
that coturn checks with `use-auth-secret`: the username is
"<unix expiry>:<user id>" and the password is base64(HMAC-SHA1(secret, username)).
The secret itself never leaves the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from django.conf import settings

from infra import metrics


def turn_password(*, secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_credentials(*, user_id: int, expires: int) -> dict[str, str]:
    username = f"{expires}:{user_id}"
    metrics.TURN_CREDENTIALS.inc()
    return {
        "username": username,
        "credential": turn_password(secret=settings.TURN_SECRET, username=username),
    }


def ice_servers(*, user_id: int, expires: int) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = []
    if settings.STUN_URLS:
        servers.append({"urls": list(settings.STUN_URLS)})
    if settings.TURN_URLS and settings.TURN_SECRET:
        servers.append(
            {"urls": list(settings.TURN_URLS), **turn_credentials(user_id=user_id, expires=expires)}
        )
    return servers
