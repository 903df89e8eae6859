"""What the signaling socket tells operators: its log lines and metrics (signaling/observe.py)."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from tests.signaling.test_protocol import SDP

pytestmark = pytest.mark.django_db(transaction=True)

PIN = "73519"
WRONG_PIN = "99124"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def lines(caplog) -> list[dict]:
    """The structured fields of every `rooms.signaling` record so far."""
    return [r.fields for r in caplog.records if r.name == "rooms.signaling"]


@pytest.mark.postgres
async def test_join_lines_carry_room_peer_user_and_never_the_pin_or_sdp(
    connect, alice, bob, carol, caplog
):
    """A create with a PIN, a wrong PIN and an offer: one line each, exact fields, no secret."""
    caplog.set_level(logging.INFO, logger="rooms.signaling")
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    created = await a.create(pin=PIN)
    number = created["room"]["number"]
    assert (await c.join(number, pin=WRONG_PIN))["code"] == "bad-pin"
    joined = await b.join(number, pin=PIN)
    assert joined["type"] == "joined"
    await a.recv_type("peer-joined")
    await b.send({"type": "offer", "to": a.peer_id, "sdp": SDP})
    assert (await a.recv_type("offer"))["sdp"] == SDP
    await c.send({"type": "offer", "to": a.peer_id, "sdp": SDP})
    assert (await c.recv())["code"] == "not-in-room"
    await b.send({"type": "leave"})
    assert await b.request({"type": "ping"}) == {"type": "pong"}

    got = [dict(fields) for fields in lines(caplog)]
    seconds = [fields.pop("seconds") for fields in got if fields.get("outcome") == "ok"]
    assert len(seconds) == 2
    assert all(type(s) is float and 0 <= s < 10 for s in seconds)
    assert got == [
        {
            "event": "join",
            "kind": "create",
            "outcome": "ok",
            "room": number,
            "peer": a.peer_id,
            "user": alice.pk,
        },
        {
            "event": "join",
            "kind": "join",
            "outcome": "bad_pin",
            "room": number,
            "peer": None,
            "user": carol.pk,
        },
        {
            "event": "join",
            "kind": "join",
            "outcome": "ok",
            "room": number,
            "peer": b.peer_id,
            "user": bob.pk,
        },
        {"event": "refused", "reason": "not_in_room", "room": None, "peer": None, "user": carol.pk},
        {"event": "leave", "reason": "left", "room": number, "peer": b.peer_id, "user": bob.pk},
    ]
    # Nothing logged by anyone during all this holds a PIN, the SDP or a resume token.
    everything = "\n".join(
        r.getMessage() + repr(getattr(r, "fields", None)) for r in caplog.records
    )
    secrets = (PIN, WRONG_PIN, "v=0", "IN IP4", created["resumeToken"], joined["resumeToken"])
    assert [s for s in secrets if s in everything] == []


@pytest.mark.postgres
async def test_joins_forwards_and_refusals_are_counted(connect, alice, bob):
    """Counters move by exactly what the sockets did; the per-worker gauges follow the room."""
    before = {
        "ok_create": value("videorooms_joins_total", kind="create", outcome="ok"),
        "ok_join": value("videorooms_joins_total", kind="join", outcome="ok"),
        "not_found": value("videorooms_joins_total", kind="join", outcome="not_found"),
        "offer": value("videorooms_forwarded_messages_total", type="offer"),
        "candidate": value("videorooms_forwarded_messages_total", type="candidate"),
        "unknown_peer": value("videorooms_refused_frames_total", reason="unknown_peer"),
        "room_not_found": value("videorooms_refused_frames_total", reason="room_not_found"),
        "join_count": value("videorooms_join_duration_seconds_count", kind="join"),
        "left": value("videorooms_leaves_total", reason="left"),
    }
    # Gauges as deltas too: workers of earlier tests' event loops are still in the process.
    sockets, peers, rooms = (
        value(f"videorooms_{name}") for name in ("sockets_open", "peers", "rooms_occupied")
    )
    a, b = await connect(alice), await connect(bob)
    number = (await a.create())["room"]["number"]
    assert (await b.join("111111111"))["code"] == "room-not-found"
    await b.join(number)
    await a.recv_type("peer-joined")
    assert value("videorooms_sockets_open") - sockets == 2
    assert value("videorooms_peers") - peers == 2
    assert value("videorooms_rooms_occupied") - rooms == 1
    await b.send({"type": "offer", "to": a.peer_id, "sdp": SDP})
    await a.recv_type("offer")
    for _ in range(3):
        await a.send({"type": "candidate", "to": b.peer_id, "candidate": None})
        await b.recv_type("candidate")
    await a.send({"type": "offer", "to": "nobody", "sdp": SDP})
    assert (await a.recv())["code"] == "unknown-peer"
    await b.send({"type": "leave"})
    await a.recv_type("peer-left")
    assert value("videorooms_peers") - peers == 1
    assert value("videorooms_rooms_occupied") - rooms == 1

    after = {
        "ok_create": value("videorooms_joins_total", kind="create", outcome="ok"),
        "ok_join": value("videorooms_joins_total", kind="join", outcome="ok"),
        "not_found": value("videorooms_joins_total", kind="join", outcome="not_found"),
        "offer": value("videorooms_forwarded_messages_total", type="offer"),
        "candidate": value("videorooms_forwarded_messages_total", type="candidate"),
        "unknown_peer": value("videorooms_refused_frames_total", reason="unknown_peer"),
        "room_not_found": value("videorooms_refused_frames_total", reason="room_not_found"),
        "join_count": value("videorooms_join_duration_seconds_count", kind="join"),
        "left": value("videorooms_leaves_total", reason="left"),
    }
    assert {k: after[k] - before[k] for k in before} == {
        "ok_create": 1,
        "ok_join": 1,
        "not_found": 1,
        "offer": 1,
        "candidate": 3,
        "unknown_peer": 1,
        "room_not_found": 1,
        "join_count": 1,
        "left": 1,
    }


async def test_a_flood_close_is_counted_and_logged_once(connect, alice, settings, caplog):
    """A flooder's refused frames are counted; the 4429 close is the one line logged."""
    settings.SIGNALING_BURST = 2
    settings.SIGNALING_RATE = 1
    settings.SIGNALING_RATE_STRIKES = 3
    caplog.set_level(logging.INFO, logger="rooms.signaling")
    refused = value("videorooms_refused_frames_total", reason="rate_limited")
    closes = value("videorooms_rate_limit_closes_total", reason="messages")
    peer = await connect(alice)
    for _ in range(6):
        await peer.send({"type": "ping"})
    assert await peer.expect_close() == 4429
    assert value("videorooms_refused_frames_total", reason="rate_limited") - refused == 4
    assert value("videorooms_rate_limit_closes_total", reason="messages") - closes == 1
    assert lines(caplog) == [
        {
            "event": "rate_limit_close",
            "reason": "messages",
            "room": None,
            "peer": None,
            "user": alice.pk,
        }
    ]


