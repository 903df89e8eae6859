"""Writes (rooms.services) and reads (rooms.selectors) against the real database.

Services are pure: they return what the others must hear (an outbox), and
these tests compare those events, written out, instead of listening on a
channel layer.
"""

from __future__ import annotations

import re
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from rooms import errors, events, selectors, services
from rooms.models import ChatMessage, Participant, Room

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NUMBER_RE = re.compile(r"[1-9][0-9]{8}")


def join(room: Room, user, **kwargs) -> services.Seat:
    return services.room_join(number=room.number, user=user, channel_name=f"test!{user}", **kwargs)


def refusal(kind: type[errors.RoomsError], room: Room, user, **kwargs) -> str:
    with pytest.raises(kind) as caught:
        join(room, user, **kwargs)
    return caught.value.message


def create(owner, number: str = "123456789", **fields) -> Room:
    return services.room_create(owner=owner, number=number, **fields)


def said(outbox: events.Outbox) -> list[tuple]:
    """An outbox as (where, event type, room, what the client reads), for exact comparison."""
    return [
        (
            item.group or item.channel,
            item.event["type"],
            item.event.get("room"),
            orjson.loads(item.event["text"]) if "text" in item.event else None,
        )
        for item in outbox
    ]


def peer_object(
    participant: Participant, *, name: str, display: str | None = None, **media: bool
) -> dict:
    return {
        "peerId": participant.peer_id,
        "user": {"id": participant.user_id, "username": name, "displayName": display or name},
        "media": {"audio": True, "video": True, "screen": False, **media},
        "joinedAt": participant.joined_at.isoformat().replace("+00:00", "Z"),
    }


# --- room_create ------------------------------------------------------------------------


def test_room_create_defaults(alice):
    """room_create opens the room with the given number, the default name and capacity 6."""
    room = create(alice)
    room.refresh_from_db()
    assert (room.number, room.name, room.capacity, room.owner, room.is_open) == (
        "123456789",
        "alice's room",
        6,
        alice,
        True,
    )
    assert not room.has_pin and not Participant.objects.exists()


def test_room_numbers_are_fresh_nine_digit_numbers():
    """room_numbers draws NUMBER_ATTEMPTS distinct well-formed numbers, then gives up."""
    drawing = services.room_numbers()
    numbers = [next(drawing) for _ in range(services.NUMBER_ATTEMPTS)]
    with pytest.raises(errors.NoFreeNumber):
        next(drawing)
    assert len(numbers) == services.NUMBER_ATTEMPTS == 20
    assert len(set(numbers)) == 20
    assert all(NUMBER_RE.fullmatch(number) for number in numbers)


def test_room_create_hashes_the_pin(alice):
    """The PIN is stored hashed, not in clear, and checks."""
    room = create(alice, name="Board", capacity=4, pin="8642")
    stored = Room.objects.get(pk=room.pk)
    assert stored.pin_hash and "8642" not in stored.pin_hash
    assert stored.check_pin("8642") and not stored.check_pin("8643")
    assert (stored.name, stored.capacity) == ("Board", 4)


def test_room_create_validates_before_touching_the_database(alice):
    """A capacity out of range is InvalidRoom, and nothing is written."""
    with pytest.raises(errors.InvalidRoom) as caught:
        create(alice, capacity=1)
    assert caught.value.message == "Ensure this value is greater than or equal to 2."
    assert not Room.objects.exists()


@pytest.mark.parametrize(
    ("media", "capacity", "message"),
    [
        ("mesh", 13, "A room with media 'mesh' holds at most 12 people."),
        ("auto", 51, "A room with media 'auto' holds at most 50 people."),
        ("sfu", 51, "A room with media 'sfu' holds at most 50 people."),
    ],
)
def test_room_create_caps_capacity_by_media_mode(alice, media, capacity, message):
    """Mesh rooms hold 12 at most, SFU and auto rooms SFU_CAPACITY_MAX (50)."""
    with pytest.raises(errors.InvalidRoom) as caught:
        create(alice, capacity=capacity, media=media)
    assert caught.value.message == message
    assert not Room.objects.exists()


