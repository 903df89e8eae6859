"""Reads: rooms, participants and chat, as models (rooms.wire says how they look on the wire).

Every function returns data its caller can render without another query:
rooms come with their owner and, where a head count is shown, annotated with
it (`people_now`); participants and chat lines come with their user.

By area: rooms.py, participants.py, quality.py (the trouble thresholds and
the admin console's room), overview.py (the admin overview's figures).
"""

from rooms.selectors.participants import (
    participants_active_before,
    room_active_participants,
    room_participant,
)
from rooms.selectors.quality import (
    HIGH_LOSS,
    HIGH_LOSS_KIND,
    HIGH_RTT,
    HIGH_RTT_MS,
    ICE_FAILED,
    QUALITY_TROUBLE,
    RELAYED,
    Pair,
    RoomConsole,
    quality_reports,
    room_console,
)
from rooms.selectors.rooms import (
    CHAT_HISTORY,
    room_chat_history,
    room_get_by_number,
    room_media,
    rooms_for_admin,
    rooms_with_occupancy,
    user_recent_rooms,
)

__all__ = [
    "CHAT_HISTORY",
    "HIGH_LOSS",
    "HIGH_LOSS_KIND",
    "HIGH_RTT",
    "HIGH_RTT_MS",
    "ICE_FAILED",
    "QUALITY_TROUBLE",
    "RELAYED",
    "Pair",
    "RoomConsole",
    "participants_active_before",
    "quality_reports",
    "room_active_participants",
    "room_chat_history",
    "room_console",
    "room_get_by_number",
    "room_media",
    "room_participant",
    "rooms_for_admin",
    "rooms_with_occupancy",
    "user_recent_rooms",
]
