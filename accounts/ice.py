"""Everything that decides what a client is told about signaling, STUN and TURN.

TURN credentials follow the TURN REST API scheme (draft-uberti-behave-turn-rest)
that coturn checks with `use-auth-secret`: the username is
"<unix expiry>:<user id>" and the password is base64(HMAC-SHA1(secret, username)).
The secret itself never leaves the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from rooms.protocol import PROTOCOL_VERSION
from rooms.selectors import user_to_dict

SIGNALING_PATH = "/ws/signaling/"


def turn_password(*, secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_credentials(*, user_id: int, expires: int) -> dict[str, str]:
    username = f"{expires}:{user_id}"
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


def signaling_url(request: HttpRequest) -> str:
    if settings.SIGNALING_URL:
        return settings.SIGNALING_URL
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{SIGNALING_PATH}"


def session_config(*, user: AbstractBaseUser, request: HttpRequest) -> dict[str, Any]:
    """What a logged-in client needs to call: who it is, where to signal, ICE servers."""
    expires = int(time.time()) + settings.TURN_TTL
    return {
        "user": user_to_dict(user),
        "signaling": {"url": signaling_url(request), "protocol": PROTOCOL_VERSION},
        "iceServers": ice_servers(user_id=user.pk, expires=expires),
        "iceTransportPolicy": settings.ICE_TRANSPORT_POLICY,
        "expiresAt": datetime.fromtimestamp(expires, tz=UTC).isoformat().replace("+00:00", "Z"),
    }
