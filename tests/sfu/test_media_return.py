"""Back to direct, on the real router with a real Janus: what the browsers receive, and when.

MESH_MAX_PEERS 2, so three people are enough to move a room to the SFU;
MESH_RETURN_AFTER 2 s and SFU_RETURN_GRACE 1 s, so the delays run in the
test's time. Timing is measured on the messages themselves (each wait is
for a message, with a timeout), never on sleeps.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async

from rooms.models import Room
from sfu import lifecycle
from signaling.runtime import get_worker
from tests.sfu import sdp
from tests.support.helpers import db_room

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DIRECT = "This call is direct (peer to peer), not through the SFU."


@pytest.fixture
def quick_return(settings, janus):
    """The site pointing at the shared test Janus, with the delays shortened."""
    settings.JANUS_URL = janus.url
    settings.JANUS_API_SECRET = janus.api_secret
    settings.JANUS_ADMIN_KEY = janus.admin_key
    settings.MESH_MAX_PEERS = 2
    settings.MESH_RETURN_AFTER = 2
    settings.SFU_RETURN_GRACE = 1
    return settings


async def on_the_sfu(room_of, connect, owner, guest, third):
    """A room of three that the third moved to the SFU; everyone has heard it all."""
    first, second = await room_of(owner, guest)
    newcomer = await connect(third)
    answer = await newcomer.join(first.room["number"])
    assert answer["room"]["media"] == "sfu"
    for present in (first, second):
        assert (await present.recv_type("room-updated"))["room"]["media"] == "sfu"
        assert (await present.recv_type("peer-joined"))["peer"]["peerId"] == newcomer.peer_id
    # The newcomer hears the switch too, once seated (its socket was in the room's group).
    assert (await newcomer.recv_type("room-updated"))["room"]["media"] == "sfu"
    return first, second, newcomer


async def janus_room_gone(room_pk: int, *, within: float) -> None:
    """Return once Janus no longer has the room (the workers destroy it), at most `within` s on."""
    admin = await lifecycle.admin()
    start = time.monotonic()
    while await admin.room_exists(room=room_pk):
        if time.monotonic() - start > within:
            raise AssertionError(f"the Janus room was still there {within} s on")
        await asyncio.sleep(0.02)


def room_updated(room: Room, *, participants: int, media: str, mode: str = "auto") -> dict:
    return {
        "type": "room-updated",
        "room": {
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
        },
    }


async def test_the_room_goes_direct_after_the_delay_and_janus_lets_go_after_the_grace(
    connect, room_of, alice, bob, carol, quick_return
):
    """The fifth (here: third) leaves: room-updated mesh to all 2 s on; Janus serves 1 s more."""
    first, second, third = await on_the_sfu(room_of, connect, alice, bob, carol)
    room = await db_room(first.room["number"])
    reply = await first.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o1"})
    assert reply["type"] == "sfu-answer"
    left_at = time.monotonic()
    await third.send({"type": "leave"})
    for present in (first, second):
        left = await present.recv_type("peer-left")
        assert left == {"type": "peer-left", "peerId": third.peer_id, "reason": "left"}
    expected = room_updated(room, participants=2, media="mesh")
    assert await first.recv(timeout=5) == expected
    returned = time.monotonic() - left_at
    assert await second.recv(timeout=1) == expected
    assert 2.0 <= returned < 3.5
    print(f"FIGURE room-updated mesh {returned:.2f} s after the leave (MESH_RETURN_AFTER 2 s)")
    # The grace: Janus still serves the seat it had; nobody gets a new one.
    assert [p["display"] for p in await lifecycle.participants(room_id=room.pk)] == [first.peer_id]
    reply = await first.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o2"})
    assert (reply["type"], reply["re"]) == ("sfu-answer", "o2")
    refused = await second.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o3"})
    assert refused == {"type": "error", "code": "forbidden", "message": DIRECT, "re": "o3"}
    # Direct links meanwhile go through as ever.
    await second.send({"type": "offer", "to": first.peer_id, "sdp": "v=0"})
    forwarded = await first.recv_type("offer")
    assert (forwarded["from"], forwarded["sdp"]) == (second.peer_id, "v=0")
    await janus_room_gone(room.pk, within=3)
    gone = time.monotonic() - left_at
    assert gone >= 3.0
    print(f"FIGURE Janus room destroyed {gone:.2f} s after the leave (+ SFU_RETURN_GRACE 1 s)")
    # Its seat went with it: the call is direct now, for everyone.
    refused = await first.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o4"})
    assert refused == {"type": "error", "code": "forbidden", "message": DIRECT, "re": "o4"}
    for peer in (first, second):
        await peer.nothing_before_pong()
    assert (await db_room(room.number)).media == "mesh"


async def test_the_last_browser_to_leave_the_sfu_ends_the_janus_room_before_the_grace(
    connect, room_of, alice, bob, carol, quick_return
):
    """sfu-leave: the seat closes at once; the last one out destroys the Janus room."""
    quick_return.SFU_RETURN_GRACE = 1.9
    first, second, third = await on_the_sfu(room_of, connect, alice, bob, carol)
    room = await db_room(first.room["number"])
    for peer in (first, second):
        reply = await peer.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o"})
        assert reply["type"] == "sfu-answer"
    await third.send({"type": "leave"})
    for peer in (first, second):
        while (message := await peer.recv(timeout=5))["type"] != "room-updated":
            # Their subscriptions to each other's feed come and go meanwhile.
            assert message["type"] in ("sfu-offer", "peer-left"), message
        assert message["room"]["media"] == "mesh"
    returned = time.monotonic()
    await first.send({"type": "sfu-leave"})
    await first.nothing_before_pong()
    assert [p["display"] for p in await lifecycle.participants(room_id=room.pk)] == [second.peer_id]
    await second.send({"type": "sfu-leave"})
    await second.nothing_before_pong()
    admin = await lifecycle.admin()
    assert not await admin.room_exists(room=room.pk)
    assert time.monotonic() - returned < 1.9


async def test_leaving_and_rejoining_within_the_delay_does_not_flap(
    connect, room_of, alice, bob, carol, make_user, quick_return
):
    """Out and back in before the delay: no room-updated at all; out again: mesh 2 s after that."""
    dave, erin, frank = [
        await database_sync_to_async(make_user)(name) for name in ("dave2", "erin", "frank")
    ]
    first, second, third = await on_the_sfu(room_of, connect, alice, bob, carol)
    # A control room, whose return shows when the checks of this moment have run.
    control, _, gone = await on_the_sfu(room_of, connect, dave, erin, frank)
    number = first.room["number"]
    await third.send({"type": "leave"})
    for peer in (first, second):
        assert (await peer.recv_type("peer-left"))["peerId"] == third.peer_id
    await gone.send({"type": "leave"})
    assert (await control.recv_type("peer-left"))["peerId"] == gone.peer_id
    again = await third.join(number)
    assert (again["type"], again["room"]["media"]) == ("joined", "sfu")
    for peer in (first, second):
        assert (await peer.recv_type("peer-joined"))["peer"]["peerId"] == third.peer_id
    # The control room goes direct: the check of the first room, due earlier, has run too...
    assert (await control.recv(timeout=5))["room"]["media"] == "mesh"
    # ... and said nothing: the room stays on the SFU.
    for peer in (first, second, third):
        await peer.nothing_before_pong()
    assert (await db_room(number)).media == "sfu"
    left_at = time.monotonic()
    await third.send({"type": "leave"})
    assert (await first.recv_type("peer-left"))["peerId"] == third.peer_id
    assert (await first.recv(timeout=5))["room"]["media"] == "mesh"
    assert time.monotonic() - left_at >= 2.0


async def test_a_release_finds_the_room_on_the_sfu_again_and_keeps_its_janus_room(
    connect, room_of, alice, bob, carol, quick_return
):
    """Grown past the limit within the grace: the end of the grace leaves Janus and seats alone."""
    first, _, _ = await on_the_sfu(room_of, connect, alice, bob, carol)
    reply = await first.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o1"})
    assert reply["type"] == "sfu-answer"
    room = await db_room(first.room["number"])
    # What every worker does when an earlier return's grace ends.
    await get_worker().release_sfu(room.pk)
    admin = await lifecycle.admin()
    assert await admin.room_exists(room=room.pk)
    reply = await first.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o2"})
    assert (reply["type"], reply["re"]) == ("sfu-answer", "o2")
