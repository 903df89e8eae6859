"""The signal that says an account's sessions stopped being valid (sent by accounts/receivers.py).

`sessions_revoked` is sent (once the change is committed) when a session, or
every session, of a user ends: logout, a new password, deactivation,
deletion, or an admin signing the user out everywhere. Whoever holds
long-lived connections authenticated by those sessions (the signaling
sockets, signaling/revocation.py) listens and closes them; this app does not need
to know who they are.

Arguments: `user_id`; `session_key` (only that session, or None for all of
them); `reason`: "signed-out" (the user's own doing, or their password or
account changed) or "removed" (an admin removed them).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import Signal

sessions_revoked = Signal()

SIGNED_OUT = "signed-out"
REMOVED = "removed"


def send_sessions_revoked(*, user_id: int, session_key: str | None, reason: str) -> None:
    """Send `sessions_revoked` once the current transaction commits (at once outside one)."""
    transaction.on_commit(
        lambda: sessions_revoked.send(
            sender=get_user_model(), user_id=user_id, session_key=session_key, reason=reason
        )
    )
