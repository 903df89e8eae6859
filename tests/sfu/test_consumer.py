"""The signaling socket's SFU extension against a real Janus: modes, the switch, the proxy.

WebsocketCommunicator on the real router, with JANUS_URL pointing at the
shared test Janus (tests/sfu/conftest.py). Offers come from
tests/sfu/sdp.py: what Chromium sends, so Janus answers them for real
(no PeerConnection ever connects: no browser here; tests/e2e has those).
"""

from __future__ import annotations

import asyncio

import pytest

from rooms.models import Participant, Room
from sfu import lifecycle
from tests.sfu import sdp
from tests.support.helpers import db_participant, db_room

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

UNAVAILABLE = (
    "This room's call goes through the media server, which cannot be reached right now;"
    " try again in a moment."
)


@pytest.fixture
def with_janus(settings, janus):
    """The site's settings pointing at the shared test Janus."""
    settings.JANUS_URL = janus.url
    settings.JANUS_API_SECRET = janus.api_secret
    settings.JANUS_ADMIN_KEY = janus.admin_key
    return janus


@pytest.fixture
def without_janus(settings, tmp_path):
    """A Janus URL nothing listens on: the SFU is configured but down."""
    settings.JANUS_URL = f"unix:{tmp_path / 'nobody.sock'}"
    settings.JANUS_API_SECRET = "x" * 24
    settings.JANUS_ADMIN_KEY = "y" * 24


async def listed(room_pk: int) -> list[dict]:
    return sorted(await lifecycle.participants(room_id=room_pk), key=lambda p: p["id"])


async def test_sfu_room_is_refused_with_a_clear_error_while_janus_is_down(
    connect, alice, without_janus
):
    """create with media sfu while Janus does not answer: sfu-unavailable, nothing created."""
    peer = await connect(alice)
    answer = await peer.request({"type": "create", "media": "sfu", "id": "c1"})
    assert answer == {
        "type": "error",
        "code": "sfu-unavailable",
        "message": UNAVAILABLE,
        "re": "c1",
    }
    assert not await Room.objects.aexists()


async def test_auto_room_stays_direct_past_the_mesh_limit_while_janus_is_down(
    connect, room_of, alice, bob, carol, settings, without_janus
):
    """MESH_MAX_PEERS 2, a third joins an auto room with Janus down: still mesh, no room-updated."""
    settings.MESH_MAX_PEERS = 2
    first, second = await room_of(alice, bob)
    third = await connect(carol)
    answer = await third.join(first.room["number"])
    assert (answer["type"], answer["room"]["media"], answer["room"]["mode"]) == (
        "joined",
        "mesh",
        "auto",
    )
    for present in (first, second):
        assert (await present.recv_type("peer-joined"))["peer"]["peerId"] == third.peer_id


