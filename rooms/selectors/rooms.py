"""Reads of rooms: with their owner and, where a head count is shown, `people_now`; chat."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce, Now

from rooms.models import ChatMessage, Participant, Room, present

CHAT_HISTORY = 50


def rooms_with_occupancy() -> QuerySet[Room]:
    """Rooms with their owner and `people_now`, the number of people in each now."""
    return Room.objects.select_related("owner").annotate(
        people_now=Count("participants", filter=present("participants"))
    )


def rooms_for_admin() -> QuerySet[Room]:
    """`rooms_with_occupancy()`, with `people_total` (everyone who was ever in it) and `duration`.

    `duration` runs from creation to closing, or to now for an open room; both
    columns sort in the database, so "the biggest" and "the longest" rooms are
    one click away.
    """
    return rooms_with_occupancy().annotate(
        people_total=Count("participants__user", distinct=True),
        duration=ExpressionWrapper(
            Coalesce(F("closed_at"), Now()) - F("created_at"), output_field=DurationField()
        ),
    )


def room_get_by_number(*, number: str) -> Room | None:
    """The open room with this number, else the most recently closed one (with `people_now`)."""
    return (
        rooms_with_occupancy()
        .filter(number=number)
        .order_by(F("closed_at").desc(nulls_first=True), "-created_at")
        .first()
    )


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


def room_media(*, room_id: int) -> str | None:
    """Where room `room_id`'s media goes now (mesh or sfu); None once it is closed."""
    return Room.objects.open().filter(pk=room_id).values_list("media", flat=True).first()
