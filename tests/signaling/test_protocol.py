"""The signaling protocol (docs/protocol.md section 2), WebsocketCommunicator on the real router."""

from __future__ import annotations

import re
import secrets

import orjson
import pytest
from channels.db import database_sync_to_async

from rooms import events, services
from rooms.models import ChatMessage, Participant, Room
from tests.support.helpers import db_participant, db_room, iso, peer_obj, user_obj

# Every test opens sockets, so every test needs the database (sessions); the ones whose
# point is the database's part (rooms, membership, history) run again on PostgreSQL.
pytestmark = pytest.mark.django_db(transaction=True)

SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {
    "candidate": "candidate:842163049 1 udp 1677729535 192.0.2.7 46154 typ srflx",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "EsQx",
}
NUMBER_RE = re.compile(r"[1-9][0-9]{8}")
MAX_BYTES = 64 * 1024


def err(code: str, message: str, re: str | None = None) -> dict:
    out = {"type": "error", "code": code, "message": message}
    if re is not None:
        out["re"] = re
    return out


def room_obj(room: Room, *, participants: int, locked: bool = False) -> dict:
    return {
        "number": room.number,
        "name": room.name,
        "capacity": room.capacity,
        "locked": locked,
        "hasPin": bool(room.pin_hash),
        "owner": {"id": room.owner.pk, "username": room.owner.username},
        "participants": participants,
        "closed": False,
        "mode": "auto",
        "media": "mesh",
    }


@database_sync_to_async
def close_room(number: str) -> None:
    room = Room.objects.get(number=number, closed_at__isnull=True)
    services.room_close(room_id=room.pk, reason="admin")


# --- Handshake -----------------------------------------------------------------------


async def test_anonymous_handshake_is_closed_with_4401(connect):
    """A socket without a logged-in session is accepted and closed at once with 4401."""
    peer = await connect(None)
    assert await peer.expect_close() == 4401


async def test_foreign_origin_is_refused(connect, alice):
    """A handshake whose Origin is not an allowed host is refused before it is accepted."""
    peer = await connect(alice, origin="https://evil.example", accept=False)
    assert peer.connected is False


async def test_logged_in_socket_is_accepted_and_answers_ping(connect, alice):
    """A logged-in socket from an allowed origin is accepted; ping gets pong echoing the id."""
    peer = await connect(alice)
    assert await peer.request({"type": "ping", "id": "p-1"}) == {"type": "pong", "re": "p-1"}
    assert await peer.request({"type": "ping"}) == {"type": "pong"}


# --- create / join -------------------------------------------------------------------


@pytest.mark.postgres
async def test_create_answers_joined_with_created_and_the_room(connect, alice):
    """create makes a room with defaults and joins it: joined, created true, no peers, re echoed."""
    peer = await connect(alice)
    answer = await peer.request({"type": "create", "id": "c1"})
    room = await db_room(answer["room"]["number"])
    assert NUMBER_RE.fullmatch(room.number)
    assert set(answer) == {
        "type",
        "room",
        "peerId",
        "peers",
        "created",
        "resumeToken",
        "history",
        "qualityLimits",
        "re",
        "ice",
    }
    assert answer["type"] == "joined"
    assert answer["re"] == "c1"
    # No STUN or TURN configured here (tests/rooms/test_turn.py hands them out).
    assert answer["ice"] == {"iceServers": [], "iceTransportPolicy": "all", "expiresAt": None}
    assert answer["created"] is True
    assert answer["peers"] == []
    assert answer["room"] == {
        "number": room.number,
        "name": "alice's room",
        "capacity": 6,
        "locked": False,
        "hasPin": False,
        "owner": {"id": alice.pk, "username": "alice"},
        "participants": 1,
        "closed": False,
        "mode": "auto",
        "media": "mesh",
    }
    assert isinstance(answer["resumeToken"], str) and answer["resumeToken"]
    participant = await db_participant(answer["peerId"])
    assert (participant.user_id, participant.room_id, participant.left_at) == (
        alice.pk,
        room.pk,
        None,
    )


@pytest.mark.postgres
async def test_create_with_name_capacity_and_pin(connect, alice):
    """create takes name, capacity and pin; the PIN is reported as hasPin, never echoed."""
    peer = await connect(alice)
    answer = await peer.create(name="  Standup  ", capacity=2, pin="123456")
    assert answer["room"]["name"] == "Standup"
    assert answer["room"]["capacity"] == 2
    assert answer["room"]["hasPin"] is True
    assert "123456" not in orjson.dumps(answer).decode()


@pytest.mark.postgres
async def test_room_numbers_are_nine_digits_without_leading_zero(connect, alice):
    """Every created room number is 9 digits, first not zero, and two open rooms differ."""
    numbers = set()
    for _ in range(5):
        peer = await connect(alice)
        answer = await peer.create()
        assert NUMBER_RE.fullmatch(answer["room"]["number"]), answer["room"]["number"]
        numbers.add(answer["room"]["number"])
        await peer.close()
    assert len(numbers) == 5