def test_room_create_with_a_channel_seats_its_owner(alice, bob):
    """With a channel: the room and its owner's seat in one go, nothing to tell anyone."""
    seat = create(alice, channel_name="test!alice", name="Board", pin="8642")
    room = Room.objects.get(number="123456789")
    assert (seat.room, seat.moderator, seat.present, seat.history, seat.outbox) == (
        room,
        True,
        [],
        [],
        (),
    )
    assert seat.participants == 1
    active = Participant.objects.get(room=room, left_at__isnull=True)
    assert (active.user, active.peer_id, active.channel_name) == (
        alice,
        seat.participant.peer_id,
        "test!alice",
    )
    assert services.resume_token_peer(token=seat.resume_token, user=alice) == active.peer_id
    # The next one in finds the owner there.
    assert join(room, bob, pin="8642").present == [active]


def test_room_create_refuses_a_number_in_use_and_leaves_nothing(alice, bob):
    """A number an open room holds is NumberTaken; neither room nor seat is left behind."""
    create(alice, number="555555555", channel_name="a!1")
    with pytest.raises(errors.NumberTaken):
        create(bob, number="555555555", channel_name="b!1")
    assert list(Room.objects.values_list("owner__username", flat=True)) == ["alice"]
    assert not Participant.objects.filter(user=bob).exists()


def test_room_create_reuses_the_number_of_a_closed_room(alice):
    """Numbers come back once their room is closed."""
    first = create(alice, number="444444444")
    services.room_close(room_id=first.pk, reason="owner")
    again = create(alice, number="444444444")
    assert again.pk != first.pk
    assert Room.objects.filter(number="444444444", closed_at__isnull=True).get() == again


def test_room_creation_caps_per_account(alice, staff, settings):
    """Open rooms and rooms per hour are capped per account (not staff); ending one frees one."""
    settings.OPEN_ROOMS_PER_USER, settings.ROOMS_CREATED_PER_HOUR = 2, 3
    first = create(alice, number="100000001")
    create(alice, number="100000002")
    with pytest.raises(errors.CapReached) as caught:
        create(alice, number="100000003")
    assert caught.value.message == "You have 2 open rooms; end one before creating another."
    with pytest.raises(errors.CapReached):
        create(alice, number="100000003", channel_name="c")
    services.room_close(room_id=first.pk, reason="owner")
    create(alice, number="100000003")
    Room.objects.filter(owner=alice).update(closed_at=timezone.now())
    with pytest.raises(errors.CapReached) as caught:
        create(alice, number="100000004")
    assert caught.value.message == (
        "You have created too many rooms in the last hour; try again later."
    )
    # An hour later the count starts again.
    Room.objects.filter(owner=alice).update(
        created_at=timezone.now() - timedelta(hours=1, seconds=1)
    )
    create(alice, number="100000004")
    for n in range(5):
        create(staff, number=f"20000000{n}")


# --- room_join ------------------------------------------------------------------------------


def test_room_join_admits_lists_present_peers_and_announces(make_room, alice, bob):
    """room_join seats the user, returns who is there, and says peer-joined to the room."""
    room = make_room(alice)
    first = join(room, alice)
    second = join(room, bob)
    assert (first.present, first.moderator, second.moderator) == ([], True, False)
    assert second.present == [first.participant]
    assert second.participants == 2
    assert second.participant.user == bob and second.participant.channel_name == "test!bob"
    assert Participant.objects.filter(room=room, left_at__isnull=True).count() == 2
    assert said(second.outbox) == [
        (
            room.group_name,
            "peer.joined",
            room.pk,
            {"type": "peer-joined", "peer": peer_object(second.participant, name="bob")},
        )
    ]
    assert second.outbox[0].event["channel"] == "test!bob"


def test_room_join_refuses_a_full_room(make_room, alice, bob, carol):
    """The capacity counts only people in the room now."""
    room = make_room(alice, capacity=2)
    join(room, alice)
    left = join(room, bob)
    assert refusal(errors.RoomFull, room, carol) == "This room is full (2 people)."
    services.participant_leave(peer_id=left.participant.peer_id, reason="left")
    assert join(room, carol).participants == 2


