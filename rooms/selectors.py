"""Reads: rooms and participants, and how they look on the wire."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from rooms.models import ChatMessage, Participant, Room


def user_to_dict(user: AbstractBaseUser) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "displayName": user.get_full_name().strip() or user.get_username(),
    }


def room_to_dict(room: Room, *, participants: int | None = None) -> dict[str, Any]:
    if participants is None:
        participants = room_participant_count(room=room)
    return {
        "number": room.number,
        "name": room.name,
        "capacity": room.capacity,
        "locked": room.locked,
        "hasPin": room.has_pin,
        "owner": {"id": room.owner_id, "username": room.owner.get_username()},
        "participants": participants,
        # Extension: a closed room's page can say so without trying to join.
        "closed": not room.is_open,
    }


def peer_to_dict(participant: Participant) -> dict[str, Any]:
    return {
        "peerId": participant.peer_id,
        "user": user_to_dict(participant.user),
        "media": {
            "audio": participant.audio,
            "video": participant.video,
            "screen": participant.screen,
        },
        "joinedAt": participant.joined_at.isoformat().replace("+00:00", "Z"),
    }


def room_participant_count(*, room: Room) -> int:
    return room.participants.filter(left_at__isnull=True).count()


def room_active_participants(*, room: Room) -> QuerySet[Participant]:
    return room.participants.filter(left_at__isnull=True).select_related("user")


def room_get(*, room_id: int) -> Room:
    return Room.objects.select_related("owner").get(pk=room_id)


def room_get_by_number(*, number: str) -> Room | None:
    """The open room with this number, else the most recently closed one."""
    return (
        Room.objects.filter(number=number)
        .select_related("owner")
        .order_by(F("closed_at").desc(nulls_first=True), "-created_at")
        .first()
    )


def rooms_with_occupancy() -> QuerySet[Room]:
    return Room.objects.select_related("owner").annotate(
        people_now=Count("participants", filter=Q(participants__left_at__isnull=True))
    )


def user_recent_rooms(*, user: AbstractBaseUser, limit: int = 8) -> list[dict[str, Any]]:
    """Open rooms the user owns or has been in, most recently used first."""
    last_joined = (
        Participant.objects.filter(room=OuterRef("pk"), user=user)
        .order_by("-joined_at")
        .values("joined_at")[:1]
    )
    visited = Participant.objects.filter(user=user).values("room_id")
    rooms = (
        rooms_with_occupancy()
        .filter(closed_at__isnull=True)
        .filter(Q(owner=user) | Q(pk__in=visited))
        .annotate(last_joined=Subquery(last_joined))
        .order_by(F("last_joined").desc(nulls_last=True), "-created_at")[:limit]
    )
    out = []
    for room in rooms:
        item = room_to_dict(room, participants=room.people_now)
        last = room.last_joined or room.created_at
        item["lastJoinedAt"] = last.isoformat().replace("+00:00", "Z")
        out.append(item)
    return out


CHAT_HISTORY = 50


def chat_line_to_dict(message: ChatMessage) -> dict[str, Any]:
    """A saved chat line as the `chat` message that carried it."""
    return {
        "type": "chat",
        "from": message.peer_id,
        "user": user_to_dict(message.user),
        "text": message.text,
        "ts": message.created_at.isoformat().replace("+00:00", "Z"),
    }


def room_chat_history(*, room: Room, limit: int = CHAT_HISTORY) -> list[dict[str, Any]]:
    """The room's last `limit` chat lines, oldest first (for `joined.history`)."""
    latest = ChatMessage.objects.filter(room=room).select_related("user").order_by("-pk")[:limit]
    return [chat_line_to_dict(message) for message in reversed(latest)]
