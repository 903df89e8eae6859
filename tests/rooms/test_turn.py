"""TURN credentials over the signaling socket: only to a seated socket, renewed while seated.

The real router (WebsocketCommunicator); the credentials are checked as
coturn checks them (tests/accounts/test_ice.py), and against a real coturn in
tests/integration/test_turn_quota.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from channels.db import database_sync_to_async

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cr3t-shared-with-coturn"
TURN_URLS = ["turn:turn.example.org:3478?transport=udp"]
STUN = {"urls": ["stun:turn.example.org:3478"]}
SCHOOL = ("198.51.100.20", 40000)
HOME = ("203.0.113.9", 50000)


@pytest.fixture
def turn(settings):
    settings.STUN_URLS = STUN["urls"]
    settings.TURN_URLS = TURN_URLS
    settings.TURN_SECRET = SECRET
    settings.TURN_TTL = 300
    return settings


def check_ice(ice: dict, *, pool: str, issued_between: tuple[float, float], ttl: int) -> int:
    """Assert `ice` is STUN plus a valid TURN credential of `pool`; return its expiry."""
    assert set(ice) == {"iceServers", "iceTransportPolicy", "expiresAt"}
    assert ice["iceTransportPolicy"] == "all"
    stun, relay = ice["iceServers"]
    assert stun == STUN
    assert set(relay) == {"urls", "username", "credential"}
    assert relay["urls"] == TURN_URLS
    expiry, relay_pool = relay["username"].split(":", 1)
    assert relay_pool == pool
    assert int(issued_between[0]) + ttl <= int(expiry) <= int(issued_between[1]) + ttl
    assert ice["expiresAt"] == datetime.fromtimestamp(int(expiry), tz=UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    signed = hmac.new(SECRET.encode(), relay["username"].encode(), hashlib.sha1).digest()
    assert relay["credential"] == base64.b64encode(signed).decode()
    return int(expiry)


async def test_a_socket_gets_turn_only_once_seated(turn, connect, make_user):
    """Before a join nothing; `joined` carries STUN and a TURN credential whose quota pool is
    the socket's address; two accounts behind one address share a pool, another address not."""
    alice = await connect(await database_sync_to_async(make_user)("alice"), client=SCHOOL)
    await alice.nothing_before_pong()
    before = time.time()
    created = await alice.create()
    check_ice(created["ice"], pool=SCHOOL[0], issued_between=(before, time.time()), ttl=300)

    bob = await connect(await database_sync_to_async(make_user)("bob"), client=SCHOOL)
    carol = await connect(await database_sync_to_async(make_user)("carol"), client=HOME)
    for peer, pool in ((bob, SCHOOL[0]), (carol, HOME[0])):
        before = time.time()
        joined = await peer.join(alice.room["number"])
        assert joined["type"] == "joined", joined
        check_ice(joined["ice"], pool=pool, issued_between=(before, time.time()), ttl=300)


async def test_credentials_are_renewed_while_seated_and_not_after_leaving(turn, connect, make_user):
    """Half-way through a credential's life the seat gets `ice-servers` with a fresh one; a
    socket that left its seat gets none."""
    turn.TURN_TTL = 2  # renewed every second
    alice = await connect(await database_sync_to_async(make_user)("alice"), client=HOME)
    bob = await connect(await database_sync_to_async(make_user)("bob"), client=SCHOOL)
    await bob.create()
    joined = await alice.join(bob.room["number"])
    await bob.recv_type("peer-joined")
    await bob.send({"type": "leave"})
    assert (await alice.recv_type("peer-left"))["reason"] == "left"
    expiries = [check_ice(joined["ice"], pool=HOME[0], issued_between=(0, time.time()), ttl=2)]
    for _ in range(2):
        renewed = await alice.recv_type("ice-servers", timeout=3)
        body = {key: value for key, value in renewed.items() if key != "type"}
        expiries.append(check_ice(body, pool=HOME[0], issued_between=(0, time.time()), ttl=2))
    assert expiries[0] < expiries[1] < expiries[2]
    # Bob's renewal was due a second after his create, before Alice's two: none came.
    await bob.nothing_before_pong()


@pytest.mark.postgres
async def test_a_resumed_seat_gets_fresh_credentials(turn, connect, make_user):
    """A socket that resumes its seat after a drop gets a TURN credential in its `joined`."""
    alice = await connect(await database_sync_to_async(make_user)("alice"), client=HOME)
    bob_user = await database_sync_to_async(make_user)("bob")
    bob = await connect(bob_user, client=SCHOOL)
    await alice.create()
    joined = await bob.join(alice.room["number"])
    await alice.recv_type("peer-joined")
    await bob.ws.disconnect(code=1006)
    # Back from another network.
    bob2 = await connect(bob_user, client=HOME)
    before = time.time()
    answer = await bob2.join(alice.room["number"], resume=joined["resumeToken"])
    assert (answer["type"], answer["resumed"]) == ("joined", True)
    check_ice(answer["ice"], pool=HOME[0], issued_between=(before, time.time()), ttl=300)
