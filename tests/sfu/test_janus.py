"""sfu/janus.py against real Janus: sessions, keepalive, events, reclaim, restarts, auth."""

from __future__ import annotations

import asyncio

import pytest

from sfu import (
    LOST,
    RECLAIMED,
    JanusDisconnected,
    JanusError,
    JanusSessionLost,
    PluginError,
    VideoRoomAdmin,
    VideoRoomParticipant,
    room_credentials,
)
from sfu.videoroom import PLUGIN
from tests.sfu.conftest import wait_for

pytestmark = pytest.mark.slow


async def test_keepalive_keeps_a_session_and_silence_loses_it(make_janus, make_client):
    """With a 2 s session timeout, a session sending keepalives lives on; a silent one is lost."""
    server = make_janus(args=("--session-timeout=2",))
    talking = make_client(server, keepalive_interval=0.5)
    silent = make_client(server, keepalive_interval=600)
    alive = await talking.create_session()
    quiet = await silent.create_session()
    handle = await quiet.attach(plugin=PLUGIN)

    lost, skipped = await wait_for(handle.events, lambda e: e.type == LOST, seconds=8)

    # Janus detaches the handles of a session it times out, in either order with the timeout.
    assert [e.type for e in skipped] in ([], ["detached"])
    assert lost.data == {"session_id": quiet.id, "reason": "Janus timed the session out"}
    assert quiet.state == "lost"
    with pytest.raises(JanusSessionLost):
        await quiet.attach(plugin=PLUGIN)
    # As old as the lost one, and kept alive: it still works.
    assert alive.state == "active"
    await alive.attach(plugin=PLUGIN)


async def test_destroyed_session_is_gone_from_janus(client):
    """destroy() ends the session in Janus: Janus answers 458 for it afterwards."""
    session = await client.create_session()
    await session.destroy()

    assert session.state == "destroyed"
    with pytest.raises(JanusSessionLost):
        await session.keepalive()
    with pytest.raises(JanusSessionLost) as raised:
        await client.request({"janus": "keepalive", "session_id": session.id}, ack_is_final=True)
    assert raised.value.code == 458


async def test_replies_match_their_requests_when_many_are_in_flight(client, admin, room_id):
    """Concurrent synchronous and asynchronous plugin requests each get their own answer."""
    secret = room_credentials(key="k" * 16, room=room_id).secret
    await admin.create_room(room=room_id, secret=secret, pin=None, publishers=12)
    session = await client.create_session()

    results = await asyncio.gather(
        *(
            VideoRoomParticipant.join(session, room=room_id, pin=None, display=f"person {n}")
            for n in range(8)
        ),
        *(admin.room_exists(room=room_id + n) for n in range(8)),
    )

    people, exists = results[:8], results[8:]
    assert exists == [True] + [False] * 7
    assert len({p.feed_id for p in people}) == 8
    listed = await admin.list_participants(room=room_id)
    assert sorted(p["display"] for p in listed) == sorted(f"person {n}" for n in range(8))
    await admin.destroy_room(room=room_id, secret=secret)


async def test_dropped_connection_is_reclaimed_with_media_state_kept(janus, client, admin, room_id):
    """The WebSocket drops, Janus lives: the session is claimed back, handles hear `reclaimed`."""
    secret = room_credentials(key=janus.admin_key, room=room_id).secret
    await admin.create_room(room=room_id, secret=secret, pin=None, publishers=4)
    session = await client.create_session()
    alice = await VideoRoomParticipant.join(session, room=room_id, pin=None, display="Alice")

    client._connection.ws.transport.abort()  # the network drops it, no close frame

    event, _ = await wait_for(
        alice.events, lambda e: e.role == "publisher" and e.event.type == RECLAIMED
    )
    assert event.event.data == {"session_id": session.id}
    assert session.state == "active"
    assert client.connections_made == 2
    listed = await admin.list_participants(room=room_id)
    assert listed == [{"id": alice.feed_id, "display": "Alice", "publisher": False}]
    # The same handle, on the new connection.
    await alice.configure(display="Alice L.")
    listed = await admin.list_participants(room=room_id)
    assert listed == [{"id": alice.feed_id, "display": "Alice L.", "publisher": False}]
    await admin.destroy_room(room=room_id, secret=secret)


