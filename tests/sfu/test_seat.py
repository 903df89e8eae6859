"""One person's Janus seat (sfu/seat.py) against a real Janus: negotiation and watchdog.

No browser here, so no PeerConnection ever comes up (`webrtcup`): that is
what the watchdog tests need. The subscription is to VideoRoom's dummy
publisher (a feed that "publishes" without media), the publisher's offers
come from tests/sfu/sdp.py. tests/e2e/test_sfu_calls.py has the same
behaviour with Chromium and media.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from sfu.seat import SfuSeat, fingerprint
from sfu.videoroom import room_credentials
from signaling.sfu_listener import SocketSeatListener
from tests.sfu import sdp

pytestmark = pytest.mark.slow

CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0"}


@pytest.fixture
def with_janus(settings, janus):
    settings.JANUS_URL = janus.url
    settings.JANUS_API_SECRET = janus.api_secret
    settings.JANUS_ADMIN_KEY = janus.admin_key
    settings.SFU_SETUP_TIMEOUT = 30
    return janus


class Browser:
    """What the seat's listener sends the browser (the socket's own messages), as a queue."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait(message)

    async def next(self, kind: str = "sfu-offer", seconds: float = 10) -> dict[str, Any]:
        """The next message of type `kind` (the publisher's watchdog may speak in between)."""
        async with asyncio.timeout(seconds):
            while True:
                message = await self.inbox.get()
                if message["type"] == kind:
                    return message


@pytest.fixture
async def seat(with_janus, admin, room_id):
    """A seat in a Janus room whose one other publisher is VideoRoom's dummy."""
    credentials = room_credentials(key=with_janus.admin_key, room=room_id)
    await admin.create_room(
        room=room_id,
        secret=credentials.secret,
        pin=credentials.pin,
        publishers=4,
        extra={"dummy_publisher": True},
    )
    browser = Browser()
    made = SfuSeat(
        room_id=room_id,
        capacity=4,
        feed_id=secrets.randbelow(10**9) + 1,
        peer_id="pB",
        listener=SocketSeatListener(browser.send),
    )
    made.browser = browser
    yield made
    await made.close()
    await admin.destroy_room(room=room_id, secret=credentials.secret)


async def joined_and_subscribed(seat: SfuSeat) -> dict[str, Any]:
    """Publish (which joins the room); return the first subscriber offer, to the dummy."""
    answer = await seat.publish(sdp.publisher_offer())
    assert answer.startswith("v=0")
    offer = await seat.browser.next()
    assert (offer["type"], offer["fresh"]) == ("sfu-offer", True)
    return offer


async def test_the_first_subscription_waits_a_moment_for_everyone_expected(seat, monkeypatch):
    """Two others expected, one publishes: the first offer comes only after the wait, with it."""
    monkeypatch.setattr("sfu.seat.FIRST_SUBSCRIBE_WAIT", 1.0)
    seat.expected_peers = lambda: 2
    loop = asyncio.get_running_loop()
    started = loop.time()
    await seat.publish(sdp.publisher_offer())
    assert seat.browser.inbox.empty()
    offer = await seat.browser.next()
    waited = loop.time() - started
    assert offer["fresh"] is True and len(offer["streams"]) == 2  # the dummy's audio and video
    assert waited >= 1.0
    print(f"\nFIGURE first subscription waited {waited:.2f} s for a straggler")


def test_fingerprint_names_the_peer_connection():
    """A new PeerConnection has a new DTLS fingerprint; the same one keeps it."""
    offer = sdp.publisher_offer()
    assert fingerprint(offer) == fingerprint(offer)
    assert fingerprint(offer) != fingerprint(sdp.publisher_offer())
    assert fingerprint("v=0\r\n") is None


async def test_candidates_wait_while_janus_waits_for_an_answer(seat):
    """Subscriber candidates sent before the answer are held, and trickled after `start`."""
    offer = await joined_and_subscribed(seat)
    await seat.trickle("subscriber", CANDIDATE)
    await seat.trickle("subscriber", None)
    assert seat.held_candidates == [CANDIDATE, None]

    await seat.answer(sdp.answer_for(offer["sdp"]))

    assert (seat.awaiting_answer, seat.held_candidates) == (False, [])
    # Janus took them (an unknown or refused candidate would have raised).
    await seat.trickle("subscriber", CANDIDATE)
    assert seat.held_candidates == []


async def test_a_subscription_is_not_renegotiated_until_it_is_up(seat):
    """Changes while the PeerConnection is being set up wait for `webrtcup`, then go as one."""
    offer = await joined_and_subscribed(seat)
    await seat.answer(sdp.answer_for(offer["sdp"]))
    (dummy,) = seat.feeds
    async with seat.lock:
        await seat._publisher_event({"videoroom": "event", "unpublished": dummy})
    assert seat.browser.inbox.empty()
    assert seat.awaiting_answer is False

    async with seat.lock:
        await seat._up("subscriber", seat.participant.subscriber.id)

    update = await seat.browser.next()
    assert (update["type"], update["fresh"]) == ("sfu-offer", False)
    assert update["streams"] == [
        {"mid": s["mid"], "kind": s["kind"], "peerId": s["peerId"]} for s in update["streams"]
    ]
    assert seat.awaiting_answer is True


