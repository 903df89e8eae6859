"""What the rest of the signaling edge needs from a socket: `typing.Protocol`s.

The runtime (signaling/runtime/) keeps a registry of its sockets and
observe (signaling/observe.py) reads who is on one: `Socket`. The message
handlers and event reactions (signaling/handlers.py) also send and take
what the seating functions return: `Client`. None of them imports the
consumer (signaling/consumer.py), which implements both. The runtime sends
a socket its orders through the socket's own channel (handled in order
with its frames) or through `reconnect()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from signaling.membership import Account, Membership

if TYPE_CHECKING:
    from rooms import wire
    from signaling.runtime.joins import JoinSlots
    from signaling.seating import Outcome


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


class Client(Socket, Protocol):
    """A socket as its message handlers and event reactions (signaling/handlers.py) see it."""

    # The channel layer its channel is on.
    channel_layer: Any
    # Its worker's join slots (signaling/runtime/joins.py).
    join_slots: JoinSlots

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send a frame as it is (an event's text, encoded once for the whole room)."""
        ...

    async def send_json(self, message: wire.Message) -> None: ...

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None: ...

    async def deliver(self, outcome: Outcome) -> None:
        """Send what a seating function returned, and take the membership it says."""
        ...

    def forget_room(self) -> Membership | None:
        """Drop the membership at once (later events are not its); return what it was."""
        ...
