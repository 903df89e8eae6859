"""The worker's sockets: by account, and the leaves of the closed ones still under way."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

from signaling.socket import Socket

# How long a closed socket's consumer waits for its leave (`Registry.finish`),
# well inside daphne's --application-close-timeout (10 s).
FINISH_WAIT = 5.0


class Registry:
    """The signed-in sockets of this worker (one per event loop)."""

    def __init__(self) -> None:
        self.sockets: set[Socket] = set()
        self.by_user: dict[int, set[Socket]] = {}
        # Closed sockets' leaves under way (`finish`).
        self.closings: set[asyncio.Task] = set()
        self.all_closed = asyncio.Event()

    def add(self, socket: Socket) -> None:
        self.sockets.add(socket)
        self.by_user.setdefault(socket.account.user.pk, set()).add(socket)

    def discard(self, socket: Socket) -> None:
        self.sockets.discard(socket)
        user_id = socket.account.user.pk
        mine = self.by_user.get(user_id)
        if mine is not None:
            mine.discard(socket)
            if not mine:
                del self.by_user[user_id]
        if not self.sockets:
            self.all_closed.set()

    def of_user(self, user_id: int, *, session: str | None = None) -> list[Socket]:
        """The account's sockets here; only those of login session `session` when given."""
        return [
            socket
            for socket in self.by_user.get(user_id, ())
            if session is None or socket.account.session == session
        ]

    def in_room(self, room_id: int) -> Iterator[Socket]:
        for socket in list(self.sockets):
            membership = socket.membership
            if membership is not None and membership.room_id == room_id:
                yield socket

    def local_peer_ids(self) -> list[str]:
        return [s.membership.peer_id for s in self.sockets if s.membership is not None]

    def channels_by_user(self) -> dict[int, list[str]]:
        return {user_id: [s.channel_name for s in mine] for user_id, mine in self.by_user.items()}

    async def finish(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a closed socket's leave to the end; wait for it at most `FINISH_WAIT` seconds.

        daphne cancels an application still running `--application-close-timeout`
        (10 s, transport/patches.py) after its socket closed, and logs it. When
        thousands close at once their leaves queue for the database threads
        longer than that (5,000 on one worker: about 15 s), and a leave cut
        short kept its peer in the room, for the others, until the sweeper's
        timeout. So the worker holds the work; the consumer waits for it (in
        the tests and whenever the worker keeps up, a closed socket's steps
        are over when its consumer is), but not past daphne's patience, and
        its cancellation does not reach the work.
        """
        task = asyncio.ensure_future(work)
        self.closings.add(task)
        task.add_done_callback(self.closings.discard)
        await asyncio.wait({task}, timeout=FINISH_WAIT)
