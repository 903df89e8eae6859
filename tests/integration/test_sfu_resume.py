"""A person through the SFU resumes on another worker: the Janus seat is claimed, not rebuilt.

Two real daphne workers, real Redis and PostgreSQL, and a real Janus
(tests/sfu/janusproc.py: its own network namespace, its API on a UNIX
socket the workers and this test share). Bob publishes on worker 1; his
socket drops (no close frame), or worker 1 is SIGKILLed; he resumes on
worker 2, which claims his Janus session (docs/sfu.md section 6). Janus is
asked directly, on a connection of the test's own: `keepalive` on Bob's
session id and a request on his publisher handle id (458 / 459 once gone),
and an observer in the room that would hear his feed leave and join again
if the seat were rebuilt. Bob's ids are read from his seat's record in Redis
(what worker 1 wrote), then checked against Janus.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import pytest

from sfu import JanusClient, JanusError, JanusSessionLost, VideoRoomAdmin, VideoRoomParticipant
from sfu.videoroom import room_credentials
from tests.sfu import sdp
from tests.sfu.conftest import wait_for
from tests.sfu.janusproc import JanusServer, janus_servers

pytestmark = pytest.mark.slow


@pytest.fixture
def janus(tmp_path) -> JanusServer:
    """A Janus of the test's own (one test restarts it)."""
    with janus_servers(tmp_path) as make:
        yield make(name="janus-resume")


@pytest.fixture
def sfu_stack(make_stack, janus):
    """Two workers on that Janus."""
    return make_stack(
        JANUS_URL=janus.url,
        JANUS_API_SECRET=janus.api_secret,
        JANUS_ADMIN_KEY=janus.admin_key,
    )


@pytest.fixture
async def janus_client(janus):
    client = JanusClient(url=janus.url, api_secret=janus.api_secret, request_timeout=5.0)
    yield client
    await client.close()


async def worker_logged(stack, text: str, *, seconds: float = 10) -> None:
    """Wait for a worker to log `text` (the barrier for what a worker does on its own)."""
    deadline = time.monotonic() + seconds
    while text not in stack.worker_logs():
        if time.monotonic() > deadline:
            raise AssertionError(f"no worker logged {text!r} within {seconds}s")
        await asyncio.sleep(0.05)


def record_of(stack, peer_id: str) -> dict[str, Any]:
    """Bob's seat record in Redis: its owner (a worker's id) and Janus' ids."""
    stored = stack.redis().hgetall(f"{stack.prefix}:sfu-seat:{peer_id}")
    return {"owner": stored["owner"], **json.loads(stored["record"])}


async def janus_has(probe: JanusClient, record: dict[str, Any]) -> dict[str, bool]:
    """Whether Janus has Bob's session and his publisher handle."""
    found = {}
    try:
        await probe.request(
            {"janus": "keepalive", "session_id": record["session"]}, ack_is_final=True
        )
        found["session"] = True
    except JanusSessionLost:
        found["session"] = False
    message = {
        "janus": "message",
        "session_id": record["session"],
        "handle_id": record["publisher"],
        "body": {"request": "listparticipants", "room": record["room"]},
    }
    try:
        await probe.request(message)
        found["publisher"] = True
    except JanusError as err:
        assert err.code in (458, 459), err
        found["publisher"] = False
    return found


async def barrier_heard(
    observer: VideoRoomParticipant, room: int, pin: str
) -> list[dict[str, Any]]:
    """What the observer heard until a join of its own (events on a handle arrive in order)."""
    barrier = await VideoRoomParticipant.join(
        observer.session, room=room, pin=pin, display="barrier"
    )
    _, before = await wait_for(
        observer.events, lambda e: (e.event.data.get("joining") or {}).get("display") == "barrier"
    )
    await barrier.leave()
    _, after = await wait_for(
        observer.events, lambda e: e.event.data.get("leaving") == barrier.feed_id
    )
    return [e.event.data for e in [*before, *after] if e.event.type == "event"]


