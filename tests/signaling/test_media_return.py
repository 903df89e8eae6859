"""Auto rooms go back to direct (mesh) once they stayed small, and the owner may pin the mode.

Services against the real database; each decision is taken under the room's
row lock, so the tests call the services as every worker would, with the
clock given (`now`) where the delay matters.
"""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from rooms import errors, events, services
from rooms.models import Room
from rooms.services import housekeeping

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def join(room: Room, user, *, sfu_available: bool = True) -> services.Seat:
    return services.room_join(
        number=room.number, user=user, channel_name=f"test!{user}", sfu_available=sfu_available
    )


def leave(seat: services.Seat) -> events.Outbox:
    return services.participant_leave(peer_id=seat.participant.peer_id, reason="left")


def said(outbox: events.Outbox) -> list[tuple]:
    """(where, event type, what the client reads or the event's other fields) for each event."""
    out = []
    for item in outbox:
        event = dict(item.event)
        text = event.pop("text", None)
        out.append(
            (
                item.group or item.channel,
                event.pop("type"),
                orjson.loads(text) if text is not None else event,
            )
        )
    return out


def fresh(room: Room) -> Room:
    return Room.objects.select_related("owner").get(pk=room.pk)


def room_object(room: Room, *, media: str, mode: str = "auto", participants: int) -> dict:
    return {
        "number": room.number,
        "name": room.name,
        "capacity": room.capacity,
        "locked": False,
        "hasPin": False,
        "owner": {"id": room.owner_id, "username": room.owner.username},
        "participants": participants,
        "closed": False,
        "mode": mode,
        "media": media,
    }


@pytest.fixture
def five(make_user):
    return [make_user(f"p{n}") for n in range(5)]


@pytest.fixture
def on_the_sfu(five, make_room):
    """An auto room of five (MESH_MAX_PEERS 4): the fifth moved it to the SFU."""
    owner, *guests = five
    room = make_room(owner)
    seats = [services.room_join(number=room.number, user=owner, channel_name="test!owner")]
    seats += [join(room, guest) for guest in guests]
    assert fresh(room).media == "sfu"
    return room, seats


def test_a_stranger_who_joins_as_the_fifth_and_leaves_no_longer_keeps_the_room_on_the_sfu(
    on_the_sfu, settings
):
    """Issue 22's attack: the fifth leaves; MESH_RETURN_AFTER (60 s) later it is direct again."""
    assert (settings.MESH_MAX_PEERS, settings.MESH_RETURN_AFTER) == (4, 60)
    assert settings.SFU_RETURN_GRACE == 30
    room, seats = on_the_sfu
    before = timezone.now()
    outbox = leave(seats[4])
    since = fresh(room).media_small_since
    assert before <= since <= timezone.now()
    assert said(outbox) == [
        (
            room.group_name,
            "peer.left",
            {"type": "peer-left", "peerId": seats[4].participant.peer_id, "reason": "left"},
        ),
        ("workers", "room.media_check", {"room": room.pk, "at": since.timestamp() + 60}),
    ]
    # Not a moment before the delay.
    just_before = since + timedelta(seconds=60) - timedelta(milliseconds=1)
    assert services.room_media_return(room_id=room.pk, now=just_before) == ()
    assert fresh(room).media == "sfu"
    at = since + timedelta(seconds=60)
    outbox = services.room_media_return(room_id=room.pk, now=at)
    assert said(outbox) == [
        (
            room.group_name,
            "room.updated",
            {"type": "room-updated", "room": room_object(room, media="mesh", participants=4)},
        ),
        ("workers", "sfu.release", {"room": room.pk, "at": at.timestamp() + 30}),
    ]
    assert outbox[0].event["media"] == "mesh"
    after = fresh(room)
    assert (after.media, after.media_mode, after.media_small_since) == ("mesh", "auto", None)
    # Decided once: every worker asks, the first one switches, the others find nothing to do.
    assert services.room_media_return(room_id=room.pk, now=at + timedelta(seconds=1)) == ()


def test_leaving_and_rejoining_within_the_delay_keeps_the_room_on_the_sfu(on_the_sfu, five):
    """No flapping: back above MESH_MAX_PEERS before the delay ran out, the clock stops."""
    room, seats = on_the_sfu
    leave(seats[4])
    assert fresh(room).media_small_since is not None
    seat = join(room, five[4])
    # Still on the SFU: no room-updated, only the newcomer.
    assert [item.event["type"] for item in seat.outbox] == ["peer.joined"]
    assert (seat.room.media, fresh(room).media_small_since) == ("sfu", None)
    later = timezone.now() + timedelta(hours=1)
    assert services.room_media_return(room_id=room.pk, now=later) == ()
    assert fresh(room).media == "sfu"
    # Small again: the clock starts again, from this leave.
    before = timezone.now()
    leave(seat)
    assert fresh(room).media_small_since >= before


def test_a_room_that_went_back_goes_to_the_sfu_again_only_past_mesh_max_peers(
    on_the_sfu, five, make_user
):
    """Back on the mesh, joins up to MESH_MAX_PEERS stay direct; the one past it switches."""
    room, seats = on_the_sfu
    leave(seats[4])
    leave(seats[3])
    since = fresh(room).media_small_since
    services.room_media_return(room_id=room.pk, now=since + timedelta(seconds=60))
    assert join(room, five[3]).room.media == "mesh"
    seat = join(room, five[4])
    assert seat.room.media == "sfu"
    assert [item.event["type"] for item in seat.outbox] == ["room.updated", "peer.joined"]
    assert seat.outbox[0].event["media"] == "sfu"