@pytest.mark.postgres
async def test_create_draws_again_when_the_number_is_taken(connect, alice, bob, monkeypatch):
    """A drawn number that an open room holds is passed over: no trace in that room."""
    a = await connect(alice)
    await a.create()
    drawn = [a.room["number"], a.room["number"], "987654321"]
    monkeypatch.setattr(services, "room_numbers", lambda: iter(drawn))
    b = await connect(bob)
    answer = await b.create()
    assert answer["room"]["number"] == "987654321"
    assert answer["created"] is True and answer["peers"] == []
    assert answer["room"]["owner"] == {"id": bob.pk, "username": "bob"}
    await a.nothing_before_pong()
    assert await database_sync_to_async(
        lambda: set(
            Participant.objects.filter(left_at__isnull=True).values_list(
                "room__number", "user__username"
            )
        )
    )() == {("987654321", "bob"), (a.room["number"], "alice")}
    # b hears its own room only, a its own.
    c = await connect(alice)
    await c.join("987654321")
    assert (await b.recv())["type"] == "peer-joined"
    await a.nothing_before_pong()


@pytest.mark.postgres
async def test_create_gives_up_with_server_busy_when_no_number_is_free(connect, alice, bob):
    """Every draw taken (a full number space): server-busy, and the socket stays usable."""
    a = await connect(alice)
    await a.create()
    b = await connect(bob)
    taken = a.room["number"]
    with pytest.MonkeyPatch.context() as patch:
        # Every draw lands on the taken number: the real drawing gives up.
        patch.setattr(secrets, "randbelow", lambda _: int(taken) - 100_000_000)
        answer = await b.request({"type": "create", "id": "c9"})
    assert answer == err("server-busy", "Could not find a free room number; try again.", re="c9")
    assert (await b.create())["created"] is True
    await a.nothing_before_pong()


@pytest.mark.postgres
async def test_join_answers_joined_and_others_get_peer_joined(connect, alice, bob):
    """join: the newcomer gets joined (created false, the peer present); the owner, peer-joined."""
    a = await connect(alice)
    await a.create()
    b = await connect(bob)
    answer = await b.request({"type": "join", "room": a.room["number"], "id": "j1"})
    assert answer["type"] == "joined"
    assert answer["re"] == "j1"
    assert answer["created"] is False
    assert answer["room"]["participants"] == 2
    assert answer["peers"] == [await peer_obj(a.peer_id)]
    b.peer_id = answer["peerId"]
    assert answer["peerId"] != a.peer_id
    assert await a.recv() == {"type": "peer-joined", "peer": await peer_obj(b.peer_id)}
    await a.nothing_before_pong()
    await b.nothing_before_pong()


@pytest.mark.postgres
async def test_third_peer_gets_both_present_peers_and_no_peer_joined_for_itself(
    connect, room_of, alice, bob, carol
):
    """A third joiner's joined.peers lists the two present (oldest first), exact peer objects."""
    a, b = await room_of(alice, bob)
    c = await connect(carol)
    answer = await c.join(a.room["number"])
    assert answer["peers"] == [await peer_obj(a.peer_id), await peer_obj(b.peer_id)]
    assert answer["peers"][0]["user"] == {
        "id": alice.pk,
        "username": "alice",
        "displayName": "Alice Liddell",
    }
    expected = {"type": "peer-joined", "peer": await peer_obj(c.peer_id)}
    assert expected["peer"]["user"] == {"id": carol.pk, "username": "carol", "displayName": "Carol"}
    assert await a.recv() == expected
    assert await b.recv() == expected
    await c.nothing_before_pong()


@pytest.mark.postgres
@pytest.mark.parametrize("spelling", ["{} {} {}", "{}-{}-{}", " {}  {} - {} "])
async def test_join_accepts_the_number_as_people_type_it(connect, alice, bob, spelling):
    """join accepts "482 913 075" and "482-913-075" forms of the room number."""
    a = await connect(alice)
    await a.create()
    number = a.room["number"]
    b = await connect(bob)
    answer = await b.join(spelling.format(number[:3], number[3:6], number[6:]))
    assert answer["type"] == "joined", answer
    assert answer["room"]["number"] == number


# --- Forwarding ------------------------------------------------------------------------


@pytest.mark.postgres
async def test_offer_and_answer_reach_the_one_recipient_with_from(
    connect, room_of, alice, bob, carol
):
    """offer/answer go to the named peer only, with from, without the sender's id or extra keys."""
    a, b, c = await room_of(alice, bob, carol)
    await b.send({"type": "offer", "to": a.peer_id, "sdp": SDP, "id": "o1", "extra": "x"})
    assert await a.recv() == {"type": "offer", "to": a.peer_id, "sdp": SDP, "from": b.peer_id}
    await a.send({"type": "answer", "to": b.peer_id, "sdp": SDP + "a=x\r\n", "id": "a1"})
    assert await b.recv() == {
        "type": "answer",
        "to": b.peer_id,
        "sdp": SDP + "a=x\r\n",
        "from": a.peer_id,
    }
    # The senders' barriers first: their handlers are done, so c's proves c got nothing.
    await a.nothing_before_pong()
    await b.nothing_before_pong()
    await c.nothing_before_pong()