async def test_another_worker_claims_a_dead_workers_participant(janus, make_client, admin, room_id):
    """Worker A goes away; worker B claims A's session in time: the participant lives on."""
    secret = room_credentials(key=janus.admin_key, room=room_id).secret
    await admin.create_room(room=room_id, secret=secret, pin=None, publishers=4)
    worker_a = make_client(janus)
    session = await worker_a.create_session()
    alice = await VideoRoomParticipant.join(session, room=room_id, pin=None, display="Alice")
    # What A stored with Alice's peer, for whoever resumes her.
    stored = {
        "session_id": session.id,
        "feed_id": alice.feed_id,
        "private_id": alice.private_id,
        "publisher_handle_id": alice.publisher.id,
    }
    await worker_a.close()  # to Janus, like a crash: its transport is gone

    worker_b = make_client(janus)
    taken = await worker_b.claim_session(session_id=stored.pop("session_id"))
    moved = VideoRoomParticipant.adopt(taken, room=room_id, pin=None, **stored)
    await moved.configure(display="Alice, moved")

    assert await admin.list_participants(room=room_id) == [
        {"id": alice.feed_id, "display": "Alice, moved", "publisher": False}
    ]
    await moved.leave()
    assert await admin.list_participants(room=room_id) == []
    with pytest.raises(JanusSessionLost) as raised:
        await worker_b.claim_session(session_id=session.id + 1)
    assert raised.value.code == 458
    await admin.destroy_room(room=room_id, secret=secret)


async def test_a_session_released_to_another_worker_lives_on_in_janus(janus, make_client):
    """Worker B claims a live session of worker A; A releases it: gone from A, alive in Janus."""
    worker_a, worker_b = make_client(janus), make_client(janus)
    session = await worker_a.create_session()
    handle = await session.attach(plugin=PLUGIN)
    taken = await worker_b.claim_session(session_id=session.id)

    session.release()

    assert (session.state, handle.closed) == ("released", True)
    await session.destroy()  # a late close on A: nothing reaches Janus
    with pytest.raises(JanusSessionLost):
        await session.keepalive()
    assert session.id not in worker_a._sessions
    # Janus still has it, for B.
    await taken.keepalive()
    moved = taken.adopt(handle_id=handle.id, plugin=PLUGIN)
    await moved.detach()
    await taken.destroy()


async def test_janus_restart_is_reported_and_everything_can_be_made_again(make_janus, make_client):
    """SIGKILL and restart: the claim is refused, handles hear `lost`, calls raise; start over."""
    server = make_janus(name="janus-restart")
    client = make_client(server)
    session = await client.create_session()
    admin = await VideoRoomAdmin.attach(session, admin_key=server.admin_key)
    secret = room_credentials(key=server.admin_key, room=4242).secret
    await admin.create_room(room=4242, secret=secret, pin=None, publishers=4)
    people = await client.create_session()
    alice = await VideoRoomParticipant.join(people, room=4242, pin=None, display="Alice")

    server.kill()
    server.start()

    event, _ = await wait_for(alice.events, lambda e: e.event.type == LOST, seconds=10)
    assert event.event.data["session_id"] == people.id
    assert "no longer knows the session" in event.event.data["reason"]
    lost, _ = await wait_for(admin.handle.events, lambda e: e.type == LOST, seconds=10)
    assert lost.data["session_id"] == session.id
    with pytest.raises(JanusSessionLost):
        await admin.room_exists(room=4242)
    with pytest.raises(JanusSessionLost):
        await alice.configure(display="again")

    session = await client.create_session()
    admin = await VideoRoomAdmin.attach(session, admin_key=server.admin_key)
    assert await admin.room_exists(room=4242) is False
    await admin.create_room(room=4242, secret=secret, pin=None, publishers=4)
    people = await client.create_session()
    alice = await VideoRoomParticipant.join(people, room=4242, pin=None, display="Alice")
    assert await admin.list_participants(room=4242) == [
        {"id": alice.feed_id, "display": "Alice", "publisher": False}
    ]