async def sfu_call(stack, ws_connect, janus, janus_client) -> dict[str, Any]:
    """Alice on worker 2 opens an `sfu` room; Bob joins on worker 1 and publishes; an observer."""
    one, two = stack.workers
    (_, alice_key), (_, bob_key) = stack.sessions(2)
    alice = await ws_connect(two, alice_key)
    number = (await alice.create(media="sfu", capacity=6))["room"]["number"]
    bob = await ws_connect(one, bob_key)
    assert (await bob.join(number))["type"] == "joined"
    await alice.next("peer-joined")
    [(room,)] = stack.sql("SELECT id FROM rooms_room WHERE number = %s", number)
    [(feed,)] = stack.sql("SELECT id FROM rooms_participant WHERE peer_id = %s", bob.peer_id)
    creds = room_credentials(key=janus.admin_key, room=room)
    admin = await VideoRoomAdmin.attach(
        await janus_client.create_session(), admin_key=janus.admin_key
    )
    await admin.create_room(room=room, secret=creds.secret, pin=creds.pin, publishers=6)
    observer = await VideoRoomParticipant.join(
        await janus_client.create_session(), room=room, pin=creds.pin, display="observer"
    )
    answer = await bob.request({"type": "sfu-offer", "sdp": sdp.publisher_offer()})
    assert answer["type"] == "sfu-answer", answer
    heard = await barrier_heard(observer, room, creds.pin)
    assert heard == [
        {"videoroom": "event", "room": room, "joining": {"id": feed, "display": bob.peer_id}}
    ]
    return {
        "alice": alice,
        "bob": bob,
        "bob_key": bob_key,
        "number": number,
        "room": room,
        "feed": feed,
        "pin": creds.pin,
        "observer": observer,
        "admin": admin,
        "record": record_of(stack, bob.peer_id),
    }


async def resume_on_worker_two(stack, ws_connect, call: dict[str, Any]) -> Any:
    bob2 = await ws_connect(stack.workers[1], call["bob_key"])
    started = time.monotonic()
    answer = await bob2.join(call["number"], resume=call["bob"].joined["resumeToken"])
    # The claim follows `joined` in the same step: a ping's answer comes after it.
    assert (await bob2.request({"type": "ping"}))["type"] == "pong"
    bob2.resumed_in = time.monotonic() - started
    assert (answer["type"], answer["peerId"], answer["resumed"]) == (
        "joined",
        call["bob"].peer_id,
        True,
    )
    return bob2


async def carried_on(stack, bob2, call: dict[str, Any], janus_client, janus) -> None:
    """Bob's seat lives on worker 2 with the same session and handles; nobody in Janus noticed."""
    before = call["record"]
    assert (await bob2.request({"type": "ping"}))["type"] == "pong"
    print(f"\nFIGURE sfu resume on worker 2: join sent -> seat claimed {bob2.resumed_in:.3f} s")
    assert bob2.seen("sfu-restart") == []
    after = record_of(stack, bob2.peer_id)
    assert after["owner"] != before["owner"]
    assert {k: after[k] for k in ("session", "publisher", "feed", "private", "room")} == {
        k: before[k] for k in ("session", "publisher", "feed", "private", "room")
    }
    assert await janus_has(janus_client, before) == {"session": True, "publisher": True}
    feed = call["feed"]
    heard = await barrier_heard(call["observer"], call["room"], call["pin"])
    assert [e for e in heard if feed in (e.get("leaving"), e.get("kicked"))] == []
    assert [e for e in heard if (e.get("joining") or {}).get("id") == feed] == []
    # Worker 2 drives the adopted publisher handle: a renegotiation is answered.
    answer = await bob2.request({"type": "sfu-offer", "sdp": sdp.publisher_offer()})
    assert answer["type"] == "sfu-answer", answer
    assert record_of(stack, bob2.peer_id)["session"] == before["session"]
    # Leaving ends it, once, from worker 2.
    await bob2.send({"type": "leave"})
    await wait_for(call["observer"].events, lambda e: e.event.data.get("leaving") == feed)
    destroyed = f"Destroying session {before['session']};"
    deadline = time.monotonic() + 10
    while destroyed not in janus.proc.output:
        assert time.monotonic() < deadline, "Bob's session was never destroyed"
        await asyncio.sleep(0.05)
    assert janus.proc.output.count(destroyed) == 1
    assert await janus_has(janus_client, before) == {"session": False, "publisher": False}


