"""What a seat tells its browser, as the socket sends it (signaling/sfu_listener.py)."""

from __future__ import annotations

from typing import Any

from sfu.parking import SeatRelease
from sfu.seat import RESTART_LOST, RESTART_STALLED, SeatOffer, SeatRecord
from signaling import sfu_listener
from signaling.sfu_listener import SocketSeatListener

# Janus' list of a subscription's m-lines: the inactive one, the data channel
# and the one without a display name are not the browser's business.
STREAMS = [
    {"mid": "0", "type": "audio", "feed_display": "pA", "feed_id": 7, "active": True},
    {"mid": 1, "type": "video", "feed_display": "pA", "feed_id": 7},
    {"mid": "2", "type": "video", "feed_display": "pC", "feed_id": 9, "active": False},
    {"mid": "3", "type": "data", "feed_display": "pA"},
    {"mid": "4", "type": "audio", "feed_id": 11},
]
OFFER = SeatOffer(offer_id="sfu-abc", sdp="v=0\r\n", streams=STREAMS, fresh=True)


async def test_the_listener_sends_the_protocols_sfu_offer_and_sfu_restart():
    """An offer is `sfu-offer` (id, sdp, fresh, the browser's streams); a restart `sfu-restart`."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    listener = SocketSeatListener(send)
    await listener.offer(OFFER)
    await listener.restart(RESTART_LOST)
    await listener.restart(RESTART_STALLED)
    assert sent == [
        {
            "type": "sfu-offer",
            "id": "sfu-abc",
            "sdp": "v=0\r\n",
            "fresh": True,
            "streams": [
                {"mid": "0", "kind": "audio", "peerId": "pA"},
                {"mid": "1", "kind": "video", "peerId": "pA"},
            ],
        },
        {"type": "sfu-restart", "reason": "lost"},
        {"type": "sfu-restart", "reason": "stalled"},
    ]


async def test_a_seat_release_goes_to_the_workers_group(monkeypatch):
    """tell_release publishes `sfu.seat_release` naming the owner, the peer and the session."""
    published = []

    async def publish(outbox, layer=None):
        published.extend(outbox)

    monkeypatch.setattr(sfu_listener.events, "publish", publish)
    await sfu_listener.tell_release(SeatRelease(owner="w1", peer_id="pB", session_id=42, keep=True))
    assert [(o.group, o.event) for o in published] == [
        (
            "workers",
            {
                "type": "sfu.seat_release",
                "owner": "w1",
                "peer_id": "pB",
                "session": 42,
                "keep": True,
            },
        )
    ]


def test_a_seat_record_keeps_its_pending_offer_through_redis():
    """dumps/loads round-trips the record with the offer; anything else loads as None."""
    record = SeatRecord(
        room=1, feed=2, session=3, publisher=4, private=5, subscriber=6, streams=STREAMS,
        published=True, awaiting=True, fresh=False, offer=OFFER, offers=["sfu-abc"],
    )  # fmt: skip
    assert SeatRecord.loads(record.dumps()) == record
    no_offer = SeatRecord(**{**record.__dict__, "offer": None})
    assert SeatRecord.loads(no_offer.dumps()) == no_offer
    assert SeatRecord.loads(b"{}") is None
    assert SeatRecord.loads(b"not json") is None