def test_room_join_refuses_a_locked_room_except_to_owner_and_staff(make_room, alice, bob, staff):
    """A locked room refuses newcomers with room-locked; its owner and staff still get in."""
    room = make_room(alice)
    services.room_set_locked(room_id=room.pk, locked=True)
    assert refusal(errors.RoomLocked, room, bob) == "This room is locked; nobody new can join."
    assert join(room, alice).moderator
    assert join(room, staff).moderator


def test_room_join_checks_the_pin(make_room, alice, bob):
    """A PIN room refuses a missing or wrong PIN and admits the right one; the owner needs none."""
    room = make_room(alice, pin="1234")
    assert refusal(errors.WrongPin, room, bob) == "This room needs a PIN."
    assert refusal(errors.WrongPin, room, bob, pin="4321") == "That PIN is not right."
    assert join(room, bob, pin="1234").participant.user == bob
    assert join(room, alice).participant.user == alice


def test_room_join_in_an_sfu_room_ends_the_replaced_seat_in_janus(make_room, alice, bob):
    """The seat taken over may be parked in Janus (its socket dropped): every worker hears so."""
    room = make_room(alice, media="sfu")
    first = join(room, bob, sfu_available=True)
    second = join(room, bob, sfu_available=True)
    assert [item.event for item in second.outbox if item.group == events.WORKERS_GROUP] == [
        {"type": "sfu.cleanup", "room": room.pk, "feeds": [first.participant.pk], "destroy": False}
    ]


def test_room_join_takes_over_the_same_users_seat(make_room, alice, bob):
    """A second join of the same account takes its seat over, even when the room is full."""
    room = make_room(alice, capacity=2)
    owner = join(room, alice).participant
    first = join(room, bob)
    second = services.room_join(number=room.number, user=bob, channel_name="test!bob-phone")
    assert second.present == [owner]
    assert second.participants == 2
    old = Participant.objects.get(peer_id=first.participant.peer_id)
    assert (old.is_active, old.left_reason) == (False, "replaced")
    # The old seat leaves first, its socket is told (4409), then the new one arrives.
    assert said(second.outbox) == [
        (
            room.group_name,
            "peer.left",
            room.pk,
            {"type": "peer-left", "peerId": old.peer_id, "reason": "left"},
        ),
        ("test!bob", "peer.replaced", room.pk, None),
        (
            room.group_name,
            "peer.joined",
            room.pk,
            {"type": "peer-joined", "peer": peer_object(second.participant, name="bob")},
        ),
    ]
    assert services.participant_was_replaced(peer_id=old.peer_id, user=bob)
    assert not services.participant_was_replaced(peer_id=second.participant.peer_id, user=bob)


def test_room_join_refuses_closed_and_unknown_rooms(make_room, alice, bob):
    """A closed room answers RoomClosed; a number nobody has answers RoomNotFound."""
    room = make_room(alice)
    services.room_close(room_id=room.pk, reason="admin")
    assert refusal(errors.RoomClosed, room, bob) == "This room has been closed."
    with pytest.raises(errors.RoomNotFound) as caught:
        services.room_join(number="999999999", user=bob, channel_name="x")
    assert caught.value.message == "There is no room with that number."


def test_room_join_reaches_the_open_room_when_a_closed_one_had_the_number(alice, bob):
    """After a number is reused, joining it reaches the open room, not the closed one."""
    old = Room.objects.create(owner=alice, name="old", number="555000111")
    services.room_close(room_id=old.pk, reason="admin")
    new = Room.objects.create(owner=bob, name="new", number="555000111")
    assert join(new, alice).room.pk == new.pk


def test_room_join_brings_the_chat_history(make_room, alice, bob):
    """A newcomer's seat holds the room's chat lines, oldest first, with their authors."""
    room = make_room(alice)
    for text in ("one", "two"):
        ChatMessage.objects.create(room=room, user=alice, peer_id="p", text=text)
    history = join(room, bob).history
    assert [(line.text, line.user) for line in history] == [("one", alice), ("two", alice)]


# --- resume ----------------------------------------------------------------------------------


