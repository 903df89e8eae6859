"""Writes (rooms.services) and reads (rooms.selectors) against the real database."""

from __future__ import annotations

import re
from datetime import timedelta

import orjson
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.utils import timezone

from rooms import protocol as p
from rooms import selectors, services
from rooms.models import ChatMessage, Participant, Room

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NUMBER_RE = re.compile(r"[1-9][0-9]{8}")


def join(room: Room, user, **kwargs) -> services.JoinResult:
    return services.room_join(number=room.number, user=user, channel_name=f"test!{user}", **kwargs)


def refused(code: str, room: Room, user, **kwargs) -> str:
    with pytest.raises(p.ClientError) as caught:
        join(room, user, **kwargs)
    assert caught.value.code == code
    return caught.value.message


@pytest.fixture
def listener():
    """A channel subscribed to a room's group, to read what the services announce."""
    layer = get_channel_layer()
    channel = "test.listener!1"

    def listen(room: Room) -> str:
        async_to_sync(layer.group_add)(room.group_name, channel)
        return channel

    yield listen
    async_to_sync(layer.flush)()


def receive(channel: str) -> dict:
    return async_to_sync(get_channel_layer().receive)(channel)


# --- room_create ------------------------------------------------------------------------


def test_room_create_defaults(alice):
    """room_create gives a 9-digit number without leading zero, the default name and capacity 6."""
    room = services.room_create(owner=alice)
    room.refresh_from_db()
    assert NUMBER_RE.fullmatch(room.number)
    assert (room.name, room.capacity, room.locked, room.pin_hash) == ("alice's room", 6, False, "")
    assert room.owner == alice and room.is_open


def test_room_create_numbers_are_distinct_among_open_rooms(alice, settings):
    """Many rooms created in a row all get distinct, well-formed numbers."""
    settings.ROOMS_CREATED_PER_HOUR = settings.OPEN_ROOMS_PER_USER = 40
    numbers = [services.room_create(owner=alice).number for _ in range(40)]
    assert len(set(numbers)) == 40
    assert all(NUMBER_RE.fullmatch(number) for number in numbers)


def test_room_create_hashes_the_pin(alice):
    """The PIN is stored hashed, not in clear, and checks."""
    room = services.room_create(owner=alice, name="Board", capacity=4, pin="8642")
    stored = Room.objects.get(pk=room.pk)
    assert stored.pin_hash and "8642" not in stored.pin_hash
    assert stored.check_pin("8642") and not stored.check_pin("8643")
    assert (stored.name, stored.capacity) == ("Board", 4)


def test_room_create_validates_capacity(alice):
    """room_create refuses a capacity outside 2..12 before touching the database."""
    with pytest.raises(ValidationError):
        services.room_create(owner=alice, capacity=13)
    assert not Room.objects.exists()


# --- room_create_and_join -------------------------------------------------------------------


def test_room_create_and_join_opens_the_room_with_its_owner_in_it(alice, bob):
    """One call: the room with the asked number, the owner present, nothing else to tell."""
    result = services.room_create_and_join(
        number="123456789", owner=alice, channel_name="test!alice", name="Board", pin="8642"
    )
    assert result is not None
    room = Room.objects.get(number="123456789")
    assert (room.name, room.owner, room.is_open, room.check_pin("8642")) == (
        "Board",
        alice,
        True,
        True,
    )
    assert result.room == room and result.is_moderator
    assert result.peers == [] and result.history == []
    assert result.room_dict["participants"] == 1 and result.room_dict["hasPin"] is True
    active = Participant.objects.get(room=room, left_at__isnull=True)
    assert (active.user, active.peer_id, active.channel_name) == (
        alice,
        result.participant.peer_id,
        "test!alice",
    )
    assert result.peer_dict == selectors.peer_to_dict(active)
    assert services.resume_token_peer(token=result.resume_token, user=alice) == active.peer_id
    # The next one in finds the owner there.
    second = join(room, bob, pin="8642")
    assert [peer for peer, _ in second.peers] == [result.peer_dict]


def test_room_create_and_join_refuses_a_number_in_use_and_leaves_nothing(alice, bob):
    """A number an open room holds gives None; neither room nor participant is left behind."""
    taken = services.room_create_and_join(number="555555555", owner=alice, channel_name="a!1")
    assert taken is not None
    assert services.room_create_and_join(number="555555555", owner=bob, channel_name="b!1") is None
    assert list(Room.objects.values_list("owner__username", flat=True)) == ["alice"]
    assert not Participant.objects.filter(user=bob).exists()