async def test_janus_down_past_the_reclaim_window_loses_sessions(make_janus, make_client):
    """Janus down past the reclaim window: the sessions are lost, not waited for forever."""
    server = make_janus(name="janus-down")
    client = make_client(server, reclaim_window=1.0)
    session = await client.create_session()
    handle = await session.attach(plugin=PLUGIN)

    server.kill()

    event, _ = await wait_for(handle.events, lambda e: e.type == LOST, seconds=5)
    assert event.data["reason"].startswith("could not reclaim within 1.0s")
    with pytest.raises(JanusSessionLost):
        await session.attach(plugin=PLUGIN)
    with pytest.raises(JanusDisconnected):
        await client.create_session()
    server.start()
    fresh = await client.create_session()
    await fresh.attach(plugin=PLUGIN)


async def test_requests_without_the_api_secret_are_refused(janus, make_client):
    """The hardened config answers 403 to a session request without the secret, or a wrong one."""
    for secret in ("", "not-the-secret-at-all"):
        client = make_client(janus, api_secret=secret)
        with pytest.raises(JanusError) as raised:
            await client.create_session()
        assert (raised.value.code, raised.value.reason) == (
            403,
            "Unauthorized request (wrong or missing secret/token)",
        )


async def test_only_the_videoroom_and_websockets_are_loaded(client):
    """info lists one plugin and one transport, no library versions; other plugins are absent."""
    info = await client.info()

    assert list(info["plugins"]) == ["janus.plugin.videoroom"]
    assert list(info["transports"]) == ["janus.transport.websockets"]
    assert list(info["events"]) == []
    assert list(info["loggers"]) == []
    assert "dependencies" not in info
    assert (info["session-timeout"], info["reclaim-session-timeout"]) == (60, 30)
    assert (info["api_secret"], info["auth_token"]) == (True, False)
    session = await client.create_session()
    with pytest.raises(JanusError) as raised:
        await session.attach(plugin="janus.plugin.echotest")
    assert raised.value.code == 460
    assert raised.value.reason == "No such plugin 'janus.plugin.echotest'"


async def test_room_creation_needs_the_admin_key(janus, client, room_id):
    """Without the admin key Janus refuses to create a room; with a wrong one too."""
    session = await client.create_session()
    handle = await session.attach(plugin=PLUGIN)
    with pytest.raises(PluginError) as raised:
        await handle.request({"request": "create", "room": room_id})
    assert raised.value.code == 429
    assert raised.value.reason == "Missing mandatory element (admin_key)"
    impostor = VideoRoomAdmin(handle, admin_key="wrong-key-wrong-key")
    with pytest.raises(PluginError) as raised:
        await impostor.create_room(room=room_id, secret="s" * 32, pin=None, publishers=2)
    assert (raised.value.code, raised.value.reason) == (433, "Unauthorized (wrong admin_key)")
    assert await impostor.room_exists(room=room_id) is False


async def test_tcp_listener_admits_only_the_listed_addresses(make_janus, make_client):
    """Over TCP (as deployed) 127.0.0.1 gets in when listed, and is shut out when it is not."""
    listed = make_janus(name="janus-tcp", isolated=False)
    assert (await make_client(listed).info())["name"] == "Janus WebRTC Server"

    other = make_janus(name="janus-acl", isolated=False, env={"JANUS_WS_ACL": "127.0.0.2"})
    with pytest.raises(JanusDisconnected):
        await make_client(other).info()