@pytest.mark.postgres
async def test_candidate_is_forwarded_with_only_rtcicecandidateinit_fields(
    connect, room_of, alice, bob
):
    """candidate objects reach the recipient keeping only RTCIceCandidateInit fields."""
    a, b = await room_of(alice, bob)
    await a.send(
        {
            "type": "candidate",
            "to": b.peer_id,
            "candidate": {**CANDIDATE, "evil": "<script>", "relayProtocol": "udp"},
            "id": "k1",
        }
    )
    assert await b.recv() == {
        "type": "candidate",
        "to": b.peer_id,
        "candidate": CANDIDATE,
        "from": a.peer_id,
    }
    await a.send({"type": "candidate", "to": b.peer_id, "candidate": {"candidate": ""}})
    assert await b.recv() == {
        "type": "candidate",
        "to": b.peer_id,
        "candidate": {"candidate": ""},
        "from": a.peer_id,
    }
    await a.nothing_before_pong()


@pytest.mark.postgres
async def test_null_candidate_is_forwarded_as_end_of_candidates(connect, room_of, alice, bob):
    """candidate null (end-of-candidates) is forwarded as null."""
    a, b = await room_of(alice, bob)
    await b.send({"type": "candidate", "to": a.peer_id, "candidate": None})
    assert await a.recv() == {
        "type": "candidate",
        "to": a.peer_id,
        "candidate": None,
        "from": b.peer_id,
    }


@pytest.mark.postgres
async def test_offer_at_exactly_the_size_limit_is_forwarded(connect, room_of, alice, bob):
    """A frame of exactly SIGNALING_MAX_MESSAGE_BYTES bytes is accepted and forwarded."""
    a, b = await room_of(alice, bob)
    head = orjson.dumps({"type": "offer", "to": b.peer_id, "sdp": ""}).decode()
    sdp = "x" * (MAX_BYTES - len(head))
    frame = orjson.dumps({"type": "offer", "to": b.peer_id, "sdp": sdp}).decode()
    assert len(frame.encode()) == MAX_BYTES
    await a.send(frame)
    got = await b.recv()
    assert got["type"] == "offer" and got["sdp"] == sdp and got["from"] == a.peer_id


# --- media / chat ------------------------------------------------------------------------


@pytest.mark.postgres
async def test_media_is_broadcast_as_peer_updated_to_the_others_only(
    connect, room_of, alice, bob, carol
):
    """media stores the state and the other peers (not the sender) get peer-updated."""
    a, b, c = await room_of(alice, bob, carol)
    await b.send({"type": "media", "audio": False, "screen": True, "id": "m1"})
    expected = {
        "type": "peer-updated",
        "peer": await peer_obj(b.peer_id, audio=False, video=True, screen=True),
    }
    assert await a.recv() == expected
    assert await c.recv() == expected
    await b.nothing_before_pong()
    participant = await db_participant(b.peer_id)
    assert (participant.audio, participant.video, participant.screen) == (False, True, True)


@pytest.mark.postgres
async def test_newcomer_gets_the_chat_history_in_joined(connect, room_of, alice, bob, carol):
    """joined.history (extension) holds the room's chat so far, oldest first, as chat messages."""
    a, b = await room_of(alice, bob)
    for text in ("first", "second"):
        await a.send({"type": "chat", "text": text})
        await a.recv_type("chat")
        await b.recv_type("chat")
    c = await connect(carol)
    joined = await c.join(a.room["number"])
    saved = await database_sync_to_async(
        lambda: dict(ChatMessage.objects.values_list("text", "created_at"))
    )()
    alice_user = {"id": alice.pk, "username": "alice", "displayName": "Alice Liddell"}
    assert joined["history"] == [
        {
            "type": "chat",
            "from": a.peer_id,
            "user": alice_user,
            "text": text,
            "ts": iso(saved[text]),
        }
        for text in ("first", "second")
    ]


@pytest.mark.postgres
async def test_chat_reaches_everyone_including_the_sender_and_is_saved(
    connect, room_of, alice, bob, carol
):
    """chat reaches every peer of the room, sender included, with from/user/text/ts; it is saved."""
    a, b = await room_of(alice, bob)
    elsewhere = await connect(carol)
    await elsewhere.create()
    await a.send({"type": "chat", "text": "héllo ✓", "id": "t1"})
    line_a = await a.recv()
    line_b = await b.recv()
    assert line_a == line_b
    saved = await database_sync_to_async(
        lambda: list(ChatMessage.objects.values("room__number", "user_id", "peer_id", "text"))
    )()
    assert saved == [
        {
            "room__number": a.room["number"],
            "user_id": alice.pk,
            "peer_id": a.peer_id,
            "text": "héllo ✓",
        }
    ]
    message = await database_sync_to_async(ChatMessage.objects.get)()
    assert line_a == {
        "type": "chat",
        "from": a.peer_id,
        "user": user_obj(alice),
        "text": "héllo ✓",
        "ts": message.created_at.isoformat().replace("+00:00", "Z"),
    }
    await a.nothing_before_pong()  # the chat's handler is done: it published all it would
    await elsewhere.nothing_before_pong()


