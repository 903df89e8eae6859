"""When an account's sessions stop being valid, and the signal that says so.

`sessions_revoked` is sent (once the change is committed) when a session, or
every session, of a user ends: logout, a new password, deactivation,
deletion, or an admin signing the user out everywhere. Whoever holds
long-lived connections authenticated by those sessions (the signaling
sockets, rooms/revocation.py) listens and closes them; this app does not need
to know who they are.

Arguments: `user_id`; `session_key` (only that session, or None for all of
them); `reason`: "signed-out" (the user's own doing, or their password or
account changed) or "removed" (an admin removed them).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, user_logged_in, user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, pre_save
from django.dispatch import Signal, receiver

from accounts.models import UserSession

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


@receiver(user_logged_in, dispatch_uid="accounts.track_session")
def track_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        UserSession.objects.update_or_create(session_key=key, defaults={"user": user})


@receiver(user_logged_out, dispatch_uid="accounts.end_session")
def end_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is None or not key:
        return
    UserSession.objects.filter(session_key=key).delete()
    send_sessions_revoked(user_id=user.pk, session_key=key, reason=SIGNED_OUT)


@receiver(pre_save, dispatch_uid="accounts.credentials_changed")
def credentials_changed(
    sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any
) -> None:
    """A new password or a deactivation ends every session (Django's own rule for HTTP)."""
    if sender is not get_user_model() or instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return  # e.g. login's last_login update: no query at all
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        send_sessions_revoked(user_id=instance.pk, session_key=None, reason=SIGNED_OUT)


@receiver(post_delete, dispatch_uid="accounts.user_deleted")
def user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    if sender is get_user_model():
        send_sessions_revoked(user_id=instance.pk, session_key=None, reason=SIGNED_OUT)
