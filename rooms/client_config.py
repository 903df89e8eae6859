"""What a logged-in client is told before a call (docs/protocol.md section 1).

Who it is, where to signal, and STUN (accounts/ice.py decides what a client
is told about STUN and TURN): the JSON API's login answer and the pages'
`json_script` carry it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from accounts.ice import session_ice
from rooms import protocol as p
from rooms import wire

SIGNALING_PATH = "/ws/signaling/"


def signaling_url(request: HttpRequest) -> str:
    if settings.SIGNALING_URL:
        return settings.SIGNALING_URL
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{SIGNALING_PATH}"


def session_config(*, account: AbstractBaseUser, request: HttpRequest) -> wire.Message:
    """What a logged-in client needs before a call: who it is, where to signal, STUN.

    No TURN: credentials go to a socket seated in a room (`joined.ice`), so
    `iceServers` holds the STUN servers only and `expiresAt` is null.
    """
    return {
        "user": wire.user(account),
        "signaling": {"url": signaling_url(request), "protocol": p.PROTOCOL_VERSION},
        **wire.ice(session_ice()),
    }
