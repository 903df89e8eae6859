"""Closing an account's signaling sockets on every worker when its sessions end.

`accounts.signals.sessions_revoked` says when (logout, a new password,
deactivation, an admin); this broadcasts it to every worker (the WORKERS
group, signaling/runtime/group.py), which finds its own sockets of that
account (of that one session, for a logout) and has each leave its room and close
with 4401, which the client explains as "You were signed out". A socket
knows its session only by a hash, so no session key travels through Redis.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.dispatch import receiver

from accounts.signals import REMOVED, sessions_revoked
from rooms import events
from rooms.models import Participant


def session_hash(session_key: str | None) -> str | None:
    if not session_key:
        return None
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


@receiver(sessions_revoked, dispatch_uid="rooms.close_revoked_sockets")
def close_revoked_sockets(
    sender: Any, user_id: int, session_key: str | None, reason: str, **kwargs: Any
) -> None:
    left = Participant.LeftReason.KICKED if reason == REMOVED else Participant.LeftReason.SIGNED_OUT
    events.publish_on_commit(
        (events.user_revoke(user_id=user_id, session=session_hash(session_key), reason=left),)
    )
