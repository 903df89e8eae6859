"""The owner pins a room's media mode over the socket (`mode`, extension); nobody else may."""

from __future__ import annotations

import pytest

from tests.support.helpers import db_room

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_owner_pins_the_room_direct_and_everyone_hears_it(connect, room_of, alice, bob):
    """mode mesh: room-updated (mode and media mesh) to everyone, the owner included."""
    first, second = await room_of(alice, bob)
    await first.send({"type": "mode", "mode": "mesh", "id": "m1"})
    for peer in (first, second):
        updated = await peer.recv_type("room-updated")
        assert (updated["room"]["mode"], updated["room"]["media"]) == ("mesh", "mesh")
        assert updated["room"]["participants"] == 2
        assert "re" not in updated
    room = await db_room(first.room["number"])
    assert (room.media_mode, room.media) == ("mesh", "mesh")
    # The same again changes nothing and says nothing.
    await first.send({"type": "mode", "mode": "mesh"})
    for peer in (first, second):
        await peer.nothing_before_pong()


async def test_only_the_owner_may_pin_the_mode(connect, room_of, alice, bob):
    """A guest's mode: forbidden; the room keeps its mode."""
    first, second = await room_of(alice, bob)
    answer = await second.request({"type": "mode", "mode": "mesh", "id": "m2"})
    assert answer == {
        "type": "error",
        "code": "forbidden",
        "message": "only the room's owner can do that",
        "re": "m2",
    }
    await first.nothing_before_pong()
    assert (await db_room(first.room["number"])).media_mode == "auto"


@pytest.mark.parametrize(
    ("message", "code", "text"),
    [
        ({"mode": "p2p"}, "bad-message", "'mode' must be one of mesh, sfu, auto"),
        ({}, "bad-message", "'mode' must be one of mesh, sfu, auto"),
        (
            {"mode": "sfu"},
            "sfu-unavailable",
            "This room's call goes through the media server, which cannot be reached right"
            " now; try again in a moment.",
        ),
    ],
)
async def test_a_mode_that_cannot_be_is_refused(connect, alice, message, code, text):
    """An unknown mode is bad-message; the SFU without Janus (JANUS_URL unset) sfu-unavailable."""
    peer = await connect(alice)
    await peer.create()
    answer = await peer.request({"type": "mode", "id": "m3", **message})
    assert answer == {"type": "error", "code": code, "message": text, "re": "m3"}


async def test_a_room_too_large_for_a_mesh_cannot_be_pinned_direct(connect, alice):
    """Capacity 13 (mesh rooms hold 12): bad-message, as a create would be."""
    peer = await connect(alice)
    await peer.create(capacity=13)
    answer = await peer.request({"type": "mode", "mode": "mesh", "id": "m4"})
    assert answer == {
        "type": "error",
        "code": "bad-message",
        "message": "A room with media 'mesh' holds at most 12 people.",
        "re": "m4",
    }


async def test_mode_and_sfu_leave_need_a_room(connect, alice):
    """Before joining: not-in-room, like every in-room message."""
    peer = await connect(alice)
    for kind in ("mode", "sfu-leave"):
        answer = await peer.request({"type": kind, "mode": "mesh", "id": "n"})
        assert (answer["type"], answer["code"]) == ("error", "not-in-room")


async def test_sfu_leave_without_a_seat_says_nothing(connect, alice):
    """A browser that never used the SFU may say it left it: nothing happens, no answer."""
    peer = await connect(alice)
    await peer.create()
    await peer.send({"type": "sfu-leave"})
    await peer.nothing_before_pong()
