"""TURN relays against a real coturn (this repo's deploy/turnserver.conf) and a real worker.

The attack of issue 22: throwaway accounts from one address take every relay
coturn has (`total-quota`), and everyone else's calls get 486 and cannot
relay. Credentials now come only to seated sockets, and coturn counts them
per client address (accounts/ice.py): the script's address holds its pool,
the other addresses keep theirs, and a classroom behind one address still
relays. Client addresses are loopback ones (127.0.0.2, 127.0.0.3...): the
worker and coturn both see them as the source of what the test sends.
Figures are printed (`-s`).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.deploy import turnclient
from tests.deploy.procs import processes
from tests.deploy.test_turn import start_coturn

pytestmark = pytest.mark.slow

SCRIPT, OTHER, SCHOOL = "127.0.0.2", "127.0.0.3", "127.0.0.4"
# deploy/turnserver.conf: user-quota (per address pool), total-quota.
POOL, TOTAL = 300, 1000


@pytest.fixture
def coturn(tmp_path: Path):
    """coturn with the production config, relaying on loopback over enough ports for
    total-quota (so the quotas, not the ports, are what runs out)."""
    secret = secrets.token_urlsafe(32)
    with processes(tmp_path) as start:
        proc, port, _tls, runtime = start_coturn(start, secret=secret, relay_ports=TOTAL + 20)
        try:
            yield port, secret
        finally:
            proc.stop()
            shutil.rmtree(runtime, ignore_errors=True)


def turn_entry(joined: dict) -> dict:
    (entry,) = [server for server in joined["ice"]["iceServers"] if "username" in server]
    return entry


@pytest.fixture
def clients():
    """TURN client sockets, kept open to the end: a closed one's port could come back for a
    new socket, and coturn would take that for the old allocation's client (437)."""
    held: list[turnclient.TurnClient] = []
    yield held
    for client in held:
        client.close()


def allocate(
    port: int, entry: dict, source: str, held: list, *, at_most: int
) -> tuple[int, int | None]:
    """Allocate relays with one credential until refused or `at_most`: (granted, refusal code).

    Each allocation is its own client socket, as a browser's peer connections are.
    """
    granted = 0
    while granted < at_most:
        client = turnclient.TurnClient("127.0.0.1", port, source=source)
        held.append(client)
        try:
            client.allocate(entry["username"], entry["credential"])
        except turnclient.TurnError as err:
            return granted, err.code
        granted += 1
    return granted, None


async def seat(stack, ws_connect, session_key: str, address: str) -> dict:
    """A socket from `address` that creates a room: its `joined`, with the ICE servers."""
    client = await ws_connect(stack.workers[0], session_key, local_addr=(address, 0))
    return await client.create()


async def test_thirty_accounts_from_one_address_cannot_starve_another(
    make_stack, ws_connect, coturn, clients
):
    """30 script accounts from one address hold its pool of relays (300), not all 1000: a
    second address still relays, and 30 people behind a third (a classroom in calls of four:
    9 allocations each) all relay."""
    port, secret = coturn
    stack = make_stack(
        workers=1, TURN_URLS=f"turn:127.0.0.1:{port}?transport=udp", TURN_SECRET=secret
    )
    keys = [key for _, key in stack.sessions(61)]
    script = await asyncio.gather(*(seat(stack, ws_connect, k, SCRIPT) for k in keys[:30]))
    started = time.monotonic()
    outcomes = [
        await asyncio.to_thread(allocate, port, turn_entry(joined), SCRIPT, clients, at_most=TOTAL)
        for joined in script
    ]
    took = time.monotonic() - started
    taken = sum(granted for granted, _ in outcomes)
    other = turn_entry(await seat(stack, ws_connect, keys[30], OTHER))
    other_granted = await asyncio.to_thread(allocate, port, other, OTHER, clients, at_most=1)
    school = await asyncio.gather(*(seat(stack, ws_connect, k, SCHOOL) for k in keys[31:]))
    classroom = [
        await asyncio.to_thread(allocate, port, turn_entry(joined), SCHOOL, clients, at_most=9)
        for joined in school
    ]
    print(
        f"\nFIGURE turn quota: 30 accounts from one address took {taken} relays in {took:.1f} s "
        f"(refusals {dict(Counter(code for _, code in outcomes))}); another address: "
        f"{other_granted}; a classroom of 30 behind a third, 9 each: "
        f"{sum(granted for granted, _ in classroom)} of 270"
    )
    assert taken == POOL
    assert [code for _, code in outcomes] == [486] * 30
    assert other_granted == (1, None)
    assert classroom == [(9, None)] * 30


async def test_unseated_and_blocked_accounts_get_no_relay(
    make_stack, ws_connect, http_session, coturn, clients
):
    """Signed in but in no call: no TURN credential (HTTP or socket). Blocked in a call: the
    socket closes 4401 and its last credential allocates until its expiry (TURN_TTL, here
    10 s, after it was issued) and not a second later."""
    port, secret = coturn
    stack = make_stack(
        workers=1,
        TURN_URLS=f"turn:127.0.0.1:{port}?transport=udp",
        TURN_SECRET=secret,
        TURN_TTL="10",
    )
    stack.create_user("mallory")
    web = http_session(stack.workers[0])
    assert [s for s in web.login("mallory")["iceServers"] if "username" in s] == []
    status, body = web.request("GET", "/api/config")
    assert (status, b"credential" in body) == (200, False)
    client = await ws_connect(stack.workers[0], web.cookie("sessionid"))
    assert (await client.request({"type": "ping"}))["type"] == "pong"
    assert client.log == [client.log[0]]  # the pong, nothing else

    entry = turn_entry(await client.create())
    expiry = int(entry["username"].split(":")[0])
    assert await asyncio.to_thread(allocate, port, entry, SCRIPT, clients, at_most=1) == (1, None)
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "from accounts.services import user_block\n"
        "user_block(user=get_user_model().objects.get(username='mallory'))",
    )
    assert await client.wait_closed() == 4401
    assert client.seen("ice-servers") == []

    def refused_at() -> tuple[int, float]:
        """Try the credential every 0.1 s (each granted relay given back) until refused."""
        while True:
            client = turnclient.TurnClient("127.0.0.1", port, source=SCRIPT)
            clients.append(client)
            try:
                client.allocate(entry["username"], entry["credential"])
            except turnclient.TurnError as err:
                return err.code, time.time()
            client.release()
            time.sleep(0.1)

    code, when = await asyncio.to_thread(refused_at)
    print(
        f"\nFIGURE turn blocked: credential refused {code} at {when - expiry:+.2f} s from its "
        f"expiry (issued {10} s before it)"
    )
    assert code == 401
    assert expiry <= when < expiry + 3  # coturn reads its clock once a second