def test_room_create_and_join_reuses_the_number_of_a_closed_room(alice):
    """Numbers come back once their room is closed, as with room_create."""
    first = services.room_create_and_join(number="444444444", owner=alice, channel_name="a!1")
    services.room_close(room=first.room, reason="owner")
    again = services.room_create_and_join(number="444444444", owner=alice, channel_name="a!2")
    assert again is not None and again.room.pk != first.room.pk
    assert Room.objects.filter(number="444444444", closed_at__isnull=True).get() == again.room


def test_room_create_and_join_validates_before_touching_the_database(alice):
    with pytest.raises(ValidationError):
        services.room_create_and_join(
            number="333333333", owner=alice, channel_name="a!1", capacity=13
        )
    assert not Room.objects.exists() and not Participant.objects.exists()


# --- room_join ------------------------------------------------------------------------------


def test_room_join_admits_and_lists_present_peers(make_room, alice, bob):
    """room_join creates the participant and returns the peers already there, with channels."""
    room = make_room(alice)
    first = join(room, alice)
    second = join(room, bob)
    assert first.peers == [] and first.is_moderator
    assert not second.is_moderator
    assert second.peers == [(selectors.peer_to_dict(first.participant), "test!alice")]
    assert second.room_dict["participants"] == 2
    assert second.participant.user == bob and second.participant.channel_name == "test!bob"
    assert Participant.objects.filter(room=room, left_at__isnull=True).count() == 2
    assert first.participant.peer_id != second.participant.peer_id


def test_room_join_refuses_a_full_room(make_room, alice, bob, carol):
    """The capacity counts only people in the room now."""
    room = make_room(alice, capacity=2)
    join(room, alice)
    left = join(room, bob)
    assert refused(p.ROOM_FULL, room, carol) == "This room is full (2 people)."
    services.participant_leave(peer_id=left.participant.peer_id, reason="left")
    assert join(room, carol).room_dict["participants"] == 2


def test_room_join_refuses_a_locked_room_except_to_owner_and_staff(make_room, alice, bob, staff):
    """A locked room refuses newcomers with room-locked; its owner and staff still get in."""
    room = make_room(alice)
    services.room_set_locked(room=room, locked=True)
    assert refused(p.ROOM_LOCKED, room, bob) == "This room is locked; nobody new can join."
    assert join(room, alice).is_moderator
    assert join(room, staff).is_moderator


def test_room_join_checks_the_pin(make_room, alice, bob):
    """A PIN room refuses a missing or wrong PIN and admits the right one; the owner needs none."""
    room = make_room(alice, pin="1234")
    assert refused(p.BAD_PIN, room, bob) == "This room needs a PIN."
    assert refused(p.BAD_PIN, room, bob, pin="4321") == "That PIN is not right."
    assert join(room, bob, pin="1234").participant.user == bob
    assert join(room, alice).participant.user == alice


def test_room_join_takes_over_the_same_users_seat(make_room, alice, bob):
    """A second join of the same account takes its seat over, even when the room is full."""
    room = make_room(alice, capacity=2)
    join(room, alice)
    first = join(room, bob)
    second = services.room_join(number=room.number, user=bob, channel_name="test!bob-phone")
    assert second.replaced == ((first.participant.peer_id, "test!bob"),)
    assert [peer["peerId"] for peer, _ in second.peers] == [
        Participant.objects.get(room=room, user=alice).peer_id
    ]
    assert second.room_dict["participants"] == 2
    old = Participant.objects.get(peer_id=first.participant.peer_id)
    assert (old.is_active, old.left_reason) == (False, "replaced")
    assert services.participant_was_replaced(peer_id=old.peer_id, user=bob)
    assert not services.participant_was_replaced(peer_id=second.participant.peer_id, user=bob)
    assert first.replaced == ()


