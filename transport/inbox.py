"""A socket's one queue: the server puts the socket's frames in it, the channel layer its events.

Daphne hands each connection's messages to the application through an
`asyncio.Queue` and gives the application that queue's `get` as `receive`.
The launcher (transport/patches.py) makes that queue an `Inbox`, and the test
suite's communicator (tests/support/transport.py) does the same, so a consumer can
tell, from the `receive` it was given, that it may have its channel-layer
events delivered into the same queue (`new_channel_into`) and read both with
one `get()`: no pump task, no second queue, no `asyncio.wait()` per message.

Nothing else creates an Inbox, so a `receive` wrapped by a middleware (or
handed out by another server) is not one, and the consumer takes Channels'
ordinary path.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any


class Inbox:
    """The queue of one connection; its `get` is the ASGI `receive` callable.

    Unbounded, one reader at a time (the socket's consumer; Django's ASGI
    handler for HTTP) and any number of writers
    (daphne's `put_nowait`, the channel layer's, the test communicator's
    `put`). Not an `asyncio.Queue`: that one carries two waiter deques and a
    `join()` Event (a third) that nothing here uses; an empty deque is ~600
    bytes, so an idle socket held ~2.2 KiB for them (tracemalloc, 1,000 idle
    sockets, 2026-12-01; `python -m bench.memory`). This one holds its items
    and, while its reader waits, one future.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    async def get(self) -> Any:
        items = self._items
        while not items:
            if self._waiter is not None:
                raise RuntimeError("an Inbox has one reader; another get() is waiting")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return items.popleft()

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items


def inbox_of(receive: Callable[[], Any]) -> Inbox | None:
    """The Inbox whose `get` `receive` is, else None."""
    owner = getattr(receive, "__self__", None)
    if type(owner) is Inbox and getattr(receive, "__name__", None) == "get":
        return owner
    return None
