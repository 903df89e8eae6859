"""Writes: creating, joining, leaving, locking and closing rooms, and chat.

Every function is synchronous and keyword-only; async callers run them with
`infra.db.db_call`. They know nothing of the wire: refusals are
`rooms.errors` exceptions, which each edge says in its own terms, and what
others must hear about a change comes back as an outbox (`rooms.events`)
that the caller publishes once the write is committed: the consumer, the
admin and the JSON API alike, so Django admin reaches every worker too.

By area: rooms.py (the room itself), participants.py (who sits in it),
chat.py, quality.py (call-quality reports), housekeeping.py (pruning), and
_sql.py (the statements of a join and a create). The names below are the
ones the edges call; quality and housekeeping are imported as modules.
"""

from rooms.services.chat import chat_message_create
from rooms.services.participants import (
    RESUME_SALT,
    Seat,
    participant_expire,
    participant_kick,
    participant_leave,
    participant_resume,
    participant_set_media,
    participant_was_replaced,
    resume_token_peer,
    room_create,
    room_join,
)
from rooms.services.rooms import (
    NUMBER_ATTEMPTS,
    can_moderate,
    capacity_max,
    room_announce_update,
    room_close,
    room_close_if_idle,
    room_media_return,
    room_numbers,
    room_set_locked,
    room_set_mode,
    rooms_media_return_due,
)

__all__ = [
    "NUMBER_ATTEMPTS",
    "RESUME_SALT",
    "Seat",
    "can_moderate",
    "capacity_max",
    "chat_message_create",
    "participant_expire",
    "participant_kick",
    "participant_leave",
    "participant_resume",
    "participant_set_media",
    "participant_was_replaced",
    "resume_token_peer",
    "room_announce_update",
    "room_close",
    "room_close_if_idle",
    "room_create",
    "room_join",
    "room_media_return",
    "room_numbers",
    "room_set_locked",
    "room_set_mode",
    "rooms_media_return_due",
]
