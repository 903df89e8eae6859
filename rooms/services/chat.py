"""Writes of the room's chat."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from rooms import events, wire
from rooms.events import Outbox
from rooms.models import ChatMessage, Room


def chat_message_create(*, room_id: int, user: AbstractBaseUser, peer_id: str, text: str) -> Outbox:
    """Save a chat line; everyone in the room, its sender included, hears it."""
    line = ChatMessage.objects.create(room_id=room_id, user=user, peer_id=peer_id, text=text)
    number = Room.objects.values_list("number", flat=True).get(pk=room_id)
    return (
        events.broadcast(
            room_id=room_id, group=Room.group_name_for(number), message=wire.chat(line)
        ),
    )