async def test_resume_on_another_worker_claims_the_janus_session(
    sfu_stack, ws_connect, janus, janus_client
):
    """Bob's socket drops on worker 1 and he resumes on worker 2: same session, no sfu-restart."""
    call = await sfu_call(sfu_stack, ws_connect, janus, janus_client)
    bob = call["bob"]

    bob.ws.transport.abort()  # no close frame
    await worker_logged(sfu_stack, f"detach room={call['number']} peer={bob.peer_id}")
    bob2 = await resume_on_worker_two(sfu_stack, ws_connect, call)

    # Worker 1 let go of its parked seat without ending it.
    session = call["record"]["session"]
    await worker_logged(
        sfu_stack, f"{bob.peer_id} resumed on another worker; Janus session {session} handed over"
    )
    await carried_on(sfu_stack, bob2, call, janus_client, janus)


async def test_resume_after_the_worker_was_killed_claims_the_janus_session(
    sfu_stack, ws_connect, janus, janus_client
):
    """Worker 1 is SIGKILLed mid-call: Bob resumes on worker 2 with the seat its record names."""
    call = await sfu_call(sfu_stack, ws_connect, janus, janus_client)

    proc = sfu_stack.signal_worker(sfu_stack.workers[0], signal.SIGKILL)
    proc.wait(timeout=10)
    assert await call["bob"].wait_closed() == 1006
    bob2 = await resume_on_worker_two(sfu_stack, ws_connect, call)

    await carried_on(sfu_stack, bob2, call, janus_client, janus)


async def test_resume_after_janus_restarted_falls_back_to_sfu_restart(
    sfu_stack, ws_connect, janus, janus_client
):
    """Janus restarted while Bob was away: the claim is refused, Bob is told to publish anew."""
    call = await sfu_call(sfu_stack, ws_connect, janus, janus_client)
    bob = call["bob"]
    bob.ws.transport.abort()
    await worker_logged(sfu_stack, f"detach room={call['number']} peer={bob.peer_id}")
    janus.kill()
    janus.start()

    bob2 = await resume_on_worker_two(sfu_stack, ws_connect, call)

    # Answered before the ping's pong (resume_on_worker_two waited for it).
    assert bob2.seen("sfu-restart") == [{"type": "sfu-restart", "reason": "resumed"}]
    session = call["record"]["session"]
    await worker_logged(sfu_stack, f"could not claim {bob.peer_id}'s Janus session {session}")
    # Publishing again makes a new session (and the room again) on worker 2.
    answer = await bob2.request({"type": "sfu-offer", "sdp": sdp.publisher_offer()})
    assert answer["type"] == "sfu-answer", answer
    assert record_of(sfu_stack, bob2.peer_id)["session"] != session


async def test_resume_on_another_worker_while_the_old_socket_still_looks_open(
    sfu_stack, ws_connect, janus, janus_client
):
    """Bob's old socket on worker 1 is still open (half-open TCP): replaced, his seat lives on."""
    call = await sfu_call(sfu_stack, ws_connect, janus, janus_client)

    bob2 = await resume_on_worker_two(sfu_stack, ws_connect, call)

    assert await call["bob"].wait_closed() == 4409
    session = call["record"]["session"]
    await worker_logged(
        sfu_stack,
        f"{call['bob'].peer_id} resumed on another worker; Janus session {session} handed over",
    )
    await carried_on(sfu_stack, bob2, call, janus_client, janus)
