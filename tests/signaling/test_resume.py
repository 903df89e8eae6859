"""Resume (protocol.md, Resume): a dropped socket comes back as the same peer."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from rooms.models import Participant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
async def call(make_user, connect):
    """Alice and Bob in one room: (alice, bob, bob's user, room number, bob's joined)."""
    alice_user = await database_sync_to_async(make_user)("alice")
    bob_user = await database_sync_to_async(make_user)("bob")
    alice, bob = await connect(alice_user), await connect(bob_user)
    number = (await alice.create())["room"]["number"]
    joined = await bob.join(number)
    await alice.recv_type("peer-joined")
    return alice, bob, bob_user, number, joined


async def test_dropped_socket_resumes_as_same_peer(call, connect):
    """A socket lost without a close frame resumes: same peerId, the other side sees nothing."""
    alice, bob, bob_user, number, joined = call
    await bob.ws.disconnect(code=1006)
    await alice.nothing_before_pong()

    bob2 = await connect(bob_user)
    answer = await bob2.request(
        {"type": "join", "room": number, "resume": joined["resumeToken"], "id": "r"}
    )
    assert answer["type"] == "joined"
    assert (answer["peerId"], answer["resumed"], answer["replayed"], answer["re"]) == (
        joined["peerId"],
        True,
        False,
        "r",
    )
    assert [peer["peerId"] for peer in answer["peers"]] == [alice.peer_id]
    await alice.nothing_before_pong()

    # Signaling goes to the new socket, both ways.
    await alice.send({"type": "offer", "to": joined["peerId"], "sdp": "restart"})
    assert (await bob2.recv_type("offer"))["from"] == alice.peer_id
    await bob2.send({"type": "answer", "to": alice.peer_id, "sdp": "ok"})
    assert (await alice.recv_type("answer"))["from"] == joined["peerId"]


async def test_clean_close_leaves_at_once(call):
    """A close frame (tab closed) is a leave: peer-left `disconnected` right away."""
    alice, bob, _, _, joined = call
    await bob.ws.disconnect(code=1001)
    assert await alice.recv_type("peer-left") == {
        "type": "peer-left",
        "peerId": joined["peerId"],
        "reason": "disconnected",
    }


async def test_someone_elses_token_does_not_resume(call, connect, make_user):
    """A token used by another user is refused: a fresh peer, the owner's peer untouched."""
    alice, bob, _, number, joined = call
    await bob.ws.disconnect(code=1006)
    mallory = await connect(await database_sync_to_async(make_user)("mallory"))
    answer = await mallory.join(number, resume=joined["resumeToken"])
    assert answer["type"] == "joined" and answer["resumed"] is False
    assert answer["peerId"] != joined["peerId"]
    assert (await alice.recv_type("peer-joined"))["peer"]["peerId"] == answer["peerId"]


async def test_forged_token_does_not_resume(call, connect):
    """A token with a bad signature is refused and the join is an ordinary one."""
    _, bob, bob_user, number, joined = call
    await bob.ws.disconnect(code=1006)
    bob2 = await connect(bob_user)
    answer = await bob2.join(number, resume=joined["resumeToken"][:-3] + "xyz")
    assert answer["resumed"] is False and answer["peerId"] != joined["peerId"]


async def test_grace_period_ends_in_timeout(call, connect, settings):
    """Not back within the grace period: the others get peer-left `timeout`, resume fails."""
    settings.RESUME_GRACE = 1
    settings.PRESENCE_SWEEP_INTERVAL = 0.2
    alice, bob, bob_user, number, joined = call
    await bob.ws.disconnect(code=1006)
    bob2 = await connect(bob_user)
    left = await alice.recv_type("peer-left", timeout=5)
    assert left == {"type": "peer-left", "peerId": joined["peerId"], "reason": "timeout"}
    participant = await database_sync_to_async(Participant.objects.get)(peer_id=joined["peerId"])
    assert participant.left_reason == "timeout"
    answer = await bob2.join(number, resume=joined["resumeToken"])
    assert answer["resumed"] is False and answer["peerId"] != joined["peerId"]
