"""A dropped signaling socket keeps the person's Janus seat (docs/sfu.md section 6), one worker.

The socket drops without a close frame; the seat is parked: its Janus
session, handles and feed stay, and a resume on the same worker carries on
with them (no `sfu-restart`, no new session). Whatever ends the person
(the grace running out, a kick, the room closing, the account joining again)
ends the parked seat too. Two workers (the claim) are in
tests/integration/test_sfu_resume.py.

Janus is asked directly, on a connection of the test's own: `keepalive` on
the person's session id and a synchronous request on each of their handle ids
(Janus answers 458 / 459 once they are gone), `listparticipants`, and an
observer in the room, which hears `leaving`/`kicked`/`joining` whenever the
person's feed is torn down or made again. The observer's own second join is
the barrier: events on one handle arrive in order.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from rooms.models import Participant as ParticipantRow
from sfu import JanusClient, JanusError, JanusSessionLost, lifecycle
from sfu.seat import SfuSeat
from sfu.videoroom import VideoRoomParticipant, room_credentials
from signaling.presence import get_presence
from signaling.runtime import all_workers
from tests.sfu import sdp
from tests.sfu.conftest import wait_for
from tests.support.helpers import db_participant, db_room

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

_barriers = itertools.count(1)


@pytest.fixture
def sfu_site(settings, janus):
    """The site's settings pointing at the shared test Janus."""
    settings.JANUS_URL = janus.url
    settings.JANUS_API_SECRET = janus.api_secret
    settings.JANUS_ADMIN_KEY = janus.admin_key
    return janus


def seat_of(peer_id: str) -> SfuSeat | None:
    """The Janus seat of the socket that holds `peer_id` on this process's worker."""
    for worker in all_workers():
        for consumer in worker.sockets:
            membership = consumer.membership
            if membership is not None and membership.peer_id == peer_id:
                return membership.sfu
    raise AssertionError(f"no socket holds {peer_id}")


def ids_of(seat: SfuSeat) -> dict[str, int | None]:
    participant = seat.participant
    return {
        "session": participant.session.id,
        "publisher": participant.publisher.id,
        "subscriber": participant.subscriber.id if participant.subscriber else None,
    }


async def janus_has(probe: JanusClient, ids: dict[str, Any], room_id: int) -> dict[str, bool]:
    """Whether Janus still has the session and each handle (asked on the probe's own connection)."""
    found = {}
    try:
        await probe.request({"janus": "keepalive", "session_id": ids["session"]}, ack_is_final=True)
        found["session"] = True
    except JanusSessionLost:
        found["session"] = False
    for role in ("publisher", "subscriber"):
        if ids.get(role) is None:
            continue
        message = {
            "janus": "message",
            "session_id": ids["session"],
            "handle_id": ids[role],
            "body": {"request": "listparticipants", "room": room_id},
        }
        try:
            await probe.request(message)
            found[role] = True
        except JanusError as err:
            assert err.code in (458, 459), err
            found[role] = False
    return found


async def janus_logged(janus: Any, line: str, *, seconds: float = 10) -> None:
    """Wait for Janus to log `line` (its log is the barrier for what it did on its own)."""
    deadline = time.monotonic() + seconds
    while line not in janus.proc.output:
        if time.monotonic() > deadline:
            raise AssertionError(f"Janus did not log {line!r} within {seconds}s")
        await asyncio.sleep(0.05)


async def listed(room_id: int) -> list[int]:
    return sorted(p["id"] for p in await lifecycle.participants(room_id=room_id))


