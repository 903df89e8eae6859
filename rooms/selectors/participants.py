"""Reads of who is in a room now, with their user."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import (
    QuerySet,
)
from django.utils import timezone

from rooms.models import Participant, Room


def room_active_participants(*, room: Room) -> QuerySet[Participant]:
    return room.participants.present().select_related("user")


def room_participant(*, room_id: int, peer_id: str) -> Participant | None:
    """The person with this peer id in the room now (with their user), if they are there."""
    return (
        Participant.objects.present()
        .filter(room_id=room_id, peer_id=peer_id)
        .select_related("user")
        .first()
    )


def participants_active_before(*, seconds: float) -> list[str]:
    """Peer ids present for more than `seconds` (for reconciling with presence)."""
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return list(
        Participant.objects.present().filter(joined_at__lt=cutoff).values_list("peer_id", flat=True)
    )