# --- leave / disconnect ----------------------------------------------------------------------


@pytest.mark.postgres
async def test_leave_announces_left_and_the_socket_can_join_another_room(
    connect, room_of, alice, bob, carol
):
    """leave: the others get peer-left (left), the socket stays open and can join another room."""
    a, b = await room_of(alice, bob)
    c = await connect(carol)
    await c.create()
    left_peer = b.peer_id
    await b.send({"type": "leave", "id": "l1"})
    assert await a.recv() == {"type": "peer-left", "peerId": left_peer, "reason": "left"}
    await b.nothing_before_pong()
    participant = await db_participant(left_peer)
    assert participant.left_reason == "left" and participant.left_at is not None
    assert await b.request({"type": "ping"}) == {"type": "pong"}
    answer = await b.join(c.room["number"])
    assert answer["type"] == "joined"
    assert answer["peers"] == [await peer_obj(c.peer_id)]
    assert (await c.recv_type("peer-joined"))["peer"]["peerId"] == b.peer_id
    await a.nothing_before_pong()


@pytest.mark.postgres
async def test_disconnect_announces_peer_left_disconnected(connect, room_of, alice, bob):
    """A socket that drops gets peer-left with reason disconnected, recorded in the history."""
    a, b = await room_of(alice, bob)
    gone = b.peer_id
    await b.close()
    assert await a.recv() == {"type": "peer-left", "peerId": gone, "reason": "disconnected"}
    assert (await db_participant(gone)).left_reason == "disconnected"


@pytest.mark.postgres
async def test_offer_to_a_peer_that_left_is_unknown_peer(connect, room_of, alice, bob):
    """Once a peer has left, a to naming it is refused with unknown-peer."""
    a, b = await room_of(alice, bob)
    gone = b.peer_id
    await b.send({"type": "leave"})
    await a.recv_type("peer-left")
    assert await a.request({"type": "offer", "to": gone, "sdp": SDP, "id": "o"}) == err(
        "unknown-peer", "no such peer in this room", "o"
    )
    await b.nothing_before_pong()


# --- kick / lock / unlock / close ------------------------------------------------------------


@pytest.mark.postgres
async def test_owner_kicks_a_peer(connect, room_of, alice, bob, carol):
    """kick by the owner: target gets kicked then close 4003; the others get peer-left (kicked)."""
    a, b, c = await room_of(alice, bob, carol)
    target = b.peer_id
    await a.send({"type": "kick", "peer": target, "id": "k"})
    assert await b.recv() == {"type": "kicked"}
    assert await b.expect_close() == 4003
    expected = {"type": "peer-left", "peerId": target, "reason": "kicked"}
    assert await a.recv() == expected
    assert await c.recv() == expected
    assert (await db_participant(target)).left_reason == "kicked"
    await a.nothing_before_pong()
    await c.nothing_before_pong()


@pytest.mark.postgres
async def test_kick_by_non_owner_is_forbidden(connect, room_of, alice, bob, carol):
    """kick by someone who is not the owner nor staff: forbidden, nobody leaves."""
    a, b, c = await room_of(alice, bob, carol)
    assert await b.request({"type": "kick", "peer": c.peer_id, "id": "k"}) == err(
        "forbidden", "Only the room's owner can remove people.", "k"
    )
    assert await b.request({"type": "kick", "peer": a.peer_id}) == err(
        "forbidden", "Only the room's owner can remove people."
    )
    await a.nothing_before_pong()
    await c.nothing_before_pong()
    assert (await db_participant(c.peer_id)).left_at is None


@pytest.mark.postgres
async def test_staff_may_kick_in_a_room_they_do_not_own(connect, room_of, alice, bob, staff):
    """A staff user in someone else's room may kick."""
    a, b, s = await room_of(alice, bob, staff)
    target = b.peer_id
    await s.send({"type": "kick", "peer": target})
    assert await b.recv() == {"type": "kicked"}
    assert await b.expect_close() == 4003
    expected = {"type": "peer-left", "peerId": target, "reason": "kicked"}
    assert await a.recv() == expected
    assert await s.recv() == expected


@pytest.mark.postgres
async def test_kicking_yourself_is_forbidden(connect, room_of, alice, bob):
    """kick naming your own peer id is forbidden (docs/protocol.md: "kicking yourself")."""
    a, b = await room_of(alice, bob)
    assert await a.request({"type": "kick", "peer": a.peer_id, "id": "me"}) == err(
        "forbidden", "Use leave to leave the room yourself.", "me"
    )
    await b.nothing_before_pong()


@pytest.mark.postgres
async def test_lock_and_unlock_announce_room_updated_and_gate_joins(
    connect, room_of, alice, bob, carol
):
    """lock: everyone gets room-updated (locked), new joins get room-locked; unlock reopens."""
    a, b = await room_of(alice, bob)
    room = await db_room(a.room["number"])
    await a.send({"type": "lock", "id": "L"})
    locked = {"type": "room-updated", "room": room_obj(room, participants=2, locked=True)}
    assert await a.recv() == locked
    assert await b.recv() == locked
    c = await connect(carol)
    assert await c.join(room.number, id="j") == err(
        "room-locked", "This room is locked; nobody new can join.", "j"
    )
    await a.send({"type": "unlock"})
    unlocked = {"type": "room-updated", "room": room_obj(room, participants=2, locked=False)}
    assert await a.recv() == unlocked
    assert await b.recv() == unlocked
    assert (await c.join(room.number))["type"] == "joined"