def test_participant_resume_moves_the_peer_and_tells_its_old_socket(make_room, alice, bob):
    """Resume keeps the peer id, moves its channel, and says so to the room and the old socket."""
    room = make_room(alice)
    present = join(room, alice).participant
    seat = join(room, bob)
    peer_id = seat.participant.peer_id
    again = services.participant_resume(
        peer_id=peer_id, number=room.number, user=bob, channel_name="test!bob-again"
    )
    assert (again.participant.peer_id, again.present) == (peer_id, [present])
    assert Participant.objects.get(peer_id=peer_id).channel_name == "test!bob-again"
    assert [(item.group or item.channel, item.event) for item in again.outbox] == [
        (
            room.group_name,
            {
                "type": "peer.moved",
                "room": room.pk,
                "peer_id": peer_id,
                "channel": "test!bob-again",
            },
        ),
        (
            "test!bob",
            {"type": "peer.replaced", "room": room.pk, "peer_id": peer_id, "resumed": True},
        ),
    ]
    # Someone else's peer, or one that left, does not resume.
    assert (
        services.participant_resume(
            peer_id=peer_id, number=room.number, user=alice, channel_name="x"
        )
        is None
    )
    services.participant_leave(peer_id=peer_id, reason="left")
    assert (
        services.participant_resume(peer_id=peer_id, number=room.number, user=bob, channel_name="x")
        is None
    )


# --- leaving, expiring, kicking, media, chat ---------------------------------------------------


def test_participant_leave_records_the_reason_and_announces_once(make_room, alice):
    """The first leave records its reason and returns peer-left; later calls return nothing."""
    room = make_room(alice)
    peer_id = join(room, alice).participant.peer_id
    assert said(services.participant_leave(peer_id=peer_id, reason="disconnected")) == [
        (
            room.group_name,
            "peer.left",
            room.pk,
            {"type": "peer-left", "peerId": peer_id, "reason": "disconnected"},
        )
    ]
    left = Participant.objects.get(peer_id=peer_id)
    assert services.participant_leave(peer_id=peer_id, reason="left") == ()
    again = Participant.objects.get(peer_id=peer_id)
    assert (again.left_reason, again.left_at) == ("disconnected", left.left_at)
    assert left.left_at is not None


def test_participant_expire_tells_the_room_and_the_stalled_socket(make_room, alice):
    """An expired peer leaves with timeout; its socket is told to start again; once only."""
    room = make_room(alice)
    participant = join(room, alice).participant
    assert said(services.participant_expire(peer_id=participant.peer_id)) == [
        (
            room.group_name,
            "peer.left",
            room.pk,
            {"type": "peer-left", "peerId": participant.peer_id, "reason": "timeout"},
        ),
        ("test!alice", "peer.expired", room.pk, None),
    ]
    assert Participant.objects.get(pk=participant.pk).left_reason == "timeout"
    assert services.participant_expire(peer_id=participant.peer_id) == ()


def test_participant_kick(make_room, alice, bob, carol):
    """The owner may kick; others are NotAllowed; an absent peer is PeerNotFound."""
    room = make_room(alice)
    owner = join(room, alice).participant
    target = join(room, bob).participant
    join(room, carol)
    with pytest.raises(errors.NotAllowed) as caught:
        services.participant_kick(room_id=room.pk, actor=carol, peer_id=target.peer_id)
    assert caught.value.message == "Only the room's owner can remove people."
    with pytest.raises(errors.NotAllowed) as caught:
        services.participant_kick(room_id=room.pk, actor=alice, peer_id=owner.peer_id)
    assert caught.value.message == "Use leave to leave the room yourself."
    with pytest.raises(errors.PeerNotFound):
        services.participant_kick(room_id=room.pk, actor=alice, peer_id="nobody")
    outbox = services.participant_kick(room_id=room.pk, actor=alice, peer_id=target.peer_id)
    assert said(outbox) == [
        ("test!bob", "peer.kicked", room.pk, {"type": "kicked"}),
        (
            room.group_name,
            "peer.left",
            room.pk,
            {"type": "peer-left", "peerId": target.peer_id, "reason": "kicked"},
        ),
    ]
    assert Participant.objects.get(pk=target.pk).left_reason == "kicked"


