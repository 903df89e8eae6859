"""Helpers for the rooms tests that are not fixtures: wire formats and DB reads from async tests."""

from __future__ import annotations

from channels.db import database_sync_to_async

from rooms.models import Participant, Room


def iso(value) -> str:
    """A datetime as the protocol writes it."""
    return value.isoformat().replace("+00:00", "Z")


@database_sync_to_async
def db_participant(peer_id: str) -> Participant:
    return Participant.objects.select_related("user", "room").get(peer_id=peer_id)


@database_sync_to_async
def db_room(number: str) -> Room:
    return Room.objects.select_related("owner").get(number=number, closed_at__isnull=True)


def user_obj(user) -> dict:
    """The protocol's user object, built from the model independently of the server."""
    return {
        "id": user.pk,
        "username": user.username,
        "displayName": f"{user.first_name} {user.last_name}".strip() or user.username,
    }


async def peer_obj(peer_id: str, *, audio=True, video=True, screen=False) -> dict:
    """The protocol's peer object for a participant, read from the database."""
    participant = await db_participant(peer_id)
    return {
        "peerId": peer_id,
        "user": user_obj(participant.user),
        "media": {"audio": audio, "video": video, "screen": screen},
        "joinedAt": iso(participant.joined_at),
    }
