"""sfu/videoroom.py against real Janus: rooms, publishers, multistream subscribers, kick.

Offers and answers come from tests/sfu/sdp.py (real SDP, no browser), so
PeerConnections are negotiated but never connect; tests/e2e/test_sfu.py runs
the same calls with Chromium and media.
"""

from __future__ import annotations

import pytest

from sfu import PluginError, VideoRoomAdmin, VideoRoomParticipant, candidate, jsep, room_credentials
from tests.sfu import sdp
from tests.sfu.conftest import wait_for
from tests.sfu.janusproc import JANUS_IP

pytestmark = pytest.mark.slow


@pytest.fixture
async def room(janus, admin, room_id):
    """A room created as the site creates it (derived secret and PIN); destroyed after the test."""
    credentials = room_credentials(key=janus.admin_key, room=room_id)
    await admin.create_room(
        room=room_id, secret=credentials.secret, pin=credentials.pin, publishers=3
    )
    yield room_id, credentials
    if await admin.room_exists(room=room_id):
        await admin.destroy_room(room=room_id, secret=credentials.secret)


def test_room_credentials_are_per_room_and_stable():
    """Secret and PIN are derived from the key and the room: same inputs, same values."""
    first = room_credentials(key="k" * 32, room=7)
    assert first == room_credentials(key="k" * 32, room=7)
    assert first.secret != first.pin
    assert room_credentials(key="k" * 32, room=8).secret != first.secret
    assert room_credentials(key="j" * 32, room=7).secret != first.secret
    assert len(first.secret) == len(first.pin) == 32


async def test_room_secret_guards_edit_and_destroy(admin, room):
    """A second create fails; edit and destroy without the secret or with another fail."""
    room_id, credentials = room
    with pytest.raises(PluginError) as raised:
        await admin.create_room(room=room_id, secret="another-secret", pin=None, publishers=3)
    assert (raised.value.code, raised.value.reason) == (427, f"Room {room_id} already exists")

    body = {"request": "edit", "room": room_id, "new_description": "mine now"}
    with pytest.raises(PluginError) as raised:
        await admin.handle.request(body)
    assert (raised.value.code, raised.value.reason) == (429, "Missing mandatory element (secret)")
    with pytest.raises(PluginError) as raised:
        await admin.edit_room(room=room_id, secret="wrong", new_description="mine now")
    assert (raised.value.code, raised.value.reason) == (433, "Unauthorized (wrong secret)")
    with pytest.raises(PluginError) as raised:
        await admin.destroy_room(room=room_id, secret="wrong")
    assert raised.value.code == 433
    assert await admin.room_exists(room=room_id) is True

    await admin.edit_room(room=room_id, secret=credentials.secret, new_description="renamed")
    await admin.destroy_room(room=room_id, secret=credentials.secret)
    assert await admin.room_exists(room=room_id) is False


async def test_join_needs_the_room_pin(client, room):
    """Joining without the room's PIN, or with a wrong one, is refused."""
    room_id, _ = room
    session = await client.create_session()
    for pin, code, reason in (
        (None, 429, "Missing mandatory element (pin)"),
        ("0000", 433, "Unauthorized (wrong pin)"),
    ):
        with pytest.raises(PluginError) as raised:
            await VideoRoomParticipant.join(session, room=room_id, pin=pin, display="Mallory")
        assert (raised.value.code, raised.value.reason) == (code, reason)
    assert session.handles == []  # the failed joins' handles were detached


async def test_publisher_offer_gets_an_answer_on_loopback_only(client, admin, room):
    """A real simulcast offer is answered; Janus' candidates are only its loopback address."""
    room_id, credentials = room
    session = await client.create_session()
    alice = await VideoRoomParticipant.join(
        session, room=room_id, pin=credentials.pin, display="Alice"
    )
    assert (alice.publishers, alice.attendees) == ([], [])

    answer = await alice.publish(offer=jsep(kind="offer", sdp=sdp.publisher_offer()))

    assert answer["type"] == "answer"
    lines = answer["sdp"].splitlines()
    assert "a=simulcast:recv h;m;l" in lines
    assert [line for line in lines if line.startswith("a=rid:")] == [
        "a=rid:h recv",
        "a=rid:m recv",
        "a=rid:l recv",
    ]
    assert [line for line in lines if line.startswith("m=")] == [
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
    ]
    found = sdp.candidates(answer["sdp"])
    assert found, answer["sdp"]
    assert {c.split()[4] for c in found} == {JANUS_IP}  # half-trickle: all in the SDP
    # The browser's candidates trickle in, then end-of-candidates.
    await alice.trickle(
        role="publisher",
        candidate=candidate(
            candidate="candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
            sdp_mid="0",
            sdp_mline_index=0,
        ),
    )
    await alice.trickle(role="publisher", candidate=None)
    # Not publishing yet: the PeerConnection never connects without a browser.
    assert await admin.list_participants(room=room_id) == [
        {"id": alice.feed_id, "display": "Alice", "publisher": False}
    ]
    # Until then Janus does not count it as published at all.
    with pytest.raises(PluginError) as raised:
        await alice.unpublish()
    assert (raised.value.code, raised.value.reason) == (435, "Can't unpublish, not published")
    await alice.leave()
    assert await admin.list_participants(room=room_id) == []


