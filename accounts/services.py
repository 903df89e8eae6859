"""Writes on accounts: signing a user out everywhere, blocking them, clearing expired sessions."""

from __future__ import annotations

from datetime import datetime
from importlib import import_module

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.db import transaction

from accounts.models import UserSession
from accounts.sessions import epoch_advance
from accounts.signals import REMOVED, send_sessions_revoked


def user_sign_out_everywhere(*, user: AbstractBaseUser) -> int:
    """End every login session of `user` and every call they are in; return the sessions ended."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    with transaction.atomic():
        # What makes it stick: a copy of a session cached again by a request
        # racing this transaction is of an older generation (accounts/sessions.py).
        epoch_advance(user_id=user.pk)
        keys = list(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
        for key in keys:
            store(key).delete()
        UserSession.objects.filter(user=user).delete()
        send_sessions_revoked(user_id=user.pk, session_key=None, reason=REMOVED)
    return len(keys)


def user_block(*, user: AbstractBaseUser) -> None:
    """Deactivate `user` (they cannot sign in again) and sign them out everywhere."""
    with transaction.atomic():
        # First, so that the sockets close as "removed" (the deactivation's own
        # revocation, sent after it, then finds nothing left to close).
        user_sign_out_everywhere(user=user)
        if user.is_active:
            user.is_active = False
            user.save(update_fields=["is_active"])


def sessions_prune(*, now: datetime) -> int:
    """Delete expired sessions (as `manage.py clearsessions`) and their tracking rows."""
    with transaction.atomic():
        expired = Session.objects.filter(expire_date__lt=now)
        UserSession.objects.filter(
            session_key__in=expired.values_list("session_key", flat=True)
        ).delete()
        count = expired.count()
        import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    return count
