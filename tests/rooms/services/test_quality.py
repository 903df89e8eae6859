"""Call quality (extension): the `quality` message, its limits, the service and the retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from rooms import errors
from rooms.models import CallQuality, Participant
from rooms.services.housekeeping import prune
from rooms.services.quality import Summary, quality_record
from signaling import limits

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

MAX_COUNTER = 2_147_483_647


def report(peer: str, **fields: Any) -> dict[str, Any]:
    """A full report as a browser sends it, with `fields` replacing or adding fields."""
    return {
        "type": "quality",
        "peer": peer,
        "final": False,
        "state": "connected",
        "firstFrameMs": 840,
        "pair": {"local": "host", "remote": "srflx", "protocol": "udp", "relayProtocol": None},
        "rttMs": 23,
        "in": {"kbps": 1480, "packets": 5210, "lost": 12, "framesDecoded": 301, "framesDropped": 2},
        "out": {"kbps": 1510, "packets": 5301, "lost": 7},
        "iceRestarts": 1,
        "iceFailures": {"failed": 0, "disconnected-timeout": 1},
        **fields,
    }


# The row the full report above is stored as, written out by hand.
STORED = {
    "state": "connected",
    "first_frame_ms": 840,
    "local_candidate_type": "host",
    "remote_candidate_type": "srflx",
    "protocol": "udp",
    "relay_protocol": "",
    "rtt_ms": 23,
    "bitrate_in_kbps": 1480,
    "bitrate_out_kbps": 1510,
    "packets_in": 5210,
    "packets_lost_in": 12,
    "packets_out": 5301,
    "packets_lost_out": 7,
    "frames_decoded": 301,
    "frames_dropped": 2,
    "ice_restarts": 1,
    "ice_failed": 0,
    "ice_disconnected_timeouts": 1,
}


def err(code: str, message: str, re: str | None = None) -> dict:
    out = {"type": "error", "code": code, "message": message}
    if re is not None:
        out["re"] = re
    return out


@database_sync_to_async
def stored(reporter: str) -> list[dict[str, Any]]:
    """Every quality row the peer `reporter` made: remote peer, kind, and the figures."""
    rows = CallQuality.objects.filter(participant__peer_id=reporter).order_by(
        "remote_peer_id", "final"
    )
    return [
        {
            "remote_peer_id": row.remote_peer_id,
            "remote": row.remote.peer_id if row.remote else None,
            "final": row.final,
            **{name: getattr(row, name) for name in STORED},
        }
        for row in rows
    ]


@database_sync_to_async
def leave_ago(peer_id: str, *, seconds: float) -> None:
    Participant.objects.filter(peer_id=peer_id).update(
        left_at=timezone.now() - timedelta(seconds=seconds), left_reason="left"
    )


async def barrier(peer) -> None:
    """A ping round trip: everything sent before it has been handled, and had no answer."""
    assert await peer.request({"type": "ping", "id": "barrier"}) == {
        "type": "pong",
        "re": "barrier",
    }


class Clock:
    """The limit's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(limits.time, "monotonic", clock)
    return clock


# --- The message --------------------------------------------------------------------------


async def test_a_report_is_stored_without_an_answer(room_of, alice, bob):
    """A valid report gets no answer (fire-and-forget) and is stored with every figure."""
    a, b = await room_of(alice, bob)
    await a.send({**report(b.peer_id), "id": "q1", "unknown": "dropped"})
    await barrier(a)
    assert await stored(a.peer_id) == [
        {"remote_peer_id": b.peer_id, "remote": b.peer_id, "final": False, **STORED}
    ]
    # The other peer hears nothing of it.
    await b.nothing_before_pong()


async def test_a_report_of_unknowns_is_stored_as_unknown(room_of, alice, bob):
    """Only `type` and `peer` are required: everything else may be null or absent."""
    a, b = await room_of(alice, bob)
    await a.send({"type": "quality", "peer": b.peer_id, "pair": None, "in": {}, "rttMs": None})
    await barrier(a)
    unknown = {name: ("" if type(value) is str else None) for name, value in STORED.items()}
    assert await stored(a.peer_id) == [
        {
            "remote_peer_id": b.peer_id,
            "remote": b.peer_id,
            "final": False,
            **unknown,
            "ice_failed": 0,
            "ice_disconnected_timeouts": 0,
        }
    ]