async def test_joins_and_leaves_are_announced(client, room):
    """notify_joining: the others hear `joining` with id and display, then `leaving`."""
    room_id, credentials = room
    session = await client.create_session()
    alice = await VideoRoomParticipant.join(
        session, room=room_id, pin=credentials.pin, display="Alice"
    )
    bob = await VideoRoomParticipant.join(session, room=room_id, pin=credentials.pin, display="Bob")
    assert bob.attendees == [{"id": alice.feed_id, "display": "Alice"}]

    joining, _ = await wait_for(alice.events, lambda e: "joining" in e.event.data)
    assert joining.role == "publisher"
    assert joining.event.data == {
        "videoroom": "event",
        "room": room_id,
        "joining": {"id": bob.feed_id, "display": "Bob"},
    }
    await bob.leave()
    leaving, _ = await wait_for(alice.events, lambda e: "leaving" in e.event.data)
    assert leaving.event.data == {"videoroom": "event", "room": room_id, "leaving": bob.feed_id}


async def test_kick_removes_the_participant(client, admin, room):
    """kick (with the room secret): Janus' own list no longer has them; everyone is told."""
    room_id, credentials = room
    session = await client.create_session()
    alice = await VideoRoomParticipant.join(
        session, room=room_id, pin=credentials.pin, display="Alice"
    )
    bob = await VideoRoomParticipant.join(session, room=room_id, pin=credentials.pin, display="Bob")
    await bob.publish(offer=jsep(kind="offer", sdp=sdp.publisher_offer()))

    with pytest.raises(PluginError) as raised:
        await admin.kick(room=room_id, secret="wrong", feed_id=bob.feed_id)
    assert raised.value.code == 433
    await admin.kick(room=room_id, secret=credentials.secret, feed_id=bob.feed_id)

    assert await admin.list_participants(room=room_id) == [
        {"id": alice.feed_id, "display": "Alice", "publisher": False}
    ]
    kicked, _ = await wait_for(bob.events, lambda e: e.event.data.get("reason") == "kicked")
    assert kicked.event.data == {
        "videoroom": "event",
        "room": room_id,
        "leaving": "ok",
        "reason": "kicked",
    }
    # The others hear "kicked" (not "leaving") with the id.
    told, _ = await wait_for(alice.events, lambda e: "kicked" in e.event.data)
    assert told.event.data == {"videoroom": "event", "room": room_id, "kicked": bob.feed_id}
    with pytest.raises(PluginError) as raised:
        await admin.kick(room=room_id, secret=credentials.secret, feed_id=bob.feed_id)
    assert raised.value.code == 428  # no such user any more


async def test_destroying_the_room_tells_everyone(client, admin, room):
    """destroy: every participant hears `destroyed`, and the room is gone."""
    room_id, credentials = room
    session = await client.create_session()
    alice = await VideoRoomParticipant.join(
        session, room=room_id, pin=credentials.pin, display="Alice"
    )

    await admin.destroy_room(room=room_id, secret=credentials.secret)

    destroyed, _ = await wait_for(alice.events, lambda e: "destroyed" in e.event.data.values())
    assert destroyed.event.data == {"videoroom": "destroyed", "room": room_id}
    assert await admin.room_exists(room=room_id) is False


