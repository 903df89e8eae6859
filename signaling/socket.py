"""What the runtime and observe need from a signaling socket: a `typing.Protocol`.

The runtime (signaling/runtime/) keeps a registry of its sockets and
observe (signaling/observe.py) reads who is on one; neither imports the
consumer (signaling/consumer.py), which implements this (and the handlers'
larger `Client`, signaling/handlers.py). The runtime sends a socket its
orders through the socket's own channel (handled in order with its frames)
or through `reconnect()`.
"""

from __future__ import annotations

from typing import Protocol

from signaling.membership import Account, Membership


class Socket(Protocol):
    """A signaling socket as its worker and its observer see it."""

    # Its channel on the channel layer.
    channel_name: str
    # Who is on it; None until the handshake proved a signed-in user.
    account: Account | None
    # The room it is in, if any.
    membership: Membership | None
    # Set once the server has closed it: nothing more is handled or sent.
    closing: bool

    @property
    def user_id(self) -> int | None:
        """The signed-in user's id, also before `account` is set (a refused socket)."""
        ...

    async def reconnect(self) -> None:
        """Close with 1012, keeping the seat for the client's resume on another worker."""
        ...
