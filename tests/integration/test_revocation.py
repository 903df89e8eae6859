"""Ending sessions and rights so that nothing racing with it survives (real workers, PostgreSQL,
Redis for the session cache).

"Sign out everywhere" deletes each session's cached copy before its database
delete commits; a request in between caches the row again, for the
session's whole age. The test holds that transaction open (as a slow commit
would) while every session makes requests, then commits, and counts the
sessions that still work. Figures are printed (`-s`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.slow

SESSIONS = 20

# Signs the user out everywhere, as the admin's action does, and waits for a
# line on stdin before the transaction commits.
SIGN_OUT = r"""
import sys
from django.contrib.auth import get_user_model
from django.db import transaction
from accounts.services import user_sign_out_everywhere
user = get_user_model().objects.get(username="{username}")
with transaction.atomic():
    ended = user_sign_out_everywhere(user=user)
    print("ENDED", ended, flush=True)
    sys.stdin.readline()
print("COMMITTED", flush=True)
"""


def many_sessions(stack, username: str, count: int) -> list[str]:
    """`count` login sessions of one new user, each tracked as a login tracks it."""
    out = stack.manage(
        "shell",
        "-c",
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.sessions.backends.cached_db import SessionStore\n"
        "from accounts.models import UserSession\n"
        "from accounts.sessions import session_stamp\n"
        f"u = get_user_model().objects.create_user({username!r}, password=None)\n"
        "keys = []\n"
        f"for _ in range({count}):\n"
        "    s = SessionStore()\n"
        "    s['_auth_user_id'] = str(u.pk)\n"
        "    s['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'\n"
        "    s['_auth_user_hash'] = u.get_session_auth_hash()\n"
        "    session_stamp(session=s, user_id=u.pk)\n"
        "    s.create()\n"
        "    UserSession.objects.create(user=u, session_key=s.session_key)\n"
        "    keys.append(s.session_key)\n"
        "print(json.dumps(keys))\n",
    )
    return json.loads(out.strip().splitlines()[-1])


def config_status(base: str, key: str) -> int:
    request = urllib.request.Request(  # noqa: S310 - loopback URL
        f"{base}/api/config", headers={"Cookie": f"sessionid={key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


async def socket_outcome(client) -> int | str:
    """The close code a socket got at its handshake, or "open" when a ping comes back."""
    try:
        await client.request({"type": "ping"})
    except Exception:  # closed: the send or the wait for the answer says so
        return await client.wait_closed()
    return "open"


async def test_sign_out_everywhere_leaves_no_session_alive(make_stack, ws_connect):
    """Requests with each of 20 sessions while "sign out everywhere" is under way (deleted,
    not committed): once it commits, none of the 20 gets in, over HTTP or a socket."""
    stack = make_stack(workers=2)
    username = f"victim-{uuid.uuid4().hex[:6]}"
    keys = many_sessions(stack, username, SESSIONS)
    w1, w2 = stack.workers
    assert [config_status(w1, key) for key in keys] == [200] * SESSIONS

    sign_out = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "shell",
        "--no-imports",
        "-c",
        SIGN_OUT.replace("{username}", username),
        cwd=ROOT,
        env=stack.env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert await sign_out.stdout.readline() == f"ENDED {SESSIONS}\n".encode()
        # Every session, on both workers, five times each, while the deletes are not committed.
        during = await asyncio.gather(
            *(
                asyncio.to_thread(config_status, (w1, w2)[n % 2], key)
                for n in range(5)
                for key in keys
            )
        )
        sign_out.stdin.write(b"\n")
        await sign_out.stdin.drain()
        assert await sign_out.stdout.readline() == b"COMMITTED\n"
    finally:
        await asyncio.wait_for(sign_out.communicate(), 30)
    after = [config_status(w1, key) for key in keys] + [config_status(w2, key) for key in keys]
    sockets = await asyncio.gather(*(ws_connect((w1, w2)[n % 2], k) for n, k in enumerate(keys)))
    closes = await asyncio.gather(*(socket_outcome(s) for s in sockets))
    alive = sum(status == 200 for status in after[:SESSIONS])
    print(
        f"\nFIGURE sign out everywhere: {sum(s == 200 for s in during)} of {len(during)} requests "
        f"during the transaction got in; after it committed {alive} of {SESSIONS} sessions still "
        f"did (HTTP), sockets: {dict(Counter(closes))}"
    )
    assert after == [401] * (2 * SESSIONS)
    assert closes == [4401] * SESSIONS


async def test_a_demoted_staff_socket_loses_staff_powers_at_once(
    make_stack, ws_connect, http_session
):
    """A staff member moderating someone's room from the other worker is demoted: their
    socket closes 4401 at once; back in, they are an ordinary guest (`forbidden`)."""
    stack = make_stack(workers=2)
    w1, w2 = stack.workers
    tag = uuid.uuid4().hex[:6]
    owner, staffer = f"owner-{tag}", f"staff-{tag}"
    stack.create_users(owner, staffer)
    stack.manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        f"get_user_model().objects.filter(username={staffer!r}).update(is_staff=True)",
    )
    owner_web, staff_web = http_session(w1), http_session(w2)
    owner_web.login(owner)
    staff_web.login(staffer)
    alice = await ws_connect(w1, owner_web.cookie("sessionid"))
    number = (await alice.create(pin="2468"))["room"]["number"]
    sam = await ws_connect(w2, staff_web.cookie("sessionid"))
    # Staff need no PIN, and may lock someone else's room.
    assert (await sam.join(number))["type"] == "joined"
    await sam.send({"type": "lock"})
    assert (await alice.next("room-updated"))["room"]["locked"] is True

    stack.manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        f"user = get_user_model().objects.get(username={staffer!r})\n"
        "user.is_staff = False\n"
        "user.save()",
    )
    assert await sam.wait_closed() == 4401
    assert (await alice.next("peer-left"))["peerId"] == sam.peer_id

    # The session still signs them in (their password did not change), as who they are now.
    sam2 = await ws_connect(w2, staff_web.cookie("sessionid"))
    assert (await sam2.join(number, pin="2468"))["code"] == "room-locked"
    await alice.send({"type": "unlock"})
    await alice.next("room-updated")
    assert (await sam2.join(number, pin="2468"))["type"] == "joined"
    answer = await sam2.request({"type": "kick", "peer": alice.peer_id})
    print(f"\nFIGURE demoted staff: socket closed 4401; back in, kick: {answer['code']}")
    assert (answer["type"], answer["code"]) == ("error", "forbidden")
