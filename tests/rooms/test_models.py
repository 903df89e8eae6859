"""The room models and the rules the database itself enforces."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from rooms.models import ChatMessage, Participant, Room

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def raw_room(owner, **fields) -> Room:
    """Insert a room straight into the database, bypassing the service and full_clean."""
    return Room.objects.create(**{"owner": owner, "name": "r", "number": "482913075", **fields})


@pytest.mark.parametrize("capacity", [0, 1, 201, 1000])
def test_capacity_outside_2_to_200_is_refused_by_the_database(alice, capacity):
    """The room_capacity_range check constraint refuses capacities outside 2..200."""
    with pytest.raises(IntegrityError), transaction.atomic():
        raw_room(alice, capacity=capacity)


@pytest.mark.parametrize("capacity", [2, 6, 12])
def test_capacity_bounds_are_allowed(alice, capacity):
    """Capacities 2, 6 and 12 are stored."""
    assert Room.objects.get(pk=raw_room(alice, capacity=capacity).pk).capacity == capacity


@pytest.mark.parametrize("number", ["012345678", "12345678", "1234567890", "12345678a"])
def test_malformed_number_is_refused_by_the_database(alice, number):
    """The database refuses anything but 9 digits without a leading 0 (check constraint, length)."""
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        raw_room(alice, number=number)


def test_number_is_unique_among_open_rooms_only(alice, bob):
    """Two open rooms cannot share a number; once one is closed the number may be reused."""
    first = raw_room(alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        raw_room(bob)
    first.closed_at = timezone.now()
    first.save(update_fields=["closed_at"])
    second = raw_room(bob)
    assert Room.objects.filter(number="482913075").count() == 2
    assert second.is_open and not Room.objects.get(pk=first.pk).is_open


def test_room_properties(alice):
    """A room shows its number in groups of three, its group name by number, and its PIN state."""
    room = raw_room(alice, name="Standup")
    assert str(room) == "482 913 075 Standup"
    assert room.display_number == "482 913 075"
    assert room.group_name == f"room-{room.number}"
    assert room.is_open and not room.has_pin
    assert room.check_pin(None) and room.check_pin("9999")


def test_pin_is_hashed_and_checked(alice):
    """set_pin stores a hash, never the PIN; check_pin accepts only the right PIN."""
    room = raw_room(alice)
    room.set_pin("246810")
    room.save()
    room.refresh_from_db()
    assert room.has_pin
    assert "246810" not in room.pin_hash
    scheme, salt, digest = room.pin_hash.split("$")
    assert (scheme, len(salt), len(digest)) == ("hmac-sha256", 16, 64)
    assert room.check_pin("246810")
    assert not room.check_pin("246811")
    assert not room.check_pin("")
    assert not room.check_pin(None)
    room.set_pin(None)
    assert room.pin_hash == "" and room.check_pin(None)


def test_pin_hashes_are_salted_keyed_and_fast(alice, settings):
    """Equal PINs hash differently per room; another SECRET_KEY checks them only as a fallback."""
    first, second = Room(owner=alice), Room(owner=alice)
    first.set_pin("1234")
    second.set_pin("1234")
    assert first.pin_hash != second.pin_hash
    settings.SECRET_KEY, old = "another-secret-key-for-this-test-only", settings.SECRET_KEY
    assert not first.check_pin("1234")
    settings.SECRET_KEY_FALLBACKS = [old]
    assert first.check_pin("1234")


def test_pins_of_rooms_made_before_hmac_still_check(alice):
    """A room created before the HMAC scheme keeps its Django password hash and still checks."""
    from django.contrib.auth.hashers import make_password

    room = Room(owner=alice, pin_hash=make_password("4321"))
    assert room.check_pin("4321")
    assert not room.check_pin("4322")


def test_participant_and_chat_message(alice):
    """A participant is active until it has left; chat messages print their author and text."""
    room = raw_room(alice)
    participant = Participant.objects.create(
        room=room, user=alice, peer_id="p1", channel_name="c!1"
    )
    assert participant.is_active
    assert (participant.audio, participant.video, participant.screen) == (True, True, False)
    assert str(participant) == "alice in 482913075"
    participant.left_at = timezone.now()
    assert not participant.is_active
    message = ChatMessage.objects.create(room=room, user=alice, peer_id="p1", text="hello " * 10)
    assert str(message) == "alice: " + ("hello " * 10)[:40]


def test_peer_ids_are_unique(alice, bob):
    """Two participants can never share a peer id."""
    room = raw_room(alice)
    Participant.objects.create(room=room, user=alice, peer_id="same", channel_name="c!1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Participant.objects.create(room=room, user=bob, peer_id="same", channel_name="c!2")


@pytest.mark.parametrize(("mode", "capacity"), [("mesh", 13), ("mesh", 200)])
def test_mesh_room_over_12_is_refused_by_the_database(alice, mode, capacity):
    """The room_mesh_capacity constraint: a mesh room holds at most 12 people, however written."""
    with pytest.raises(IntegrityError), transaction.atomic():
        raw_room(alice, media_mode=mode, capacity=capacity)


def test_mesh_room_cannot_be_resized_over_12_by_an_update(alice):
    """A raw UPDATE giving a mesh room 13 seats is refused too."""
    room = raw_room(alice, media_mode="mesh", capacity=12)
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.filter(pk=room.pk).update(capacity=13)


@pytest.mark.parametrize(("mode", "capacity"), [("mesh", 12), ("auto", 200), ("sfu", 200)])
def test_rooms_within_their_media_limit_are_stored(alice, mode, capacity):
    """12 seats on the mesh, 200 on auto or the SFU: stored."""
    stored = Room.objects.get(pk=raw_room(alice, media_mode=mode, capacity=capacity).pk)
    assert (stored.media_mode, stored.capacity) == (mode, capacity)


def test_full_clean_names_the_capacity_of_a_mesh_room_over_12(alice):
    """Validation (what a form shows) refuses 13 seats on the mesh, on the capacity field."""
    room = Room(owner=alice, name="r", number="482913075", media_mode="mesh", capacity=13)
    with pytest.raises(ValidationError) as refused:
        room.full_clean()
    assert refused.value.message_dict == {
        "capacity": [
            "A direct (peer to peer) room holds at most 12 people; "
            "let it use the media server for more."
        ]
    }


def test_each_reason_for_leaving_is_told_as_one_of_the_protocols_four():
    """The history's reasons, as the others hear them (peer-left), written out."""
    assert {reason.value: reason.told for reason in Participant.LeftReason} == {
        "left": "left",
        "disconnected": "disconnected",
        "kicked": "kicked",
        "timeout": "timeout",
        "closed": "left",
        "replaced": "left",
        "signed-out": "left",
    }