INVALID = [
    ({"peer": None}, "'peer' is required"),
    ({"peer": 7}, "'peer' must be a string"),
    ({"peer": "p" * 33}, "'peer' is longer than 32 characters"),
    ({"final": "yes"}, "'final' must be true or false"),
    (
        {"state": "open"},
        "'state' must be one of new, connecting, connected, disconnected, failed, closed or null",
    ),
    ({"firstFrameMs": -1}, "'firstFrameMs' must be between 0 and 86400000"),
    ({"firstFrameMs": 86_400_001}, "'firstFrameMs' must be between 0 and 86400000"),
    ({"firstFrameMs": 1.5}, "'firstFrameMs' must be an integer or null"),
    ({"firstFrameMs": True}, "'firstFrameMs' must be an integer or null"),
    ({"rttMs": 60_001}, "'rttMs' must be between 0 and 60000"),
    ({"rttMs": "23"}, "'rttMs' must be an integer or null"),
    ({"pair": "host"}, "'pair' must be an object or null"),
    (
        {"pair": {"local": "tcp"}},
        "'pair.local' must be one of host, srflx, prflx, relay or null",
    ),
    (
        {"pair": {"remote": "HOST"}},
        "'pair.remote' must be one of host, srflx, prflx, relay or null",
    ),
    ({"pair": {"protocol": "sctp"}}, "'pair.protocol' must be one of udp, tcp or null"),
    (
        {"pair": {"relayProtocol": "dtls"}},
        "'pair.relayProtocol' must be one of udp, tcp, tls or null",
    ),
    ({"in": [1]}, "'in' must be an object or null"),
    ({"in": {"kbps": "1480"}}, "'in.kbps' must be an integer or null"),
    ({"in": {"kbps": 10_000_001}}, "'in.kbps' must be between 0 and 10000000"),
    ({"in": {"packets": -5}}, f"'in.packets' must be between 0 and {MAX_COUNTER}"),
    ({"in": {"lost": -1}}, f"'in.lost' must be between 0 and {MAX_COUNTER}"),
    ({"in": {"framesDecoded": 2**31}}, f"'in.framesDecoded' must be between 0 and {MAX_COUNTER}"),
    ({"in": {"framesDropped": 0.5}}, "'in.framesDropped' must be an integer or null"),
    ({"out": 3}, "'out' must be an object or null"),
    ({"out": {"kbps": -1}}, "'out.kbps' must be between 0 and 10000000"),
    ({"out": {"packets": 2**31}}, f"'out.packets' must be between 0 and {MAX_COUNTER}"),
    ({"out": {"lost": False}}, "'out.lost' must be an integer or null"),
    ({"iceRestarts": -1}, f"'iceRestarts' must be between 0 and {MAX_COUNTER}"),
    ({"iceFailures": 2}, "'iceFailures' must be an object or null"),
    ({"iceFailures": {"failed": "1"}}, "'iceFailures.failed' must be an integer or null"),
    (
        {"iceFailures": {"disconnected-timeout": -1}},
        f"'iceFailures.disconnected-timeout' must be between 0 and {MAX_COUNTER}",
    ),
]


@pytest.mark.parametrize(("fields", "message"), INVALID, ids=[m for _, m in INVALID])
async def test_each_invalid_field_is_bad_message(room_of, alice, bob, fields, message):
    """Every field is checked for type and range; a bad one refuses the report, storing nothing."""
    a, b = await room_of(alice, bob)
    sent = {**report(b.peer_id, id="q"), **fields}
    assert await a.request(sent) == err("bad-message", message, "q")
    assert await stored(a.peer_id) == []


async def test_a_report_over_its_frame_limit_is_too_large(room_of, alice, bob):
    """A quality frame over 4096 bytes is refused as too-large, though far under the 64 KiB cap."""
    a, b = await room_of(alice, bob)
    padded = report(b.peer_id, id="big", padding="x" * 4096)
    assert len(orjson.dumps(padded)) < 64 * 1024
    assert await a.request(padded) == err(
        "too-large", "a quality message may be at most 4096 bytes", "big"
    )
    # Just under the limit passes (unknown fields are dropped).
    fits = report(b.peer_id, padding="x" * 3000)
    assert len(orjson.dumps(fits)) < 4096
    await a.send(fits)
    await barrier(a)
    assert len(await stored(a.peer_id)) == 1


async def test_a_report_before_joining_is_not_in_room(connect, alice):
    """quality needs a room, like every in-room type."""
    peer = await connect(alice)
    assert await peer.request(report("someone", id="r")) == err(
        "not-in-room", "join a room first", "r"
    )


