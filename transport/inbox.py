"""A socket's one queue: the server puts the socket's frames in it, the channel layer its events.

Daphne hands each connection's messages to the application through an
`asyncio.Queue` and gives the application that queue's `get` as `receive`.
The launcher (transport.server) makes that queue an `Inbox`, and the test
suite's communicator (transport.testing) does the same, so a consumer can
tell, from the `receive` it was given, that it may have its channel-layer
events delivered into the same queue (`new_channel_into`) and read both with
one `get()`: no pump task, no second queue, no `asyncio.wait()` per message.

Nothing else creates an Inbox, so a `receive` wrapped by a middleware (or
handed out by another server) is not one, and the consumer takes Channels'
ordinary path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class Inbox(asyncio.Queue):
    """The queue of one connection; its `get` is the ASGI `receive` callable."""


def inbox_of(receive: Callable[[], Any]) -> Inbox | None:
    """The Inbox whose `get` `receive` is, else None."""
    owner = getattr(receive, "__self__", None)
    if type(owner) is Inbox and getattr(receive, "__name__", None) == "get":
        return owner
    return None