@pytest.mark.postgres
async def test_owner_may_join_their_locked_room(connect, room_of, alice, bob):
    """A locked room still admits its owner (from a second tab)."""
    a, b = await room_of(alice, bob)
    await a.send({"type": "lock"})
    await a.recv_type("room-updated")
    await b.recv_type("room-updated")
    second_tab = await connect(alice)
    answer = await second_tab.join(a.room["number"])
    assert answer["type"] == "joined" and answer["room"]["locked"] is True


@pytest.mark.postgres
async def test_lock_unlock_close_by_non_owner_are_forbidden(connect, room_of, alice, bob):
    """lock, unlock and close by a peer who is not the owner: forbidden, nothing changes."""
    a, b = await room_of(alice, bob)
    for kind in ("lock", "unlock", "close"):
        assert await b.request({"type": kind, "id": kind}) == err(
            "forbidden", "only the room's owner can do that", kind
        )
    await a.nothing_before_pong()
    room = await db_room(a.room["number"])
    assert (room.locked, room.closed_at) == (False, None)


@pytest.mark.postgres
async def test_owner_closes_the_room(connect, room_of, alice, bob):
    """close (extension) by the owner: everyone gets room-closed (owner) then close 4000."""
    a, b = await room_of(alice, bob)
    number = a.room["number"]
    peers = (a.peer_id, b.peer_id)
    await a.send({"type": "close"})
    for peer in (a, b):
        assert await peer.recv() == {"type": "room-closed", "reason": "owner"}
        assert await peer.expect_close() == 4000
    room = await database_sync_to_async(Room.objects.get)(number=number)
    assert room.closed_at is not None
    for peer_id in peers:
        assert (await db_participant(peer_id)).left_reason == "closed"


# --- Errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a message must be a JSON object"),
        ('"ping"', "a message must be a JSON object"),
        ("null", "a message must be a JSON object"),
        ("{}", "unknown or missing 'type'"),
        ('{"type": 7}', "unknown or missing 'type'"),
        ('{"type": "signal.forward"}', "unknown or missing 'type'"),
        ('{"type": "ping", "id": 5}', "'id' must be a string of at most 64 characters"),
        (
            '{"type": "ping", "id": "' + "x" * 65 + '"}',
            "'id' must be a string of at most 64 characters",
        ),
    ],
)
async def test_malformed_frames_are_bad_message_and_keep_the_socket(connect, alice, frame, message):
    """Invalid JSON, non-objects, unknown type and a bad id answer bad-message; the socket stays."""
    peer = await connect(alice)
    assert await peer.request(frame) == err("bad-message", message)
    assert await peer.request({"type": "ping"}) == {"type": "pong"}


async def test_empty_text_frame_is_bad_message(connect, alice):
    """An empty text frame answers bad-message (not valid JSON)."""
    peer = await connect(alice)
    await peer.ws.send_input({"type": "websocket.receive", "text": ""})
    assert await peer.recv() == err("bad-message", "not valid JSON")


async def test_unknown_type_echoes_the_id(connect, alice):
    """An unknown type with a valid id gets bad-message with re."""
    peer = await connect(alice)
    assert await peer.request({"type": "dance", "id": "d1"}) == err(
        "bad-message", "unknown or missing 'type'", "d1"
    )