async def test_reports_on_unknown_peers_are_refused(room_of, alice, bob, carol, dave):
    """Nobody's peer id, one's own, or another room's peer: unknown-peer, nothing stored."""
    a, _ = await room_of(alice, bob)
    c, _ = await room_of(carol, dave)
    assert await a.request(report("nobody", id="1")) == err(
        "unknown-peer", "That person is not in this room.", "1"
    )
    assert await a.request(report(a.peer_id, id="2")) == err(
        "unknown-peer", "report on the other peers, not yourself", "2"
    )
    assert await a.request(report(c.peer_id, id="3")) == err(
        "unknown-peer", "That person is not in this room.", "3"
    )
    assert await stored(a.peer_id) == []


async def test_the_final_report_is_taken_just_after_the_peer_left(
    room_of, alice, bob, settings, clock
):
    """A peer that left is still reported on for QUALITY_PEER_GRACE seconds, then unknown-peer."""
    settings.QUALITY_PEER_GRACE = 60
    a, b = await room_of(alice, bob)
    await b.send({"type": "leave"})
    assert await a.recv() == {"type": "peer-left", "peerId": b.peer_id, "reason": "left"}
    await a.send(report(b.peer_id, final=True, state="closed"))
    await barrier(a)
    assert await stored(a.peer_id) == [
        {
            "remote_peer_id": b.peer_id,
            "remote": b.peer_id,
            "final": True,
            **STORED,
            "state": "closed",
        }
    ]
    await leave_ago(b.peer_id, seconds=61)
    clock.now += 5
    assert await a.request(report(b.peer_id, final=True, id="late")) == err(
        "unknown-peer", "That person is not in this room.", "late"
    )


async def test_reports_are_rate_limited_per_peer_and_per_socket(
    room_of, alice, bob, carol, settings, clock
):
    """One live and one final report a peer per 5 s (one early); QUALITY_BURST a socket at once."""
    settings.QUALITY_MIN_INTERVAL, settings.QUALITY_RATE, settings.QUALITY_BURST = 5, 1, 4
    a, b, c = await room_of(alice, bob, carol)
    refused = err("rate-limited", "too many quality reports; send one per peer every 10 s")
    await a.send(report(b.peer_id, rttMs=9))
    await a.send(report(b.peer_id, rttMs=10))  # early: the one before may have been delayed
    assert await a.request(report(b.peer_id, rttMs=11, id="again")) == {**refused, "re": "again"}
    # The final report is counted apart: the pair may end right after a live report.
    await a.send(report(b.peer_id, final=True, rttMs=12))
    await a.send(report(c.peer_id, rttMs=13))
    # Four taken at once: the socket's burst is spent, whichever peer the next is about.
    assert await a.request(report(c.peer_id, final=True, id="burst")) == {**refused, "re": "burst"}
    rows = await stored(a.peer_id)
    assert [(row["remote_peer_id"], row["final"], row["rtt_ms"]) for row in rows] == sorted(
        [(b.peer_id, False, 10), (b.peer_id, True, 12), (c.peer_id, False, 13)]
    )
    # Five seconds on, the same pair may report again: its live row is updated in place.
    clock.now += 5
    await a.send(report(b.peer_id, rttMs=14))
    await barrier(a)
    rows = await stored(a.peer_id)
    assert [(row["remote_peer_id"], row["final"], row["rtt_ms"]) for row in rows] == sorted(
        [(b.peer_id, False, 14), (b.peer_id, True, 12), (c.peer_id, False, 13)]
    )


async def test_a_report_refused_by_the_limit_does_not_count_as_an_invalid_frame(
    room_of, alice, bob, settings, clock
):
    """Refusals of the rate limit never close the socket the way 20 bad frames do."""
    a, b = await room_of(alice, bob)
    await a.send(report(b.peer_id))
    await a.send(report(b.peer_id))  # one early is tolerated (a delay in transit)
    for n in range(25):
        answer = await a.request(report(b.peer_id, id=f"r{n}"))
        assert answer["code"] == "rate-limited", answer
    await barrier(a)


# --- The limit, alone ---------------------------------------------------------------------


