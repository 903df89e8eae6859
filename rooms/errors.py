"""What the rooms domain refuses, and why, in words a person reads.

Services raise these; they know nothing of the socket or of HTTP. Each
refusal carries how the edges say it, in one place: `code`, the protocol's
error code (the signaling socket answers an `error` with it, `refusal()`),
and `status`, the HTTP status the JSON API answers with (`api/`).
"""

from __future__ import annotations

from rooms import protocol as p


class RoomsError(Exception):
    """A refusal of the rooms domain, with the sentence to show for it."""

    default_message = "That cannot be done."
    # Every refusal names its own: a subclass without them fails at import.
    code: str
    status: int

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "code", None) not in p.ERROR_CODES:
            raise TypeError(f"{cls.__name__}.code must be one of rooms.protocol.ERROR_CODES")
        if not isinstance(getattr(cls, "status", None), int):
            raise TypeError(f"{cls.__name__}.status must be an HTTP status")

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class RoomNotFound(RoomsError):
    code = p.ROOM_NOT_FOUND
    status = 404
    default_message = "There is no room with that number."


class RoomClosed(RoomsError):
    code = p.ROOM_CLOSED_CODE
    status = 410
    default_message = "This room has been closed."


class RoomFull(RoomsError):
    code = p.ROOM_FULL
    status = 409

    def __init__(self, capacity: int) -> None:
        super().__init__(f"This room is full ({capacity} people).")


class RoomLocked(RoomsError):
    code = p.ROOM_LOCKED
    status = 423
    default_message = "This room is locked; nobody new can join."


class WrongPin(RoomsError):
    """`locked`: this wrong PIN was the one that locked the room's PIN (its owner must hear)."""

    code = p.BAD_PIN
    status = 403

    def __init__(self, *, given: bool, room_id: int | None = None, locked: bool = False) -> None:
        super().__init__("That PIN is not right." if given else "This room needs a PIN.")
        self.room_id = room_id
        self.locked = locked


class PinLocked(RoomsError):
    code = p.PIN_LOCKED_CODE
    status = 429
    default_message = (
        "Too many wrong PINs were tried for this room: joining with its PIN is paused for a"
        " while. Its owner has been told."
    )


class NotAllowed(RoomsError):
    """Only the room's owner (or staff) may do that, or nobody may (kicking oneself)."""

    code = p.FORBIDDEN
    status = 403

    default_message = "Only the room's owner can do that."


class PeerNotFound(RoomsError):
    code = p.UNKNOWN_PEER
    status = 404
    default_message = "That person is not in this room."


class CapReached(RoomsError):
    """An account or address is at one of its limits (docs/reliability.md).

    `retry_after`: seconds until a new try may succeed, when known.
    """

    code = p.RATE_LIMITED
    status = 429

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidRoom(RoomsError):
    """A room's fields do not validate (name, capacity)."""

    code = p.BAD_MESSAGE
    status = 400


class NumberTaken(RoomsError):
    """The drawn room number is held by an open room; draw another."""

    code = p.SERVER_BUSY
    status = 409

    default_message = "That room number is taken."


class NoFreeNumber(RoomsError):
    code = p.SERVER_BUSY
    status = 503
    default_message = "Could not find a free room number; try again."


class SfuUnavailable(RoomsError):
    code = p.SFU_UNAVAILABLE
    status = 503
    default_message = (
        "This room's call goes through the media server, which cannot be reached right now;"
        " try again in a moment."
    )


def refusal(error: RoomsError, *, msg_id: str | None = None) -> p.ClientError:
    """The protocol error that says `error` to the client."""
    return p.ClientError(error.code, error.message, msg_id=msg_id)