class Observer:
    """A participant of the test's own in the Janus room: hears every feed come and go."""

    def __init__(self, client: JanusClient, room_id: int) -> None:
        self.client = client
        self.room_id = room_id
        self.pin = room_credentials(key=django_settings.JANUS_ADMIN_KEY, room=room_id).pin
        self.me: VideoRoomParticipant | None = None

    async def join(self) -> None:
        session = await self.client.create_session()
        self.me = await VideoRoomParticipant.join(
            session, room=self.room_id, pin=self.pin, display="observer"
        )

    async def heard_since(self) -> list[dict[str, Any]]:
        """Room events heard since the last call, up to a barrier join of the observer's own."""
        display = f"barrier-{next(_barriers)}"
        barrier = await VideoRoomParticipant.join(
            self.me.session, room=self.room_id, pin=self.pin, display=display
        )
        _, before = await wait_for(
            self.me.events,
            lambda e: (e.event.data.get("joining") or {}).get("display") == display,
        )
        await barrier.leave()
        _, gone = await wait_for(
            self.me.events, lambda e: e.event.data.get("leaving") == barrier.feed_id
        )
        return [e.event.data for e in [*before, *gone] if e.event.type == "event"]


def about(events: list[dict[str, Any]], feed: int) -> list[dict[str, Any]]:
    """The events that say `feed` left, was kicked, unpublished or joined."""
    return [
        e
        for e in events
        if feed in (e.get("leaving"), e.get("kicked"), e.get("unpublished"))
        or (e.get("joining") or {}).get("id") == feed
    ]


@pytest.fixture
async def sfu_call(connect, make_user, sfu_site, make_client):
    """Alice and Bob in an `sfu` room, Bob published; an observer and a probe on Janus."""

    async def open_call(*, dummy: bool = False) -> dict[str, Any]:
        alice_user = await database_sync_to_async(make_user)("alice")
        bob_user = await database_sync_to_async(make_user)("bob")
        alice, bob = await connect(alice_user), await connect(bob_user)
        number = (await alice.create(media="sfu", capacity=6))["room"]["number"]
        joined = await bob.join(number)
        await alice.recv_type("peer-joined")
        room = await db_room(number)
        # Room ids restart with each test database: a Janus room of an earlier test goes.
        await lifecycle.destroy(room_id=room.pk)
        if dummy:
            # VideoRoom's dummy publisher "publishes" without media, so Bob's
            # seat subscribes to it: a subscriber offer Bob does not answer.
            creds = room_credentials(key=django_settings.JANUS_ADMIN_KEY, room=room.pk)
            admin = await lifecycle.admin()
            await admin.create_room(
                room=room.pk, secret=creds.secret, pin=creds.pin, publishers=6,
                extra={"dummy_publisher": True},
            )  # fmt: skip
        else:
            await lifecycle.ensure_room(room_id=room.pk, capacity=6)
        observer = Observer(make_client(sfu_site), room.pk)
        await observer.join()
        await bob.send({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "pub"})
        offer = None
        while (message := await bob.recv())["type"] != "sfu-answer":
            assert message["type"] == "sfu-offer", message
            offer = message
        assert message["re"] == "pub"
        feed = (await db_participant(bob.peer_id)).pk
        joining = {"id": feed, "display": bob.peer_id}
        heard = await observer.heard_since()
        assert heard == [{"videoroom": "event", "room": room.pk, "joining": joining}]
        return {
            "alice": alice,
            "bob": bob,
            "bob_user": bob_user,
            "number": number,
            "room": room.pk,
            "token": joined["resumeToken"],
            "feed": feed,
            "ids": ids_of(seat_of(bob.peer_id)),
            "offer": offer,
            "observer": observer,
            "probe": make_client(sfu_site),
            "janus": sfu_site,
        }

    return open_call


async def resume(connect, call: dict[str, Any]) -> Any:
    bob2 = await connect(call["bob_user"])
    answer = await bob2.request(
        {"type": "join", "room": call["number"], "resume": call["token"], "id": "r"}
    )
    assert (answer["type"], answer["peerId"], answer["resumed"]) == (
        "joined",
        call["bob"].peer_id,
        True,
    )
    return bob2


