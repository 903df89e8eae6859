"""Login sessions that cannot come back: each is valid only in its user's current generation.

Sessions are read through the cache (SESSION_ENGINE cached_db), and ending
one removes its cached copy before the database delete commits. A request in
between reads the row that is still there and caches it again, for the
session's whole age: "sign out everywhere" used to leave every session it
raced with alive (20 of 20 in tests/integration/test_revocation.py), and
they opened signaling sockets. So the cache is not trusted to forget: every
session carries its user's generation (`SessionEpoch`) from login, and a
session of an older generation is ended wherever it shows up, on every
request (`SessionEpochMiddleware`) and at every socket's handshake
(accounts/middleware.py), against the database. "Sign out everywhere"
(accounts/services.py) adds one in the transaction that deletes the sessions,
so once it has committed no copy, cached or racing, is any good.

Password changes and deactivations need none of this: Django checks the
password's hash and `is_active` against the user's row on every request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from accounts.models import SessionEpoch

# The session key holding the generation the session was made in.
EPOCH_KEY = "_accounts_epoch"


def current_epoch(*, user_id: int) -> int:
    epoch = SessionEpoch.objects.filter(user_id=user_id).values_list("value", flat=True).first()
    return epoch or 0


def session_stamp(*, session: Any, user_id: int) -> None:
    """Stamp a new login's session with its user's current generation."""
    session[EPOCH_KEY] = current_epoch(user_id=user_id)


def session_is_current(*, session: Any, user_id: int) -> bool:
    return session.get(EPOCH_KEY, 0) == current_epoch(user_id=user_id)


def epoch_advance(*, user_id: int) -> None:
    """End every session `user_id` has now (when the caller's transaction commits)."""
    SessionEpoch.objects.get_or_create(user_id=user_id)
    SessionEpoch.objects.filter(user_id=user_id).update(value=F("value") + 1)


class SessionEpochMiddleware:
    """After AuthenticationMiddleware: a session of an older generation is anonymous, and gone.

    Lazy, like `request.user` itself: a request that never asks who it is
    costs no query.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = request.user
        request.user = SimpleLazyObject(lambda: self.checked(request, found))
        return self.get_response(request)

    @staticmethod
    def checked(request: HttpRequest, user: Any) -> Any:
        if user.is_authenticated and not session_is_current(
            session=request.session, user_id=user.pk
        ):
            request.session.flush()
            return AnonymousUser()
        return user
