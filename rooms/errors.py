"""What the rooms domain refuses, and why, in words a person reads.

Services raise these; they know nothing of the wire. The edges say them in
their own terms: the signaling socket as an `error` with a protocol code
(`rooms.protocol.refusal`), the JSON API as an HTTP status (`api/`).
"""

from __future__ import annotations


class RoomsError(Exception):
    """A refusal of the rooms domain, with the sentence to show for it."""

    default_message = "That cannot be done."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class RoomNotFound(RoomsError):
    default_message = "There is no room with that number."


class RoomClosed(RoomsError):
    default_message = "This room has been closed."


class RoomFull(RoomsError):
    def __init__(self, capacity: int) -> None:
        super().__init__(f"This room is full ({capacity} people).")


class RoomLocked(RoomsError):
    default_message = "This room is locked; nobody new can join."


class WrongPin(RoomsError):
    """`locked`: this wrong PIN was the one that locked the room's PIN (its owner must hear)."""

    def __init__(self, *, given: bool, room_id: int | None = None, locked: bool = False) -> None:
        super().__init__("That PIN is not right." if given else "This room needs a PIN.")
        self.room_id = room_id
        self.locked = locked


class PinLocked(RoomsError):
    default_message = (
        "Too many wrong PINs were tried for this room: joining with its PIN is paused for a"
        " while. Its owner has been told."
    )


class NotAllowed(RoomsError):
    """Only the room's owner (or staff) may do that, or nobody may (kicking oneself)."""

    default_message = "Only the room's owner can do that."


class PeerNotFound(RoomsError):
    default_message = "That person is not in this room."


class CapReached(RoomsError):
    """An account or address is at one of its limits (docs/reliability.md).

    `retry_after`: seconds until a new try may succeed, when known.
    """

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidRoom(RoomsError):
    """A room's fields do not validate (name, capacity)."""


class NumberTaken(RoomsError):
    """The drawn room number is held by an open room; draw another."""

    default_message = "That room number is taken."


class NoFreeNumber(RoomsError):
    default_message = "Could not find a free room number; try again."


class SfuUnavailable(RoomsError):
    default_message = (
        "This room's call goes through the media server, which cannot be reached right now;"
        " try again in a moment."
    )