async def test_binary_frame_is_bad_message(connect, alice):
    """A binary frame answers bad-message."""
    peer = await connect(alice)
    await peer.send(b'{"type": "ping"}')
    assert await peer.recv() == err("bad-message", "frames must be text (JSON), not binary")


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"type": "create", "capacity": 201}, "'capacity' must be between 2 and 200"),
        ({"type": "create", "capacity": 1}, "'capacity' must be between 2 and 200"),
        ({"type": "create", "capacity": "6"}, "'capacity' must be an integer"),
        ({"type": "create", "capacity": True}, "'capacity' must be an integer"),
        ({"type": "create", "pin": "12a4"}, "'pin' must be 4 to 12 digits"),
        ({"type": "create", "pin": "123"}, "'pin' must be 4 to 12 digits"),
        ({"type": "create", "pin": 1234}, "'pin' must be 4 to 12 digits"),
        ({"type": "create", "name": 5}, "'name' must be a string"),
        ({"type": "create", "name": "n" * 101}, "'name' is longer than 100 characters"),
        ({"type": "join"}, "'room' is required"),
        ({"type": "join", "room": 482913075}, "'room' must be a string"),
        ({"type": "join", "room": "abc"}, "'room' must be a room number (9 digits)"),
        ({"type": "join", "room": "123456789", "pin": 1234}, "'pin' must be a string"),
        ({"type": "join", "room": "123456789", "resume": 1}, "'resume' must be a string"),
        ({"type": "offer", "to": "p"}, "'sdp' must be a string"),
        ({"type": "offer", "sdp": SDP}, "'to' is required"),
        ({"type": "answer", "to": 3, "sdp": SDP}, "'to' must be a string"),
        ({"type": "answer", "to": "p", "sdp": None}, "'sdp' must be a string"),
        (
            {"type": "candidate", "to": "p"},
            "'candidate' is required (null for end-of-candidates)",
        ),
        (
            {"type": "candidate", "to": "p", "candidate": "candidate:1"},
            "'candidate' must be an RTCIceCandidateInit object or null",
        ),
        (
            {"type": "candidate", "to": "p", "candidate": {"sdpMid": "0"}},
            "'candidate.candidate' must be a string",
        ),
        (
            {"type": "candidate", "to": "p", "candidate": {"candidate": "c", "sdpMLineIndex": "0"}},
            "'candidate.sdpMLineIndex' has the wrong type",
        ),
        ({"type": "media", "audio": "yes"}, "'audio' must be true or false"),
        ({"type": "media", "screen": 1}, "'screen' must be true or false"),
        ({"type": "chat"}, "'text' is required"),
        ({"type": "chat", "text": ["hi"]}, "'text' must be a string"),
        ({"type": "chat", "text": "   "}, "'text' must not be empty"),
        ({"type": "chat", "text": "x" * 2001}, "'text' is longer than 2000 characters"),
        ({"type": "kick"}, "'peer' is required"),
        ({"type": "kick", "peer": 5}, "'peer' must be a string"),
    ],
)
async def test_missing_or_wrong_typed_fields_are_bad_message(connect, alice, message, text):
    """Every missing or wrong-typed field answers bad-message naming it, with re."""
    peer = await connect(alice)
    assert await peer.request({**message, "id": "v"}) == err("bad-message", text, "v")
    assert await peer.request({"type": "ping"}) == {"type": "pong"}


async def test_frame_over_the_limit_is_too_large(connect, alice):
    """A frame one byte over 64 KiB answers too-large; the socket stays open."""
    peer = await connect(alice)
    head = orjson.dumps({"type": "ping", "pad": ""}).decode()
    frame = orjson.dumps({"type": "ping", "pad": "x" * (MAX_BYTES + 1 - len(head))}).decode()
    assert len(frame.encode()) == MAX_BYTES + 1
    assert await peer.request(frame) == err("too-large", "a message may be at most 65536 bytes")
    assert await peer.request({"type": "ping"}) == {"type": "pong"}


async def test_size_limit_counts_utf8_bytes_not_characters(connect, alice):
    """A frame under 64 Ki characters but over 64 KiB in UTF-8 is too-large."""
    peer = await connect(alice)
    frame = orjson.dumps({"type": "ping", "pad": "é" * 33_000}).decode()
    assert len(frame) < MAX_BYTES < len(frame.encode())
    assert await peer.request(frame) == err("too-large", "a message may be at most 65536 bytes")


async def test_size_limit_follows_the_setting(connect, alice, settings):
    """SIGNALING_MAX_MESSAGE_BYTES sets the limit a socket is opened with."""
    settings.SIGNALING_MAX_MESSAGE_BYTES = 100
    peer = await connect(alice)
    frame = orjson.dumps({"type": "ping", "pad": "x" * 100}).decode()
    assert await peer.request(frame) == err("too-large", "a message may be at most 100 bytes")


async def test_twenty_consecutive_invalid_frames_close_with_4400(connect, alice):
    """20 invalid frames in a row close the socket with 4400, after the 20th error."""
    peer = await connect(alice)
    for _ in range(19):
        assert (await peer.request("nope"))["code"] == "bad-message"
    assert await peer.request({"type": "ping"}) == {"type": "pong"}  # resets the count
    for _ in range(19):
        assert (await peer.request("nope"))["code"] == "bad-message"
    await peer.send("x" * (MAX_BYTES + 1))
    assert (await peer.recv())["code"] == "too-large"
    assert await peer.expect_close() == 4400


@pytest.mark.postgres
async def test_room_not_found(connect, alice):
    """join of a number no room has answers room-not-found, also for impossible numbers."""
    peer = await connect(alice)
    for number in ("999999999", "012345678", "12345", "1234567890"):
        exists = await database_sync_to_async(Room.objects.filter(number=number).exists)()
        assert not exists
        assert await peer.join(number, id="n") == err(
            "room-not-found", "There is no room with that number.", "n"
        )


@pytest.mark.postgres
async def test_room_closed(connect, make_room, alice, bob):
    """join of a room closed by room_close answers room-closed."""
    room = await database_sync_to_async(make_room)(alice)
    await close_room(room.number)
    peer = await connect(bob)
    assert await peer.join(room.number, id="x") == err(
        "room-closed", "This room has been closed.", "x"
    )


