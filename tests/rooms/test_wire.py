"""rooms/wire.py: every outgoing message built from domain objects, written out here by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from accounts.ice import IceConfig
from rooms import wire
from rooms.models import ChatMessage, Participant, Room

pytestmark = pytest.mark.django_db

JOINED_AT = datetime(2026, 11, 22, 9, 30, 5, 123456, tzinfo=UTC)


@pytest.fixture
def room(alice):
    return Room.objects.create(owner=alice, name="Board", number="482913075", capacity=4)


@pytest.fixture
def seat(room, bob):
    participant = Participant.objects.create(
        room=room, user=bob, peer_id="peer-b", channel_name="c!b", audio=False
    )
    Participant.objects.filter(pk=participant.pk).update(joined_at=JOINED_AT)
    participant.refresh_from_db()
    return participant


def test_timestamps_are_utc_with_a_z():
    """Any aware datetime is written in UTC, ISO 8601, with Z."""
    assert wire.timestamp(JOINED_AT) == "2026-11-22T09:30:05.123456Z"
    two_hours_east = datetime(2026, 11, 22, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    assert wire.timestamp(two_hours_east) == "2026-11-22T09:00:00Z"


def test_user_room_and_peer_objects(alice, room, seat):
    """The protocol's user, room and peer objects, field by field."""
    assert wire.user(alice) == {"id": alice.pk, "username": "alice", "displayName": "Alice Liddell"}
    assert wire.room(room, participants=3) == {
        "number": "482913075",
        "name": "Board",
        "capacity": 4,
        "locked": False,
        "hasPin": False,
        "owner": {"id": alice.pk, "username": "alice"},
        "participants": 3,
        "closed": False,
        "mode": "auto",
        "media": "mesh",
    }
    assert wire.peer(seat) == {
        "peerId": "peer-b",
        "user": {"id": seat.user_id, "username": "bob", "displayName": "bob"},
        "media": {"audio": False, "video": True, "screen": False},
        "joinedAt": "2026-11-22T09:30:05.123456Z",
    }


def test_chat_line_is_the_chat_message_that_carried_it(alice, room):
    """A saved line reads exactly as the live chat message did."""
    line = ChatMessage.objects.create(room=room, user=alice, peer_id="peer-a", text="hello")
    ChatMessage.objects.filter(pk=line.pk).update(created_at=JOINED_AT)
    line.refresh_from_db()
    assert wire.chat(line) == {
        "type": "chat",
        "from": "peer-a",
        "user": {"id": alice.pk, "username": "alice", "displayName": "Alice Liddell"},
        "text": "hello",
        "ts": "2026-11-22T09:30:05.123456Z",
    }


def test_joined_with_and_without_resume(room, seat):
    """joined carries resumed/replayed only when the join carried a token, re only with an id."""
    base = {
        "type": "joined",
        "room": {"x": 1},
        "peerId": "me",
        "peers": [
            {
                "peerId": "peer-b",
                "user": {"id": seat.user_id, "username": "bob", "displayName": "bob"},
                "media": {"audio": False, "video": True, "screen": False},
                "joinedAt": "2026-11-22T09:30:05.123456Z",
            }
        ],
        "created": False,
        "resumeToken": "t",
        "history": [],
        "ice": {
            "iceServers": [{"urls": ["stun:s:3478"]}],
            "iceTransportPolicy": "all",
            "expiresAt": None,
        },
        "qualityLimits": {"minInterval": 5, "rate": 2, "burst": 24, "peers": 11},
    }
    common = {
        "room_object": {"x": 1},
        "peer_id": "me",
        "present": [seat],
        "created": False,
        "resume_token": "t",
        "history": [],
        "ice_config": IceConfig(
            servers=[{"urls": ["stun:s:3478"]}], transport_policy="all", expires=None
        ),
    }
    assert wire.joined(**common, resumed=None, re=None) == base
    assert wire.joined(**common, resumed=False, re="j1") == {**base, "resumed": False, "re": "j1"}
    assert wire.joined(**common, resumed=True, re=None) == {
        **base,
        "resumed": True,
        "replayed": False,
    }


def test_broadcasts_and_answers():
    """The small messages, exactly; finer departure reasons reach the wire as the protocol's."""
    assert wire.peer_left("p", "replaced") == {"type": "peer-left", "peerId": "p", "reason": "left"}
    assert wire.peer_left("p", "signed-out")["reason"] == "left"
    assert wire.peer_left("p", "kicked")["reason"] == "kicked"
    assert wire.error("bad-pin", "Wrong.", "x") == {
        "type": "error",
        "code": "bad-pin",
        "message": "Wrong.",
        "re": "x",
    }
    assert wire.error("bad-pin", "Wrong.") == {
        "type": "error",
        "code": "bad-pin",
        "message": "Wrong.",
    }
    assert wire.pong() == {"type": "pong"} and wire.pong("1") == {"type": "pong", "re": "1"}
    assert wire.forwarded({"type": "offer", "to": "b", "sdp": "v=0"}, "a") == {
        "type": "offer",
        "to": "b",
        "sdp": "v=0",
        "from": "a",
    }
    assert wire.room_closed("owner") == {"type": "room-closed", "reason": "owner"}
    assert wire.kicked() == {"type": "kicked"}
    assert wire.encode({"a": "é"}) == '{"a":"é"}'


def test_ice_servers_message():
    """`ice-servers` carries the RTCConfiguration part and the credential's expiry, exactly."""
    turn = {"urls": ["turn:t:3478"], "username": "1767603900:203.0.113.7", "credential": "c"}
    config = IceConfig(servers=[turn], transport_policy="relay", expires=1767603900)
    assert wire.ice_servers(config) == {
        "type": "ice-servers",
        "iceServers": [turn],
        "iceTransportPolicy": "relay",
        "expiresAt": "2026-01-05T09:05:00Z",
    }