def test_room_creation_caps_per_account(alice, staff, settings):
    """Open rooms and rooms per hour are capped per account (not staff); ending one frees one."""
    settings.OPEN_ROOMS_PER_USER, settings.ROOMS_CREATED_PER_HOUR = 2, 3
    first = services.room_create(owner=alice)
    services.room_create(owner=alice)
    with pytest.raises(p.ClientError) as caught:
        services.room_create(owner=alice)
    assert (caught.value.code, caught.value.message) == (
        "rate-limited",
        "You have 2 open rooms; end one before creating another.",
    )
    with pytest.raises(p.ClientError):
        services.room_create_and_join(number="123456789", owner=alice, channel_name="c")
    services.room_close(room=first, reason="owner")
    services.room_create(owner=alice)
    Room.objects.filter(owner=alice).update(closed_at=timezone.now())
    with pytest.raises(p.ClientError) as caught:
        services.room_create(owner=alice)
    assert caught.value.message == (
        "You have created too many rooms in the last hour; try again later."
    )
    # An hour later the count starts again.
    Room.objects.filter(owner=alice).update(
        created_at=timezone.now() - timedelta(hours=1, seconds=1)
    )
    services.room_create(owner=alice)
    for _ in range(5):
        services.room_create(owner=staff)


def test_room_join_refuses_closed_and_unknown_rooms(make_room, alice, bob):
    """A closed room answers room-closed; a number nobody has answers room-not-found."""
    room = make_room(alice)
    services.room_close(room=room, reason="admin")
    assert refused(p.ROOM_CLOSED_CODE, room, bob) == "This room has been closed."
    with pytest.raises(p.ClientError) as caught:
        services.room_join(number="999999999", user=bob, channel_name="x")
    assert caught.value.code == p.ROOM_NOT_FOUND


def test_room_join_reaches_the_open_room_when_a_closed_one_had_the_number(alice, bob):
    """After a number is reused, joining it reaches the open room, not the closed one."""
    old = Room.objects.create(owner=alice, name="old", number="555000111")
    services.room_close(room=old, reason="admin")
    new = Room.objects.create(owner=bob, name="new", number="555000111")
    assert join(new, alice).room.pk == new.pk


# --- leaving, kicking, media, chat ---------------------------------------------------------------


def test_participant_leave_is_idempotent_and_records_the_reason(make_room, alice):
    """The first leave records its reason and returns True; later calls change nothing."""
    room = make_room(alice)
    peer_id = join(room, alice).participant.peer_id
    assert services.participant_leave(peer_id=peer_id, reason="disconnected") is True
    left = Participant.objects.get(peer_id=peer_id)
    assert services.participant_leave(peer_id=peer_id, reason="left") is False
    again = Participant.objects.get(peer_id=peer_id)
    assert (again.left_reason, again.left_at) == ("disconnected", left.left_at)
    assert left.left_at is not None


def test_participant_kick(make_room, alice, bob, carol):
    """The owner may kick; others get forbidden; an absent peer is unknown-peer."""
    room = make_room(alice)
    owner = join(room, alice).participant
    target = join(room, bob).participant
    join(room, carol)
    with pytest.raises(p.ClientError) as caught:
        services.participant_kick(room_id=room.pk, actor=carol, peer_id=target.peer_id)
    assert caught.value.code == p.FORBIDDEN
    with pytest.raises(p.ClientError) as caught:
        services.participant_kick(room_id=room.pk, actor=alice, peer_id=owner.peer_id)
    assert caught.value.code == p.FORBIDDEN
    with pytest.raises(p.ClientError) as caught:
        services.participant_kick(room_id=room.pk, actor=alice, peer_id="nobody")
    assert caught.value.code == p.UNKNOWN_PEER
    services.participant_kick(room_id=room.pk, actor=alice, peer_id=target.peer_id)
    assert Participant.objects.get(pk=target.pk).left_reason == "kicked"


def test_participant_set_media_stores_only_given_fields(make_room, alice):
    """media changes only the flags it names; a peer that left gets None."""
    room = make_room(alice)
    peer_id = join(room, alice).participant.peer_id
    updated = services.participant_set_media(peer_id=peer_id, audio=False, video=None, screen=True)
    assert (updated.audio, updated.video, updated.screen) == (False, True, True)
    services.participant_leave(peer_id=peer_id, reason="left")
    assert (
        services.participant_set_media(peer_id=peer_id, audio=True, video=None, screen=None) is None
    )


