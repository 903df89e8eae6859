"""Joins in flight per account on this worker: a few at once, the rest refused at once.

A socket handles one frame at a time, so it has one join in flight at most;
this bounds an account's many sockets too, before any Redis or database
work: a script's burst of joins costs this worker almost nothing, and the
database sees at most a few at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings


class JoinSlots:
    """Each account's JOINS_IN_FLIGHT_PER_USER join slots on this worker."""

    def __init__(self) -> None:
        # Joins (create, join, resume) in flight here, per account.
        self.joining: dict[int, int] = {}

    def take(self, user_id: int) -> contextlib.AbstractContextManager[None] | None:
        """Hold one of `user_id`'s slots for the `with` block; None when all are taken."""
        if self.joining.get(user_id, 0) >= settings.JOINS_IN_FLIGHT_PER_USER:
            return None
        self.joining[user_id] = self.joining.get(user_id, 0) + 1
        return self._hold(user_id)

    @contextlib.contextmanager
    def _hold(self, user_id: int) -> Iterator[None]:
        try:
            yield
        finally:
            left = self.joining[user_id] - 1
            if left:
                self.joining[user_id] = left
            else:
                del self.joining[user_id]