async def test_a_subscription_that_never_comes_up_is_replaced_with_backoff(seat, settings):
    """Not up SFU_SETUP_TIMEOUT after its answer: a fresh one; the next wait is twice as long."""
    settings.SFU_SETUP_TIMEOUT = 1
    offer = await joined_and_subscribed(seat)
    first = seat.participant.subscriber.id
    await seat.answer(sdp.answer_for(offer["sdp"]))

    loop = asyncio.get_running_loop()
    started = loop.time()
    again = await seat.browser.next()
    waited = loop.time() - started
    assert (again["type"], again["fresh"]) == ("sfu-offer", True)
    assert [s["peerId"] for s in again["streams"]] == [s["peerId"] for s in offer["streams"]]
    assert seat.participant.subscriber.id != first
    assert seat.setup_failures["subscriber"] == 1
    second = seat.participant.subscriber.id
    await seat.answer(sdp.answer_for(again["sdp"]))

    started = loop.time()
    third = await seat.browser.next()
    assert third["fresh"] is True
    assert seat.participant.subscriber.id not in (first, second)
    assert seat.setup_failures["subscriber"] == 2
    print(f"\nFIGURE watchdog waits: {waited:.2f} s, then {loop.time() - started:.2f} s")


async def test_an_offer_never_answered_is_replaced(seat, settings):
    """The browser never answers the subscriber offer: a fresh subscription after the timeout."""
    settings.SFU_SETUP_TIMEOUT = 1
    await joined_and_subscribed(seat)
    again = await seat.browser.next()
    assert (again["type"], again["fresh"]) == ("sfu-offer", True)


async def test_a_publisher_that_never_comes_up_is_told_to_publish_again(seat, settings):
    """No `webrtcup` for the publisher within the timeout: `sfu-restart`, reason `stalled`."""
    settings.SFU_SETUP_TIMEOUT = 1
    offer = await joined_and_subscribed(seat)
    await seat.answer(sdp.answer_for(offer["sdp"]))
    assert await seat.browser.next("sfu-restart") == {"type": "sfu-restart", "reason": "stalled"}
    assert seat.setup_failures["publisher"] == 1


async def test_a_new_publisher_connection_is_published_afresh_on_the_same_handle(seat):
    """A new fingerprint (a new PeerConnection) is hung up first; the same one renegotiates."""
    await joined_and_subscribed(seat)
    handle = seat.participant.publisher.id
    first = seat.publisher_fingerprint
    offer = sdp.publisher_offer()

    answer = await seat.publish(offer)

    assert answer.startswith("v=0") and "a=rid:h recv" in answer
    assert (seat.participant.publisher.id, seat.published) == (handle, True)
    assert seat.publisher_fingerprint == fingerprint(offer) != first
    # The same connection again (an ICE restart would look like this): a renegotiation.
    assert (await seat.publish(offer)).startswith("v=0")
    assert seat.publisher_fingerprint == fingerprint(offer)


async def test_the_browser_can_ask_for_a_fresh_subscription(seat):
    """`resubscribe` without a connection that was up: a new subscriber handle, a fresh offer."""
    offer = await joined_and_subscribed(seat)
    await seat.answer(sdp.answer_for(offer["sdp"]))
    first = seat.participant.subscriber.id

    await seat.resubscribe(ice_restart=True)  # never up: an ICE restart cannot help

    again = await seat.browser.next()
    assert (again["type"], again["fresh"]) == ("sfu-offer", True)
    assert seat.participant.subscriber.id != first


async def test_an_answer_or_candidate_for_a_replaced_subscription_never_reaches_the_new_one(seat):
    """Offer A answered after the seat replaced it with B: A's answer and candidates are dropped."""
    first = await joined_and_subscribed(seat)
    await seat.resubscribe(ice_restart=False)  # crosses the browser's answer to `first`
    second = await seat.browser.next()
    assert second["fresh"] is True and second["id"] != first["id"]

    await seat.answer(sdp.answer_for(first["sdp"]), offer_id=first["id"])
    await seat.trickle("subscriber", CANDIDATE, offer_id=first["id"])
    assert (seat.awaiting_answer, seat.held_candidates) == (True, [])
    assert seat.answers(first["id"]) is False and seat.answers(second["id"]) is True

    await seat.trickle("subscriber", CANDIDATE, offer_id=second["id"])
    assert seat.held_candidates == [CANDIDATE]
    await seat.answer(sdp.answer_for(second["sdp"]), offer_id=second["id"])
    assert (seat.awaiting_answer, seat.held_candidates) == (False, [])
    assert seat.record().offers == [second["id"]]


async def test_a_resubscribe_for_a_subscription_already_replaced_is_dropped(seat):
    """The browser gave up on offer A while the seat replaced it with B: B is kept, not replaced."""
    first = await joined_and_subscribed(seat)
    await seat.resubscribe(ice_restart=False, offer_id=first["id"])
    second = await seat.browser.next()
    handle = seat.participant.subscriber.id

    await seat.resubscribe(ice_restart=False, offer_id=first["id"])  # a second watchdog's, late

    assert seat.browser.inbox.empty()
    assert (seat.participant.subscriber.id, seat.subscription_offers) == (handle, [second["id"]])
    await seat.resubscribe(ice_restart=False, offer_id=second["id"])
    assert (await seat.browser.next())["fresh"] is True
