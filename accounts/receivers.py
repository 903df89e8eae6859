"""What ends an account's sessions: Django's own signals received, `sessions_revoked` sent.

Logging in and out, a new password, deactivation, losing staff rights,
deletion: each receiver here keeps the UserSession rows in step and says
which sessions ended (accounts/signals.py declares the signal). Connected by
`AccountsConfig.ready()`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, user_logged_in, user_logged_out
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, pre_save
from django.dispatch import receiver

from accounts.models import UserSession
from accounts.sessions import session_stamp
from accounts.signals import SIGNED_OUT, send_sessions_revoked


@receiver(user_logged_in, dispatch_uid="accounts.track_session")
def track_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if key:
        UserSession.objects.update_or_create(session_key=key, defaults={"user": user})
        session_stamp(session=session, user_id=user.pk)


@receiver(user_logged_out, dispatch_uid="accounts.end_session")
def end_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is None or not key:
        return
    UserSession.objects.filter(session_key=key).delete()
    send_sessions_revoked(user_id=user.pk, session_key=key, reason=SIGNED_OUT)


# What a signaling socket learns about its user once, at its handshake: a change
# to any of these reaches the sockets by closing them (they sign in again as
# the user is now). Staff may moderate any room (rooms.services.can_moderate).
_WATCHED = ("password", "is_active", "is_staff", "is_superuser")


@receiver(pre_save, dispatch_uid="accounts.credentials_changed")
def credentials_changed(
    sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any
) -> None:
    """A new password or a deactivation ends every session (Django's own rule for HTTP); staff
    rights taken away close every socket, which held them since its handshake."""
    if sender is not get_user_model() or instance.pk is None:
        return
    if update_fields is not None and not set(_WATCHED) & set(update_fields):
        return  # e.g. login's last_login update: no query at all
    before = sender.objects.filter(pk=instance.pk).values(*_WATCHED).first()
    if before is None:
        return
    if (
        before["password"] != instance.password
        or (before["is_active"] and not instance.is_active)
        or (before["is_staff"] and not instance.is_staff)
        or (before["is_superuser"] and not instance.is_superuser)
    ):
        send_sessions_revoked(user_id=instance.pk, session_key=None, reason=SIGNED_OUT)


@receiver(m2m_changed, dispatch_uid="accounts.permissions_removed")
def permissions_removed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """Permissions or groups taken from a staff user, or a permission from their group: their
    sockets close, like a demotion's. (A clear is looked at before it happens: after it,
    nobody can say whom it concerned.)"""
    if action not in ("post_remove", "pre_clear"):
        return
    user_model = get_user_model()
    staff = user_model.objects.filter(is_staff=True)
    if sender in (user_model.user_permissions.through, user_model.groups.through):
        if not reverse:
            users = staff.filter(pk=instance.pk)
        elif action == "post_remove":
            users = staff.filter(pk__in=pk_set)
        else:  # a permission or a group cleared of its users
            users = staff.filter(pk__in=instance.user_set.values("pk"))
    elif sender is Group.permissions.through:
        if not reverse:
            groups = [instance.pk]
        elif action == "post_remove":
            groups = list(pk_set)
        else:  # a permission cleared of its groups
            groups = list(instance.group_set.values_list("pk", flat=True))
        users = staff.filter(groups__in=groups).distinct()
    else:
        return
    for user_id in users.values_list("pk", flat=True):
        send_sessions_revoked(user_id=user_id, session_key=None, reason=SIGNED_OUT)


@receiver(post_delete, dispatch_uid="accounts.user_deleted")
def user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    if sender is get_user_model():
        send_sessions_revoked(user_id=instance.pk, session_key=None, reason=SIGNED_OUT)