async def test_a_drop_and_resume_kick_and_close_are_counted_and_logged(
    connect, alice, bob, carol, caplog
):
    """Dropped socket: `detach`; its resume: kind resume; kick and close: a line each, leaves."""
    caplog.set_level(logging.INFO, logger="rooms.signaling")
    resumed = value("videorooms_resumes_total", outcome="resumed")
    invalid = value("videorooms_resumes_total", outcome="invalid")
    resume_ok = value("videorooms_joins_total", kind="resume", outcome="ok")
    kicked = value("videorooms_leaves_total", reason="kicked")
    closed = value("videorooms_leaves_total", reason="closed")
    a, b = await connect(alice), await connect(bob)
    number = (await a.create())["room"]["number"]
    joined = await b.join(number)
    await a.recv_type("peer-joined")
    await b.ws.disconnect(code=1006)
    b2 = await connect(bob)
    again = await b2.join(number, resume=joined["resumeToken"])
    assert (again["peerId"], again["resumed"]) == (joined["peerId"], True)
    c = await connect(carol)
    assert (await c.join(number, resume="forged"))["resumed"] is False
    await a.recv_type("peer-joined")
    await a.send({"type": "kick", "peer": c.peer_id})
    assert await c.expect_close() == 4003
    await a.recv_type("peer-left")
    await a.send({"type": "close"})
    assert await b2.expect_close() == 4000

    assert value("videorooms_resumes_total", outcome="resumed") - resumed == 1
    assert value("videorooms_resumes_total", outcome="invalid") - invalid == 1
    assert value("videorooms_joins_total", kind="resume", outcome="ok") - resume_ok == 1
    assert value("videorooms_leaves_total", reason="kicked") - kicked == 1
    assert value("videorooms_leaves_total", reason="closed") - closed == 2
    got = [
        (f["event"], f.get("kind") or f.get("reason"), f["peer"], f["user"]) for f in lines(caplog)
    ]
    assert got[:7] == [
        ("join", "create", a.peer_id, alice.pk),
        ("join", "join", joined["peerId"], bob.pk),
        ("detach", None, joined["peerId"], bob.pk),
        ("join", "resume", joined["peerId"], bob.pk),
        ("join", "join", c.peer_id, carol.pk),
        ("kick", None, a.peer_id, alice.pk),
        ("leave", "kicked", c.peer_id, carol.pk),
    ]
    # The owner's close, and both members leaving with it (in the order their events ran).
    assert sorted(got[7:], key=str) == sorted(
        [
            ("close", None, a.peer_id, alice.pk),
            ("leave", "closed", a.peer_id, alice.pk),
            ("leave", "closed", joined["peerId"], bob.pk),
        ],
        key=str,
    )
    kick = next(f for f in lines(caplog) if f["event"] == "kick")
    assert kick == {
        "event": "kick",
        "room": number,
        "peer": a.peer_id,
        "user": alice.pk,
        "target": c.peer_id,
    }