def test_the_clock_does_not_start_above_mesh_max_peers_nor_outside_auto_rooms(
    make_room, make_user, settings
):
    """Six leave to five: still above the limit, no clock. An `sfu` room never goes back."""
    settings.MESH_MAX_PEERS = 4
    users = [make_user(f"q{n}") for n in range(6)]
    room = make_room(users[0], capacity=10)
    seats = [join(room, user) for user in users]
    assert [item.event["type"] for item in leave(seats[5])] == ["peer.left"]
    assert fresh(room).media_small_since is None
    sfu_room = make_room(users[0], media="sfu")
    sfu_seats = [join(sfu_room, user) for user in users[:3]]
    assert [item.event["type"] for item in leave(sfu_seats[2])] == ["peer.left"]
    assert (fresh(sfu_room).media, fresh(sfu_room).media_small_since) == ("sfu", None)


def test_an_emptied_auto_room_is_direct_again_at_once(on_the_sfu):
    """The last one out: mesh for whoever comes next, the Janus room destroyed (as before)."""
    room, seats = on_the_sfu
    for seat in seats[:-1]:
        leave(seat)
    outbox = leave(seats[-1])
    assert said(outbox)[-1] == (
        "workers",
        "sfu.cleanup",
        {"room": room.pk, "feeds": [], "destroy": True},
    )
    after = fresh(room)
    assert (after.media, after.media_small_since) == ("mesh", None)


def test_the_housekeeping_returns_rooms_whose_check_was_lost(on_the_sfu):
    """A worker that died with its timer: the housekeeping takes the room back to direct."""
    room, seats = on_the_sfu
    leave(seats[4])
    since = fresh(room).media_small_since
    assert housekeeping.prune(now=since + timedelta(seconds=59)).outbox == ()
    report = housekeeping.prune(now=since + timedelta(seconds=61))
    assert [(item.event["type"], item.event["room"]) for item in report.outbox] == [
        ("room.updated", room.pk),
        ("sfu.release", room.pk),
    ]
    assert fresh(room).media == "mesh"


# --- The owner pins the mode ------------------------------------------------------------


def test_the_owner_pins_a_room_on_the_sfu_to_direct(on_the_sfu):
    """mode mesh: direct now, whoever is in it; the Janus room goes after the grace."""
    room, _ = on_the_sfu
    at = timezone.now()
    outbox = services.room_set_mode(room_id=room.pk, mode="mesh", sfu_available=True, now=at)
    assert said(outbox) == [
        (
            room.group_name,
            "room.updated",
            {
                "type": "room-updated",
                "room": room_object(room, media="mesh", mode="mesh", participants=5),
            },
        ),
        ("workers", "sfu.release", {"room": room.pk, "at": at.timestamp() + 30}),
    ]
    after = fresh(room)
    assert (after.media_mode, after.media) == ("mesh", "mesh")
    # Pinned: past MESH_MAX_PEERS it stays direct.
    assert services.room_set_mode(room_id=room.pk, mode="mesh", sfu_available=True) == ()


def test_a_pin_to_direct_keeps_to_the_mesh_capacity(make_room, alice):
    """A room larger than a mesh may be (12) cannot be pinned direct: bad-message, as at create."""
    room = make_room(alice, capacity=13)
    with pytest.raises(errors.InvalidRoom) as caught:
        services.room_set_mode(room_id=room.pk, mode="mesh", sfu_available=True)
    assert caught.value.message == "A room with media 'mesh' holds at most 12 people."
    assert fresh(room).media_mode == "auto"


def test_a_pin_to_the_sfu_needs_the_sfu(make_room, alice, bob):
    """mode sfu with Janus away: sfu-unavailable, nothing changes; with it, the room moves."""
    room = make_room(alice)
    join(room, alice)
    join(room, bob)
    with pytest.raises(errors.SfuUnavailable):
        services.room_set_mode(room_id=room.pk, mode="sfu", sfu_available=False)
    assert (fresh(room).media_mode, fresh(room).media) == ("auto", "mesh")
    outbox = services.room_set_mode(room_id=room.pk, mode="sfu", sfu_available=True)
    assert said(outbox) == [
        (
            room.group_name,
            "room.updated",
            {
                "type": "room-updated",
                "room": room_object(room, media="sfu", mode="sfu", participants=2),
            },
        )
    ]
    # Small, but pinned: no clock, it stays.
    assert fresh(room).media_small_since is None


def test_back_to_auto_a_small_room_on_the_sfu_starts_its_clock(make_room, alice, bob):
    """From sfu to auto with two people: the delay starts now, then it goes direct."""
    room = make_room(alice, media="sfu")
    join(room, alice)
    join(room, bob)
    at = timezone.now()
    outbox = services.room_set_mode(room_id=room.pk, mode="auto", sfu_available=True, now=at)
    assert said(outbox) == [
        (
            room.group_name,
            "room.updated",
            {"type": "room-updated", "room": room_object(room, media="sfu", participants=2)},
        ),
        ("workers", "room.media_check", {"room": room.pk, "at": at.timestamp() + 60}),
    ]
    assert fresh(room).media_small_since == at
    back = services.room_media_return(room_id=room.pk, now=at + timedelta(seconds=60))
    assert [item.event["type"] for item in back] == ["room.updated", "sfu.release"]