async def test_multistream_subscription_subscribe_update_start(janus, client, admin, room_id):
    """One subscriber handle: join with streams, start with the answer, update adds and removes.

    Subscribing needs a publisher whose media is up, which only a browser
    gives; VideoRoom's dummy publisher (placeholder streams, "publishing"
    from the start) stands in for one here.
    """
    credentials = room_credentials(key=janus.admin_key, room=room_id)
    await admin.create_room(
        room=room_id,
        secret=credentials.secret,
        pin=credentials.pin,
        publishers=3,
        extra={"dummy_publisher": True},
    )
    session = await client.create_session()
    carol = await VideoRoomParticipant.join(
        session, room=room_id, pin=credentials.pin, display="Carol"
    )
    (dummy,) = carol.publishers
    assert dummy["dummy"] is True
    mids = {s["codec"]: s["mid"] for s in dummy["streams"]}
    assert {"opus", "vp8"} <= set(mids)

    offer = await carol.subscribe(streams=[{"feed": dummy["id"], "mid": mids["vp8"]}])

    assert offer.jsep["type"] == "offer"
    assert [s["feed_mid"] for s in offer.streams] == [mids["vp8"]]
    (video,) = offer.streams
    assert (video["type"], video["feed_id"], video["mid"]) == ("video", dummy["id"], "0")
    await carol.start(answer=jsep(kind="answer", sdp=sdp.answer_for(offer.jsep["sdp"])))

    offer = await carol.update_subscription(subscribe=[{"feed": dummy["id"], "mid": mids["opus"]}])
    assert [(s["type"], s["feed_mid"]) for s in offer.streams] == [
        ("video", mids["vp8"]),
        ("audio", mids["opus"]),
    ]
    assert offer.jsep["sdp"].count("\r\nm=") == 2
    await carol.start(answer=jsep(kind="answer", sdp=sdp.answer_for(offer.jsep["sdp"])))
    # Simulcast layer choice per m-line is accepted (applies once media flows).
    await carol.configure_subscription(streams=[{"mid": "0", "substream": 0, "temporal": 1}])

    offer = await carol.update_subscription(unsubscribe=[{"sub_mid": "1"}])
    assert [s.get("active", True) for s in offer.streams] == [True, False]
    await carol.start(answer=jsep(kind="answer", sdp=sdp.answer_for(offer.jsep["sdp"])))
    await carol.trickle(role="subscriber", candidate=None)
    await carol.leave()
    assert carol.subscriber.closed and carol.publisher.closed
    await admin.destroy_room(room=room_id, secret=credentials.secret)


async def test_subscribing_to_a_feed_without_media_is_refused(client, room):
    """A participant that joined but whose media is not up cannot be subscribed to (428)."""
    room_id, credentials = room
    session = await client.create_session()
    alice = await VideoRoomParticipant.join(
        session, room=room_id, pin=credentials.pin, display="Alice"
    )
    bob = await VideoRoomParticipant.join(session, room=room_id, pin=credentials.pin, display="Bob")

    with pytest.raises(PluginError) as raised:
        await bob.subscribe(streams=[{"feed": alice.feed_id}])

    assert raised.value.code == 428
    assert bob.subscriber is None
    assert len(session.handles) == 2  # the refused subscriber handle was detached


def test_browser_values_cannot_smuggle_fields():
    """JSEP, candidates and stream lists are rebuilt field by field; extra keys are refused."""
    assert jsep(kind="offer", sdp="v=0\r\n") == {"type": "offer", "sdp": "v=0\r\n"}
    assert jsep(kind="offer", sdp="v=0\r\n", rid_order="lmh")["rid_order"] == "lmh"
    with pytest.raises(ValueError):
        jsep(kind="pranswer", sdp="v=0\r\n")
    with pytest.raises(ValueError):
        jsep(kind="offer", sdp="not sdp")
    with pytest.raises(ValueError):
        jsep(kind="offer", sdp="v=0\r\n", rid_order="mhl")
    assert candidate(candidate="candidate:1", sdp_mid="0", sdp_mline_index=0) == {
        "candidate": "candidate:1",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }


async def test_candidates_janus_trickles_reach_the_handle(make_janus, make_client):
    """With full-trickle, Janus' own candidates arrive as `trickle` events on the right handle."""
    server = make_janus(name="janus-full-trickle", args=("--full-trickle",))
    client = make_client(server)
    session = await client.create_session()
    admin = await VideoRoomAdmin.attach(session, admin_key=server.admin_key)
    credentials = room_credentials(key=server.admin_key, room=31)
    await admin.create_room(room=31, secret=credentials.secret, pin=credentials.pin, publishers=2)
    alice = await VideoRoomParticipant.join(session, room=31, pin=credentials.pin, display="Alice")

    answer = await alice.publish(offer=jsep(kind="offer", sdp=sdp.publisher_offer()))

    assert sdp.candidates(answer["sdp"]) == []  # none in the SDP this time
    trickled, _ = await wait_for(alice.events, lambda e: e.event.type == "trickle")
    assert trickled.role == "publisher"
    found = trickled.event.data["candidate"]
    # Janus 1.1.2 may gather before it has read the offer's mids: then its
    # first candidates come without sdpMid (all is bundled on m-line 0).
    assert (found.get("sdpMid", "0"), found["sdpMLineIndex"]) == ("0", 0)
    assert found["candidate"].split()[4] == JANUS_IP
    done, _ = await wait_for(alice.events, lambda e: e.event.type == "trickle")
    assert done.event.data["candidate"] == {"completed": True}
    assert done.event.handle_id == alice.publisher.id