def test_quality_limit_per_pair_kind_and_socket(settings, clock):
    """Per (peer, kind) once per interval on average, one early; the socket's bucket; memory."""
    settings.QUALITY_MIN_INTERVAL, settings.QUALITY_RATE, settings.QUALITY_BURST = 5, 2, 4
    limit = limits.QualityLimit()
    # A report delayed in transit arrives just before the next, on time: both taken.
    assert limit.take(peer="b", final=False) is True
    assert limit.take(peer="b", final=False) is True
    assert limit.take(peer="b", final=False) is False
    assert limit.take(peer="b", final=True) is True
    clock.now += 4.999
    assert limit.take(peer="b", final=False) is False
    clock.now += 0.001
    assert limit.take(peer="b", final=False) is True
    # Sent every 6 s; every third arrives 4 s late, so the next comes 2 s after it.
    start = clock.now
    for n in range(30):
        clock.now = start + 6 * n + (4 if n % 3 == 0 else 0)
        assert limit.take(peer="c", final=False) is True, n
    # Faster than one per interval for long: refused, and the rate stays one per interval.
    taken = 0
    for _ in range(100):
        clock.now += 1
        taken += limit.take(peer="d", final=False)
    assert taken == 2 + 100 // 5 - 1
    # A long call with many peers that came and went: only recent reports are remembered.
    for n in range(200):
        clock.now += 1
        assert limit.take(peer=f"p{n}", final=n % 2 == 0) is True
    # One a second over a 5 s interval: the last five.
    assert len(limit.last) <= 5


# --- The service --------------------------------------------------------------------------


def test_upsert_keeps_one_live_and_one_final_row_per_pair(alice, bob, make_room, add_participant):
    """Live reports overwrite the live row, the final one its own; first-report time is kept."""
    room = make_room(alice)
    me, other = add_participant(room, alice), add_participant(room, bob)
    start = timezone.now()
    for n, final in ((0, False), (1, False), (2, True), (3, False), (4, True)):
        assert (
            quality_record(
                room_id=room.pk,
                peer_id=me.peer_id,
                remote_peer_id=other.peer_id,
                final=final,
                summary=Summary(state="connected", rtt_ms=n, ice_restarts=n),
                now=start + timedelta(seconds=10 * n),
            )
            == ()
        )
    rows = list(
        CallQuality.objects.filter(participant=me).values_list(
            "remote_id", "final", "rtt_ms", "created_at", "updated_at"
        )
    )
    assert rows == [
        (other.pk, False, 3, start, start + timedelta(seconds=30)),
        (other.pk, True, 4, start + timedelta(seconds=20), start + timedelta(seconds=40)),
    ]


def test_the_service_refuses_peers_outside_the_room(alice, bob, carol, make_room, add_participant):
    """PeerNotFound: another room's peer, one gone past the grace; a gone reporter: no-op."""
    room, elsewhere = make_room(alice), make_room(carol)
    me, other = add_participant(room, alice), add_participant(elsewhere, bob)
    with pytest.raises(errors.PeerNotFound):
        quality_record(
            room_id=room.pk,
            peer_id=me.peer_id,
            remote_peer_id=other.peer_id,
            final=False,
            summary=Summary(),
        )
    gone = add_participant(room, bob, left=True, reason="left")
    Participant.objects.filter(pk=gone.pk).update(left_at=timezone.now() - timedelta(seconds=3600))
    with pytest.raises(errors.PeerNotFound):
        quality_record(
            room_id=room.pk,
            peer_id=me.peer_id,
            remote_peer_id=gone.peer_id,
            final=True,
            summary=Summary(),
        )
    left_me = add_participant(room, carol, left=True, reason="kicked")
    present = add_participant(room, bob)
    assert (
        quality_record(
            room_id=room.pk,
            peer_id=left_me.peer_id,
            remote_peer_id=present.peer_id,
            final=True,
            summary=Summary(),
        )
        == ()
    )
    assert CallQuality.objects.count() == 0


def test_made_up_reports_keep_at_most_22_rows_per_participant(
    alice, bob, make_room, add_participant
):
    """80 reports about 40 peers that came and went: 11 peers (22 rows) kept, the rest refused.

    The attack of issue 22: an accomplice joins and leaves 40 times, and the
    reporter sends a live and a final "relayed" report about each of its peer
    ids; before the bound all 80 rows were kept (docs/protocol.md: 2 x 11).
    """
    room = make_room(alice)
    me = add_participant(room, alice)
    refused = 0
    for _ in range(40):
        visit = add_participant(room, bob, left=True, reason="left")
        for final in (False, True):
            try:
                quality_record(
                    room_id=room.pk,
                    peer_id=me.peer_id,
                    remote_peer_id=visit.peer_id,
                    final=final,
                    summary=Summary(local_candidate_type="relay", remote_candidate_type="relay"),
                )
            except errors.CapReached as err:
                assert err.message == "Reports about 11 people are kept per call; no more."
                refused += 1
    assert (CallQuality.objects.filter(participant=me).count(), refused) == (22, 58)