def test_chat_message_is_saved(make_room, alice):
    """chat_message_create saves the line with its room, author and peer id."""
    room = make_room(alice)
    saved = services.chat_message_create(room_id=room.pk, user=alice, peer_id="p1", text="hi all")
    assert list(ChatMessage.objects.values_list("room", "user", "peer_id", "text")) == [
        (room.pk, alice.pk, "p1", "hi all")
    ]
    assert saved.created_at is not None


# --- lock and close ----------------------------------------------------------------------------


def test_room_set_locked_stores_and_announces(
    make_room, alice, listener, django_capture_on_commit_callbacks
):
    """room_set_locked stores the flag and, once committed, sends room.updated to the group."""
    room = make_room(alice)
    channel = listener(room)
    with django_capture_on_commit_callbacks(execute=True):
        services.room_set_locked(room=room, locked=True)
    assert Room.objects.get(pk=room.pk).locked is True
    event = receive(channel)
    assert event["type"] == "room.updated" and event["room"] == room.pk
    assert orjson.loads(event["text"]) == {
        "type": "room-updated",
        "room": selectors.room_to_dict(Room.objects.get(pk=room.pk)),
    }
    with django_capture_on_commit_callbacks(execute=True):
        services.room_set_locked(room=room, locked=False)
    assert Room.objects.get(pk=room.pk).locked is False
    assert orjson.loads(receive(channel)["text"])["room"]["locked"] is False


def test_room_close_marks_everyone_left_and_announces(
    make_room, alice, bob, listener, django_capture_on_commit_callbacks
):
    """room_close closes the room, marks present participants left (closed), sends room.closed."""
    room = make_room(alice)
    gone = join(room, bob).participant
    services.participant_leave(peer_id=gone.peer_id, reason="left")
    present = join(room, alice).participant
    channel = listener(room)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.room_close(room=room, reason="admin") is True
    assert Room.objects.get(pk=room.pk).closed_at is not None
    assert Participant.objects.get(pk=present.pk).left_reason == "closed"
    assert Participant.objects.get(pk=gone.pk).left_reason == "left"
    event = receive(channel)
    assert (event["type"], event["room"]) == ("room.closed", room.pk)
    assert orjson.loads(event["text"]) == {"type": "room-closed", "reason": "admin"}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.room_close(room=room, reason="admin") is False
    assert callbacks == []


# --- selectors -------------------------------------------------------------------------------


def test_room_get_by_number_prefers_the_open_room(alice, bob):
    """Of rooms sharing a number, the open one wins; else the most recently closed."""
    now = timezone.now()
    older = Room.objects.create(owner=alice, name="older", number="777000111")
    older.closed_at = now - timedelta(hours=2)
    older.save()
    newer = Room.objects.create(owner=alice, name="newer", number="777000111")
    newer.closed_at = now - timedelta(hours=1)
    newer.save()
    assert selectors.room_get_by_number(number="777000111").pk == newer.pk
    current = Room.objects.create(owner=bob, name="open", number="777000111")
    assert selectors.room_get_by_number(number="777000111").pk == current.pk
    assert selectors.room_get_by_number(number="777000112") is None


def test_user_recent_rooms(make_room, add_participant, alice, bob):
    """Open rooms the user owns or was in, most recently joined first, never-joined last."""
    now = timezone.now()
    owned_idle = make_room(alice, name="owned, never joined")
    owned = make_room(alice, name="owned")
    visited = make_room(bob, name="visited")
    closed = make_room(alice, name="closed")
    make_room(bob, name="not mine")
    for room, minutes in ((owned, 30), (visited, 5), (closed, 1)):
        participant = add_participant(room, alice, left=True, reason="left")
        Participant.objects.filter(pk=participant.pk).update(
            joined_at=now - timedelta(minutes=minutes)
        )
    add_participant(visited, bob)
    services.room_close(room=closed, reason="owner")
    recent = selectors.user_recent_rooms(user=alice)
    assert [item["name"] for item in recent] == ["visited", "owned", "owned, never joined"]
    first = recent[0]
    assert first == {
        **selectors.room_to_dict(visited, participants=1),
        "lastJoinedAt": (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
    }
    assert recent[2]["lastJoinedAt"] == owned_idle.created_at.isoformat().replace("+00:00", "Z")
    assert selectors.user_recent_rooms(user=alice, limit=1) == [first]