async def test_dropped_socket_keeps_the_janus_seat_and_a_resume_takes_it_back(connect, sfu_call):
    """No close frame: Janus keeps Bob's session, handles, feed; the resume carries on with them."""
    call = await sfu_call()
    bob, feed, ids, room = call["bob"], call["feed"], call["ids"], call["room"]

    await bob.ws.disconnect(code=1006)
    await call["alice"].nothing_before_pong()

    # Parked: nothing of Bob's in Janus went.
    assert await janus_has(call["probe"], ids, room) == {"session": True, "publisher": True}
    assert feed in await listed(room)
    assert about(await call["observer"].heard_since(), feed) == []

    bob2 = await resume(connect, call)
    # No sfu-restart: the browser's PeerConnections carry on.
    await bob2.nothing_before_pong()
    assert ids_of(seat_of(bob.peer_id)) == ids
    assert await janus_has(call["probe"], ids, room) == {"session": True, "publisher": True}
    assert about(await call["observer"].heard_since(), feed) == []
    # The same publisher handle takes a renegotiation from the new socket.
    reply = await bob2.request({"type": "sfu-offer", "sdp": sdp.publisher_offer(), "id": "o2"})
    assert (reply["type"], reply["re"]) == ("sfu-answer", "o2")
    assert ids_of(seat_of(bob.peer_id)) == ids
    await bob2.send({"type": "leave"})
    await bob2.nothing_before_pong()
    assert await janus_has(call["probe"], ids, room) == {"session": False, "publisher": False}
    assert feed not in await listed(room)


async def test_a_subscriber_offer_left_unanswered_is_sent_again_after_the_resume(connect, sfu_call):
    """Bob's socket drops before he answered Janus' offer: the resume re-sends it, unchanged."""
    call = await sfu_call(dummy=True)
    offer, ids, room = call["offer"], call["ids"], call["room"]
    assert offer is not None and offer["fresh"] is True
    assert ids["subscriber"] is not None

    await call["bob"].ws.disconnect(code=1006)
    await call["alice"].nothing_before_pong()
    bob2 = await resume(connect, call)

    assert await bob2.recv() == offer
    await bob2.nothing_before_pong()
    await bob2.send({"type": "sfu-answer", "sdp": sdp.answer_for(offer["sdp"])})
    await bob2.nothing_before_pong()
    seat = seat_of(call["bob"].peer_id)
    assert ids_of(seat) == ids
    assert seat.awaiting_answer is False
    everything = {"session": True, "publisher": True, "subscriber": True}
    assert await janus_has(call["probe"], ids, room) == everything
    await bob2.send({"type": "leave"})
    await bob2.nothing_before_pong()


async def test_a_resume_while_the_old_socket_still_looks_open_takes_its_seat(connect, sfu_call):
    """The old socket is still open (a half-open TCP): it is replaced (4409), the seat lives on."""
    call = await sfu_call()
    bob, feed, ids, room = call["bob"], call["feed"], call["ids"], call["room"]

    bob2 = await resume(connect, call)

    assert await bob.expect_close() == 4409
    await bob2.nothing_before_pong()
    await call["alice"].nothing_before_pong()
    assert ids_of(seat_of(bob.peer_id)) == ids
    assert await janus_has(call["probe"], ids, room) == {"session": True, "publisher": True}
    assert about(await call["observer"].heard_since(), feed) == []
    await bob2.send({"type": "leave"})
    await bob2.nothing_before_pong()


async def gone_for_good(call: dict[str, Any]) -> None:
    """Bob's seat left Janus: the observer heard his feed go, Janus has nothing of his any more."""
    feed, ids, room = call["feed"], call["ids"], call["room"]
    await wait_for(
        call["observer"].me.events,
        lambda e: feed in (e.event.data.get("leaving"), e.event.data.get("kicked")),
        seconds=10,
    )
    await janus_logged(call["janus"], f"Destroying session {ids['session']};")
    assert await janus_has(call["probe"], ids, room) == {"session": False, "publisher": False}
    assert feed not in await listed(room)