def test_a_long_call_reports_on_all_its_peers(alice, bob, make_room, add_participant):
    """A full mesh (11 others) reported on for an hour: every live report and each final kept."""
    room = make_room(alice)
    me = add_participant(room, alice)
    others = [add_participant(room, bob) for _ in range(11)]
    start = timezone.now()
    for minute in range(0, 60, 5):
        for other in others:
            quality_record(
                room_id=room.pk,
                peer_id=me.peer_id,
                remote_peer_id=other.peer_id,
                final=False,
                summary=Summary(rtt_ms=minute),
                now=start + timedelta(minutes=minute),
            )
    for other in others:
        Participant.objects.filter(pk=other.pk).update(left_at=timezone.now(), left_reason="left")
        quality_record(
            room_id=room.pk,
            peer_id=me.peer_id,
            remote_peer_id=other.peer_id,
            final=True,
            summary=Summary(state="closed"),
        )
    assert CallQuality.objects.filter(participant=me, final=False, rtt_ms=55).count() == 11
    assert CallQuality.objects.filter(participant=me, final=True).count() == 11


def test_reports_only_about_peers_whose_presence_overlapped(
    alice, bob, carol, make_room, add_participant
):
    """A peer that left before the reporter joined, even within the grace: PeerNotFound."""
    room = make_room(alice)
    before = add_participant(room, bob, left=True, reason="left")
    Participant.objects.filter(pk=before.pk).update(left_at=timezone.now() - timedelta(seconds=5))
    me = add_participant(room, alice)
    with pytest.raises(errors.PeerNotFound):
        quality_record(
            room_id=room.pk,
            peer_id=me.peer_id,
            remote_peer_id=before.peer_id,
            final=True,
            summary=Summary(),
        )
    # One who was there with us and left a moment ago still gets its final report.
    during = add_participant(room, carol)
    Participant.objects.filter(pk=during.pk).update(left_at=timezone.now(), left_reason="left")
    quality_record(
        room_id=room.pk,
        peer_id=me.peer_id,
        remote_peer_id=during.peer_id,
        final=True,
        summary=Summary(),
    )
    assert list(CallQuality.objects.values_list("remote_peer_id", flat=True)) == [during.peer_id]


def test_prune_deletes_the_call_history_past_its_retention(
    settings, alice, bob, carol, make_room, add_participant
):
    """Participants who left > CALL_HISTORY_RETENTION_DAYS ago go with their reports; rooms stay."""
    settings.CALL_HISTORY_RETENTION_DAYS = 90
    room = make_room(alice)
    old, recent, present = (add_participant(room, user) for user in (alice, bob, carol))
    for reporter, remote in ((old, recent), (recent, old), (present, recent)):
        quality_record(
            room_id=room.pk,
            peer_id=reporter.peer_id,
            remote_peer_id=remote.peer_id,
            final=True,
            summary=Summary(rtt_ms=5),
        )
    now = timezone.now()
    for participant, days in ((old, 91), (recent, 89)):
        Participant.objects.filter(pk=participant.pk).update(
            left_at=now - timedelta(days=days), left_reason="left"
        )

    report = prune(now=now)

    assert report.participants_deleted == 1
    assert report.changed
    assert set(Participant.objects.values_list("peer_id", flat=True)) == {
        recent.peer_id,
        present.peer_id,
    }
    # The old participant's own report went; the one about it stays, unlinked.
    assert sorted(
        CallQuality.objects.values_list("participant__peer_id", "remote_peer_id", "remote_id")
    ) == sorted([(recent.peer_id, old.peer_id, None), (present.peer_id, recent.peer_id, recent.pk)])
    assert room.__class__.objects.filter(pk=room.pk).exists()


def test_the_admin_lists_reports_read_only(
    client, superuser, alice, bob, make_room, add_participant
):
    """Django admin shows each report (room, reporter, path, RTT, loss) and edits none."""
    room = make_room(alice)
    me, other = add_participant(room, alice), add_participant(room, bob)
    quality_record(
        room_id=room.pk,
        peer_id=me.peer_id,
        remote_peer_id=other.peer_id,
        final=False,
        summary=Summary(
            state="connected",
            local_candidate_type="relay",
            remote_candidate_type="host",
            protocol="udp",
            relay_protocol="tcp",
            rtt_ms=48,
            packets_in=990,
            packets_lost_in=10,
        ),
    )
    client.force_login(superuser)
    page = client.get("/admin/rooms/callquality/").content.decode()
    assert "relay → host udp via TURN/tcp" in page
    assert room.number in page
    assert '<td class="field-loss_in_percent">1.0</td>' in page
    row = CallQuality.objects.get()
    assert client.get(f"/admin/rooms/callquality/{row.pk}/change/").status_code == 200
    assert client.get("/admin/rooms/callquality/add/").status_code == 403