@pytest.mark.postgres
async def test_events_of_an_earlier_room_with_the_same_number_are_dropped(
    connect, make_room, alice, bob
):
    """Rooms that share a number over time share a group; only the current room's events pass."""
    old = await database_sync_to_async(make_room)(alice)
    await close_room(old.number)
    new = await database_sync_to_async(make_room)(alice)
    await database_sync_to_async(Room.objects.filter(pk=new.pk).update)(number=old.number)
    peer = await connect(bob)
    assert (await peer.join(old.number))["room"]["number"] == old.number
    group = Room.group_name_for(old.number)
    await events.publish([events.broadcast(room_id=old.pk, group=group, message={"type": "chat"})])
    line = {"type": "chat", "from": "x", "text": "hi"}
    await events.publish([events.broadcast(room_id=new.pk, group=group, message=line)])
    # The old room's line was published first: had it passed, it would come first.
    assert await peer.recv() == line


@pytest.mark.postgres
async def test_room_full(connect, room_of, alice, bob, carol):
    """The third joiner of a room of capacity 2 gets room-full, and nobody hears of it."""
    a, b = await room_of(alice, bob, capacity=2)
    c = await connect(carol)
    assert await c.join(a.room["number"], id="f") == err(
        "room-full", "This room is full (2 people).", "f"
    )
    await a.nothing_before_pong()
    await b.nothing_before_pong()
    count = await database_sync_to_async(Participant.objects.filter(user=carol).count)()
    assert count == 0


@pytest.mark.postgres
async def test_bad_pin_and_right_pin(connect, alice, bob):
    """A room with a PIN refuses a missing or wrong PIN with bad-pin and admits the right one."""
    a = await connect(alice)
    await a.create(pin="2468")
    number = a.room["number"]
    b = await connect(bob)
    assert await b.join(number, id="1") == err("bad-pin", "This room needs a PIN.", "1")
    assert await b.join(number, pin="", id="2") == err("bad-pin", "This room needs a PIN.", "2")
    assert await b.join(number, pin="1357", id="3") == err("bad-pin", "That PIN is not right.", "3")
    await a.nothing_before_pong()
    answer = await b.join(number, pin="2468")
    assert answer["type"] == "joined" and answer["room"]["hasPin"] is True


@pytest.mark.parametrize(
    "message",
    [
        {"type": "offer", "to": "p", "sdp": SDP},
        {"type": "answer", "to": "p", "sdp": SDP},
        {"type": "candidate", "to": "p", "candidate": None},
        {"type": "media", "audio": False},
        {"type": "chat", "text": "hi"},
        {"type": "leave"},
        {"type": "kick", "peer": "p"},
        {"type": "lock"},
        {"type": "unlock"},
        {"type": "close"},
    ],
)
async def test_in_room_types_before_joining_are_not_in_room(connect, alice, message):
    """Each in-room message type sent before joining answers not-in-room with re."""
    peer = await connect(alice)
    assert await peer.request({**message, "id": "r"}) == err(
        "not-in-room", "join a room first", "r"
    )


@pytest.mark.postgres
async def test_create_or_join_while_in_a_room_is_already_in_room(connect, alice, bob):
    """create or join while in a room answers already-in-room; the membership is unchanged."""
    b = await connect(bob)
    await b.create()
    a = await connect(alice)
    await a.create()
    assert await a.request({"type": "create", "id": "c"}) == err(
        "already-in-room", "leave this room before joining another", "c"
    )
    assert await a.join(b.room["number"], id="j") == err(
        "already-in-room", "leave this room before joining another", "j"
    )
    await b.nothing_before_pong()
    rooms = await database_sync_to_async(Room.objects.filter(owner=alice).count)()
    assert rooms == 1


@pytest.mark.postgres
async def test_unknown_peer(connect, room_of, alice, bob):
    """A to or peer naming no peer of the room answers unknown-peer."""
    a, b = await room_of(alice, bob)
    assert await a.request({"type": "offer", "to": "nobody", "sdp": SDP, "id": "1"}) == err(
        "unknown-peer", "no such peer in this room", "1"
    )
    assert await a.request({"type": "candidate", "to": "nobody", "candidate": None}) == err(
        "unknown-peer", "no such peer in this room"
    )
    assert await a.request({"type": "kick", "peer": "nobody", "id": "2"}) == err(
        "unknown-peer", "no such peer in this room", "2"
    )
    await b.nothing_before_pong()


@pytest.mark.postgres
async def test_to_naming_a_peer_in_another_room_is_refused_and_never_delivered(
    connect, room_of, alice, bob, carol, dave
):
    """Cross-room isolation: a to naming a peer of another room is unknown-peer, nothing arrives."""
    a, b = await room_of(alice, bob)
    c, d = await room_of(carol, dave)
    for kind in ("offer", "answer"):
        assert await a.request({"type": kind, "to": c.peer_id, "sdp": SDP}) == err(
            "unknown-peer", "no such peer in this room"
        )
    assert await a.request({"type": "candidate", "to": c.peer_id, "candidate": CANDIDATE}) == err(
        "unknown-peer", "no such peer in this room"
    )
    assert await a.request({"type": "kick", "peer": c.peer_id}) == err(
        "unknown-peer", "no such peer in this room"
    )
    await a.send({"type": "chat", "text": "only for my room"})
    assert (await a.recv())["text"] == "only for my room"
    assert (await b.recv())["text"] == "only for my room"
    await a.nothing_before_pong()  # every one of a's handlers is done
    await c.nothing_before_pong()
    await d.nothing_before_pong()
    assert (await db_participant(c.peer_id)).left_at is None


