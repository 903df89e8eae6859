"""Reads: rooms, participants and chat, as models (rooms.wire says how they look on the wire).

Every function returns data its caller can render without another query:
rooms come with their owner and, where a head count is shown, annotated with
it (`people_now`); participants and chat lines come with their user.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from rooms.models import ChatMessage, Participant, Room

CHAT_HISTORY = 50


def rooms_with_occupancy() -> QuerySet[Room]:
    """Rooms with their owner and `people_now`, the number of people in each now."""
    return Room.objects.select_related("owner").annotate(
        people_now=Count("participants", filter=Q(participants__left_at__isnull=True))
    )


def room_get_by_number(*, number: str) -> Room | None:
    """The open room with this number, else the most recently closed one (with `people_now`)."""
    return (
        rooms_with_occupancy()
        .filter(number=number)
        .order_by(F("closed_at").desc(nulls_first=True), "-created_at")
        .first()
    )


def room_active_participants(*, room: Room) -> QuerySet[Participant]:
    return room.participants.filter(left_at__isnull=True).select_related("user")


def user_recent_rooms(*, user: AbstractBaseUser, limit: int = 8) -> list[Room]:
    """Open rooms the user owns or has been in, most recently used first.

    Each has `people_now` and `last_used`: when the user last joined it, else
    when it was created.
    """
    last_joined = (
        Participant.objects.filter(room=OuterRef("pk"), user=user)
        .order_by("-joined_at")
        .values("joined_at")[:1]
    )
    visited = Participant.objects.filter(user=user).values("room_id")
    rooms = list(
        rooms_with_occupancy()
        .filter(closed_at__isnull=True)
        .filter(Q(owner=user) | Q(pk__in=visited))
        .annotate(last_joined=Subquery(last_joined))
        .order_by(F("last_joined").desc(nulls_last=True), "-created_at")[:limit]
    )
    for room in rooms:
        room.last_used = room.last_joined or room.created_at
    return rooms


def room_chat_history(*, room_id: int, limit: int = CHAT_HISTORY) -> list[ChatMessage]:
    """The room's last `limit` chat lines, oldest first (for `joined.history`)."""
    latest = ChatMessage.objects.filter(room_id=room_id).select_related("user").order_by("-pk")
    return list(reversed(latest[:limit]))


def participants_active_before(*, seconds: float) -> list[str]:
    """Peer ids present for more than `seconds` (for reconciling with presence)."""
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return list(
        Participant.objects.filter(left_at__isnull=True, joined_at__lt=cutoff).values_list(
            "peer_id", flat=True
        )
    )