async def park(call: dict[str, Any]) -> None:
    """Drop Bob's socket without a close frame; check his seat is parked, whole."""
    await call["bob"].ws.disconnect(code=1006)
    await call["alice"].nothing_before_pong()
    assert await janus_has(call["probe"], call["ids"], call["room"]) == {
        "session": True,
        "publisher": True,
    }


async def test_a_parked_seat_not_resumed_in_time_leaves_janus(sfu_call, settings):
    """Not back within RESUME_GRACE: peer-left `timeout`, and Bob's session leaves Janus."""
    settings.RESUME_GRACE = 1
    settings.PRESENCE_SWEEP_INTERVAL = 0.2
    call = await sfu_call()
    await park(call)

    left = await call["alice"].recv_type("peer-left", timeout=5)
    assert left == {"type": "peer-left", "peerId": call["bob"].peer_id, "reason": "timeout"}
    await gone_for_good(call)


async def test_a_parked_seat_whose_expiry_event_never_came_is_closed_after_the_grace(
    sfu_call, settings
):
    """No expiry event reaches the worker (presence kept alive): the seat still goes in time."""
    settings.RESUME_GRACE = 1
    settings.PRESENCE_SWEEP_INTERVAL = 0.2
    call = await sfu_call()
    await park(call)
    # Someone keeps Bob present (as a stalled sweeper would): no sfu.cleanup comes.
    await get_presence().renew([call["bob"].peer_id], seconds=60)

    await gone_for_good(call)
    await call["alice"].nothing_before_pong()
    row = await db_participant(call["bob"].peer_id)
    assert row.left_at is None


async def test_kicking_a_parked_person_ends_their_janus_seat(sfu_call):
    """The owner kicks Bob while his socket is away: his parked seat leaves Janus."""
    call = await sfu_call()
    await park(call)

    await call["alice"].send({"type": "kick", "peer": call["bob"].peer_id})
    left = await call["alice"].recv_type("peer-left")
    assert left == {"type": "peer-left", "peerId": call["bob"].peer_id, "reason": "kicked"}
    await gone_for_good(call)


async def test_closing_the_room_ends_a_parked_seat(sfu_call):
    """The owner closes the room while Bob's socket is away: his session goes with the room."""
    call = await sfu_call()
    await park(call)
    admin = await lifecycle.admin()

    await call["alice"].send({"type": "close"})
    assert (await call["alice"].recv_type("room-closed"))["reason"] == "owner"
    assert await call["alice"].expect_close() == 4000
    await wait_for(
        call["observer"].me.events, lambda e: e.event.data.get("videoroom") == "destroyed"
    )
    # The destroy reached the parked seat too: its session is gone, not just the room.
    await janus_logged(call["janus"], f"Destroying session {call['ids']['session']};")
    assert await janus_has(call["probe"], call["ids"], call["room"]) == {
        "session": False,
        "publisher": False,
    }
    assert not await admin.room_exists(room=call["room"])


async def test_joining_again_without_the_token_ends_the_parked_seat(connect, sfu_call):
    """Bob opens the room afresh (no resume): his old seat is replaced, its Janus session goes."""
    call = await sfu_call()
    await park(call)

    bob2 = await connect(call["bob_user"])
    answer = await bob2.join(call["number"])
    assert answer["type"] == "joined" and answer["peerId"] != call["bob"].peer_id
    left = await call["alice"].recv_type("peer-left")
    # The wire says `left` for a seat the account took elsewhere (rooms/wire.py).
    assert left == {"type": "peer-left", "peerId": call["bob"].peer_id, "reason": "left"}
    await gone_for_good(call)
    old = await database_sync_to_async(ParticipantRow.objects.get)(peer_id=call["bob"].peer_id)
    assert old.left_reason == "replaced"