async def test_error_without_id_has_no_re(connect, alice):
    """An error for a message without id carries no re key."""
    peer = await connect(alice)
    answer = await peer.request({"type": "chat", "text": "hi"})
    assert answer == {"type": "error", "code": "not-in-room", "message": "join a room first"}
    assert "re" not in answer


@pytest.mark.postgres
async def test_server_fault_answers_server_busy_with_re_and_keeps_the_socket(
    connect, room_of, alice, bob, caplog
):
    """A fault of the server (the room row deleted under live peers) answers server-busy with re."""
    a, b = await room_of(alice, bob)
    await database_sync_to_async(Room.objects.filter(number=a.room["number"]).delete)()
    assert await a.request({"type": "chat", "text": "still there?", "id": "s"}) == err(
        "server-busy", "the server could not do that; try again", "s"
    )
    assert "failed to handle a message" in caplog.text
    assert await a.request({"type": "ping"}) == {"type": "pong"}
    await b.nothing_before_pong()


@pytest.mark.postgres
async def test_nul_characters_in_stored_text_are_bad_messages(room_of, alice, bob):
    """Chat text and room names with NUL are refused as bad-message, never a database fault."""
    a, _ = await room_of(alice, bob)
    assert await a.request({"type": "chat", "text": "a\x00b", "id": "n"}) == {
        "type": "error",
        "code": "bad-message",
        "message": "'text' must not contain NUL characters",
        "re": "n",
    }
    await a.send({"type": "leave"})
    answer = await a.request({"type": "create", "name": "x\x00", "id": "c"})
    assert (answer["code"], answer["re"]) == ("bad-message", "c")


# --- Public safety: seats, chat rate, socket cap, revocation ------------------------------


@pytest.mark.postgres
async def test_the_same_account_joining_again_takes_over_its_seat(connect, room_of, alice, bob):
    """A second socket of one account takes the seat: the first gets 4409, the room sees it move."""
    a, b = await room_of(alice, bob)
    phone = await connect(bob)
    answer = await phone.join(a.room["number"])
    assert answer["peers"] == [await peer_obj(a.peer_id)]
    assert await b.expect_close() == 4409
    assert await a.recv() == {"type": "peer-left", "peerId": b.peer_id, "reason": "left"}
    assert (await a.recv_type("peer-joined"))["peer"]["peerId"] == phone.peer_id
    assert (await db_participant(b.peer_id)).left_reason == "replaced"


async def test_chat_past_its_burst_is_rate_limited(connect, room_of, alice, bob, settings):
    """CHAT_BURST lines pass at once; the next is refused with rate-limited, echoing its id."""
    settings.CHAT_RATE, settings.CHAT_BURST = 1, 3
    a, _ = await room_of(alice, bob)
    for n in range(4):
        await a.send({"type": "chat", "text": f"line {n}", "id": f"c{n}"})
    texts = []
    while len(texts) < 3:
        message = await a.recv()
        if message["type"] == "chat":
            texts.append(message["text"])
        else:
            assert message == err(
                "rate-limited", "You are sending chat too fast; slow down.", re="c3"
            )
    assert texts == ["line 0", "line 1", "line 2"]


async def test_sockets_past_the_per_account_cap_are_closed_4429(connect, alice, bob, settings):
    """The (SOCKETS_PER_USER + 1)th socket of one account is closed 4429; others are not."""
    settings.SOCKETS_PER_USER = 2
    first, _ = await connect(alice), await connect(alice)
    third = await connect(alice)
    assert await third.expect_close() == 4429
    assert await (await connect(bob)).request({"type": "ping", "id": "b"}) == {
        "type": "pong",
        "re": "b",
    }
    await first.close()
    fourth = await connect(alice)
    assert await fourth.request({"type": "ping", "id": "4"}) == {"type": "pong", "re": "4"}


async def test_logout_closes_the_sessions_socket_with_4401(connect, room_of, alice, bob):
    """Logging out over HTTP closes the sockets of that session (4401); the room sees it leave."""
    from django.test import Client

    from config.asgi import application
    from tests.conftest import Peer
    from tests.support.transport import WebsocketCommunicator

    a, b = await room_of(alice, bob)
    client = Client()
    await database_sync_to_async(client.force_login)(bob)
    headers = [
        (b"host", b"localhost"),
        (b"origin", b"http://localhost"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    tab = Peer(WebsocketCommunicator(application, "/ws/signaling/", headers=headers))
    assert (await tab.ws.connect())[0]
    assert await tab.request({"type": "ping", "id": "t"}) == {"type": "pong", "re": "t"}
    await database_sync_to_async(client.post)("/accounts/logout/")
    assert await tab.expect_close() == 4401
    # Bob's other session (the one in the call) is untouched.
    assert await b.request({"type": "ping", "id": "b"}) == {"type": "pong", "re": "b"}
    assert await a.request({"type": "ping", "id": "a"}) == {"type": "pong", "re": "a"}
