"""Fixtures for the room, signaling and SFU tests: named users, rooms made through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from rooms import services
from rooms.models import Participant, Room


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hash passwords (and PINs) with a cheap hasher: these tests create many users."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]


@pytest.fixture
def alice(make_user):
    return make_user("alice", first_name="Alice", last_name="Liddell")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def carol(make_user):
    return make_user("carol", first_name="Carol")


@pytest.fixture
def dave(make_user):
    return make_user("dave")


@pytest.fixture
def staff(make_user):
    return make_user("staffer", is_staff=True)


@pytest.fixture
def superuser(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def make_room(db):
    """Create a room through the service, as the API and the consumer do."""

    def make(owner, **fields: Any) -> Room:
        return services.room_create(owner=owner, number=next(services.room_numbers()), **fields)

    return make


@pytest.fixture
def add_participant(db):
    """Put a user in a room directly (a peer whose socket is elsewhere)."""
    counter = iter(range(1, 10_000))

    def add(room: Room, user, *, left: bool = False, reason: str = "") -> Participant:
        n = next(counter)
        return Participant.objects.create(
            room=room,
            user=user,
            peer_id=f"peer{n}-{room.pk}",
            channel_name=f"test.channel!{n}",
            left_at=timezone.now() if left else None,
            left_reason=reason,
        )

    return add


@pytest.fixture
def room_of(connect):
    """Open a room: the owner creates it, each guest joins, everyone has seen everyone arrive."""

    async def open_room(owner, *guests, **create_fields: Any):
        first = await connect(owner)
        await first.create(**create_fields)
        peers = [first]
        for guest in guests:
            peer = await connect(guest)
            answer = await peer.join(first.room["number"])
            assert answer["type"] == "joined", answer
            for present in peers:
                arrived = await present.recv_type("peer-joined")
                assert arrived["peer"]["peerId"] == peer.peer_id
            peers.append(peer)
        return peers

    return open_room