async def test_publishing_in_an_sfu_room_goes_through_janus(connect, alice, with_janus):
    """sfu-offer gets Janus' simulcast answer; Janus knows the feed as the participant."""
    peer = await connect(alice)
    answer = await peer.create(media="sfu", capacity=20)
    assert (answer["room"]["media"], answer["room"]["mode"], answer["room"]["capacity"]) == (
        "sfu",
        "sfu",
        20,
    )
    reply = await peer.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o1"})
    assert (reply["type"], reply["re"], set(reply)) == ("sfu-answer", "o1", {"type", "sdp", "re"})
    assert "a=simulcast:recv h;m;l" in reply["sdp"].splitlines()
    candidate = {
        "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    await peer.send({"type": "sfu-candidate", "role": "publisher", "candidate": candidate})
    await peer.nothing_before_pong()
    participant = await db_participant(peer.peer_id)
    room = await db_room(answer["room"]["number"])
    # Feed id = the Participant's primary key, display = the peer id.
    assert await listed(room.pk) == [
        {"id": participant.pk, "display": peer.peer_id, "publisher": False}
    ]
    await peer.send({"type": "leave"})
    await peer.nothing_before_pong()
    assert await listed(room.pk) == []


async def test_sfu_requests_in_a_direct_call_are_forbidden(connect, alice, with_janus):
    """sfu-offer in a mesh room: forbidden, the call is peer to peer."""
    peer = await connect(alice)
    await peer.create(media="mesh")
    reply = await peer.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o1"})
    assert reply == {
        "type": "error",
        "code": "forbidden",
        "message": "This call is direct (peer to peer), not through the SFU.",
        "re": "o1",
    }


async def test_auto_room_switches_to_the_sfu_when_it_passes_the_mesh_limit(
    connect, room_of, alice, bob, carol, settings, with_janus
):
    """MESH_MAX_PEERS 2: the third join moves the room to the SFU; the others hear it first."""
    settings.MESH_MAX_PEERS = 2
    first, second = await room_of(alice, bob)
    assert first.room["media"] == "mesh"
    third = await connect(carol)
    answer = await third.join(first.room["number"])
    assert answer["room"]["media"] == "sfu"
    for present in (first, second):
        updated = await present.recv_type("room-updated")
        assert (updated["room"]["media"], updated["room"]["participants"]) == ("sfu", 3)
        assert (await present.recv_type("peer-joined"))["peer"]["peerId"] == third.peer_id
    room = await db_room(first.room["number"])
    assert room.media == "sfu"
    # Everyone may publish now, the ones from the mesh too.
    reply = await first.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o1"})
    assert reply["type"] == "sfu-answer"


async def test_kick_and_close_end_the_janus_participants(connect, room_of, alice, bob, with_janus):
    """A kicked peer's feed leaves Janus; closing the room destroys the Janus room."""
    first, second = await room_of(alice, bob, media="sfu")
    for peer in (first, second):
        reply = await peer.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o"})
        assert reply["type"] == "sfu-answer"
    room = await db_room(first.room["number"])
    bob_feed = (await db_participant(second.peer_id)).pk
    assert [p["id"] for p in await listed(room.pk)] == sorted(
        [(await db_participant(first.peer_id)).pk, bob_feed]
    )
    await first.send({"type": "kick", "peer": second.peer_id})
    assert (await second.recv_type("kicked")) == {"type": "kicked"}
    assert await second.expect_close() == 4003
    left = await first.recv_type("peer-left")
    assert left == {"type": "peer-left", "peerId": second.peer_id, "reason": "kicked"}
    await first.nothing_before_pong()
    assert [p["display"] for p in await listed(room.pk)] == [first.peer_id]
    await first.send({"type": "close"})
    assert (await first.recv_type("room-closed"))["reason"] == "owner"
    assert await first.expect_close() == 4000
    # The destroy is the workers' (the sfu.cleanup event): give it its moment.
    admin = await lifecycle.admin()
    for _ in range(100):
        if not await admin.room_exists(room=room.pk):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the Janus room outlived the Django room by 5 s")
    assert await Participant.objects.filter(room=room, left_at__isnull=True).acount() == 0


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"type": "sfu-offer"}, "'sdp' must be a string"),
        ({"type": "sfu-candidate", "role": "x", "candidate": None}, "'role' must be one of"),
        ({"type": "sfu-layer", "peer": "p", "substream": 3}, "'substream' must be an integer"),
        ({"type": "sfu-answer", "sdp": "v=0", "re": 7}, "'re' must be a string"),
        (
            {"type": "sfu-candidate", "role": "subscriber", "candidate": None, "re": "x" * 65},
            "'re' is longer than 64 characters",
        ),
        ({"type": "create", "media": "p2p"}, "'media' must be one of mesh, sfu, auto"),
    ],
)
async def test_bad_sfu_messages_are_refused(connect, alice, message, text):
    """The SFU messages' fields are checked like every other message's."""
    peer = await connect(alice)
    if message["type"] != "create":
        await peer.create()
    reply = await peer.request({**message, "id": "b1"})
    assert (reply["type"], reply["code"], reply["re"]) == ("error", "bad-message", "b1")
    assert reply["message"].startswith(text)


async def test_the_browsers_watchdog_may_ask_for_a_new_subscription_a_few_times(
    connect, room_of, alice, bob, with_janus
):
    """`sfu-resubscribe` is taken without a reply, four at once, then `rate-limited`."""
    first, _ = await room_of(alice, bob, media="sfu")
    reply = await first.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o1"})
    assert reply["type"] == "sfu-answer"
    for n in range(4):
        await first.send({"type": "sfu-resubscribe", "iceRestart": n % 2 == 0, "id": f"r{n}"})
    refused = await first.request({"type": "sfu-resubscribe", "id": "r4"})
    assert refused == {
        "type": "error",
        "code": "rate-limited",
        "message": "too many resubscriptions; wait a moment",
        "re": "r4",
    }
