"""Everything that decides what a client is told about STUN and TURN.

STUN servers go to anyone signed in (the session config, put together by
`rooms.wire.session_config`). TURN credentials go only to a signaling socket
seated in a room: in its `joined`, and again in an `ice-servers` message
half-way through their life for as long as the seat lasts
(signaling/consumer.py). A relay is worth something only during a call, so an
account that is in none, or was signed out or blocked, gets none, and what
it was given stops allocating `TURN_TTL` seconds after it was issued.

TURN credentials follow the TURN REST API scheme (draft-uberti-behave-turn-rest)
that coturn checks with `use-auth-secret`: the username is
"<unix expiry>:<pool>" and the password is base64(HMAC-SHA1(secret, username)).
The secret itself never leaves the server.

The pool is what coturn's `user-quota` counts: coturn counts the allocations
of every username that differs only in its expiry together, and counts
nothing else per client. The pool is the client's address (IPv4, or the /64
of an IPv6 address: infra.counters.address_key, like every per-address
limit), so every account seated from one address shares that address's
quota (deploy/turnserver.conf): thirty accounts made by one script hold no
more relays than one classroom behind a NAT, and the other addresses keep
theirs. Per account the bound is the same pool: an account's credentials are
its seats' (one per room, at most SOCKETS_PER_USER sockets), each counted
under the address its socket came from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from infra import metrics
from infra.counters import address_key


@dataclass(frozen=True)
class IceConfig:
    """What a client gets for its RTCConfiguration, and when its TURN credential expires."""

    servers: list[dict[str, Any]]
    transport_policy: str
    # Unix time the TURN credential stops allocating; None without TURN (nothing to renew).
    expires: int | None


def turn_password(*, secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_pool(*, address: str | None, user_id: int) -> str:
    """The quota a seated socket's relays count against: its client address (IPv6: the /64).

    A socket whose address the server does not know (a UNIX socket) counts
    on its account alone.
    """
    return address_key(address) or f"user-{user_id}"


def turn_credentials(*, pool: str, expires: int) -> dict[str, str]:
    username = f"{expires}:{pool}"
    metrics.TURN_CREDENTIALS.inc()
    return {
        "username": username,
        "credential": turn_password(secret=settings.TURN_SECRET, username=username),
    }


def stun_servers() -> list[dict[str, Any]]:
    return [{"urls": list(settings.STUN_URLS)}] if settings.STUN_URLS else []


def turn_configured() -> bool:
    return bool(settings.TURN_URLS and settings.TURN_SECRET)


def session_ice() -> IceConfig:
    """ICE for a signed-in client that is in no call: STUN only."""
    return IceConfig(
        servers=stun_servers(), transport_policy=settings.ICE_TRANSPORT_POLICY, expires=None
    )


def seated_ice(*, user_id: int, address: str | None, now: float) -> IceConfig:
    """ICE for a socket seated in a room: STUN, and a TURN credential valid for TURN_TTL."""
    if not turn_configured():
        return session_ice()
    expires = int(now) + settings.TURN_TTL
    turn = {
        "urls": list(settings.TURN_URLS),
        **turn_credentials(pool=turn_pool(address=address, user_id=user_id), expires=expires),
    }
    return IceConfig(
        servers=[*stun_servers(), turn],
        transport_policy=settings.ICE_TRANSPORT_POLICY,
        expires=expires,
    )