def test_participant_set_media_stores_only_given_fields(make_room, alice):
    """media changes only the flags it names and announces the whole peer; a peer gone gets ()."""
    room = make_room(alice)
    participant = join(room, alice).participant
    outbox = services.participant_set_media(
        peer_id=participant.peer_id, audio=False, video=None, screen=True
    )
    stored = Participant.objects.get(pk=participant.pk)
    assert (stored.audio, stored.video, stored.screen) == (False, True, True)
    assert said(outbox) == [
        (
            room.group_name,
            "peer.updated",
            room.pk,
            {
                "type": "peer-updated",
                "peer": peer_object(
                    participant, name="alice", display="Alice Liddell", audio=False, screen=True
                ),
            },
        )
    ]
    services.participant_leave(peer_id=participant.peer_id, reason="left")
    assert (
        services.participant_set_media(
            peer_id=participant.peer_id, audio=True, video=None, screen=None
        )
        == ()
    )


def test_chat_message_is_saved_and_broadcast(make_room, alice):
    """chat_message_create saves the line and says it to everyone in the room, sender included."""
    room = make_room(alice)
    outbox = services.chat_message_create(room_id=room.pk, user=alice, peer_id="p1", text="hi all")
    line = ChatMessage.objects.get()
    assert (line.room, line.user, line.peer_id, line.text) == (room, alice, "p1", "hi all")
    assert said(outbox) == [
        (
            room.group_name,
            "room.broadcast",
            room.pk,
            {
                "type": "chat",
                "from": "p1",
                "user": {"id": alice.pk, "username": "alice", "displayName": "Alice Liddell"},
                "text": "hi all",
                "ts": line.created_at.isoformat().replace("+00:00", "Z"),
            },
        )
    ]


# --- lock and close ----------------------------------------------------------------------------


def test_room_set_locked_stores_and_announces(make_room, alice):
    """room_set_locked stores the flag and says room-updated with the whole room."""
    room = make_room(alice, name="Board")
    join(room, alice)
    outbox = services.room_set_locked(room_id=room.pk, locked=True)
    assert Room.objects.get(pk=room.pk).locked is True
    assert said(outbox) == [
        (
            room.group_name,
            "room.updated",
            room.pk,
            {
                "type": "room-updated",
                "room": {
                    "number": room.number,
                    "name": "Board",
                    "capacity": 6,
                    "locked": True,
                    "hasPin": False,
                    "owner": {"id": alice.pk, "username": "alice"},
                    "participants": 1,
                    "closed": False,
                    "mode": "auto",
                    "media": "mesh",
                },
            },
        )
    ]
    services.room_set_locked(room_id=room.pk, locked=False)
    assert Room.objects.get(pk=room.pk).locked is False


def test_room_close_marks_everyone_left_and_announces(make_room, alice, bob):
    """room_close closes the room, marks present participants left (closed), says room-closed."""
    room = make_room(alice)
    gone = join(room, bob).participant
    services.participant_leave(peer_id=gone.peer_id, reason="left")
    present = join(room, alice).participant
    assert said(services.room_close(room_id=room.pk, reason="admin")) == [
        (room.group_name, "room.closed", room.pk, {"type": "room-closed", "reason": "admin"})
    ]
    assert Room.objects.get(pk=room.pk).closed_at is not None
    assert Participant.objects.get(pk=present.pk).left_reason == "closed"
    assert Participant.objects.get(pk=gone.pk).left_reason == "left"
    assert services.room_close(room_id=room.pk, reason="admin") == ()


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
    found = selectors.room_get_by_number(number="777000111")
    assert (found.pk, found.people_now) == (current.pk, 0)
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
    services.room_close(room_id=closed.pk, reason="owner")
    recent = selectors.user_recent_rooms(user=alice)
    assert [(room.name, room.people_now) for room in recent] == [
        ("visited", 1),
        ("owned", 0),
        ("owned, never joined", 0),
    ]
    assert recent[0].last_used == now - timedelta(minutes=5)
    assert recent[2].last_used == owned_idle.created_at
    assert [room.pk for room in selectors.user_recent_rooms(user=alice, limit=1)] == [visited.pk]
