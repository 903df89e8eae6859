"""Django admin's actions against two real workers (Redis, PostgreSQL): they reach every socket.

The admin's request is served by one worker; the sockets it acts on sit on
the other (and on both). Each test waits on what the sockets receive (their
close codes, the others' `peer-left`), then reads the admin log the request
wrote.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.integration.conftest import PASSWORD, HttpSession

pytestmark = pytest.mark.slow

CONSOLE = "/admin/rooms/room/{room}/console/"


async def barrier(*clients) -> None:
    """A ping round trip on each socket: everything sent to it before has been handled."""
    for client in clients:
        assert (await client.request({"type": "ping"}))["type"] == "pong"


def admin_log(stack, object_id: int) -> list[tuple[str, int, str]]:
    """(change message, action flag, model) of each admin log entry about `object_id`."""
    return stack.sql(
        "SELECT l.change_message, l.action_flag, c.model FROM django_admin_log l"
        " JOIN django_content_type c ON c.id = l.content_type_id"
        " WHERE l.object_id = %s ORDER BY l.id",
        str(object_id),
    )


async def test_admin_removes_a_participant_whose_socket_is_on_the_other_worker(
    make_stack, ws_connect
):
    """Console on worker A, guest on worker B: kicked + 4003 there, the others peer-left; logged."""
    stack = make_stack()
    w1, w2 = stack.workers
    tag = uuid.uuid4().hex[:6]
    host_name, guest_name, other_name, admin_name = (
        f"{who}-{tag}" for who in ("host", "guest", "other", "admin")
    )
    stack.create_users(host_name, guest_name, other_name, admin_name, superusers=(admin_name,))
    host, guest, other, admin = HttpSession(w1), HttpSession(w2), HttpSession(w1), HttpSession(w1)
    for session, name in ((host, host_name), (guest, guest_name), (other, other_name)):
        session.login(name)
    admin.login(admin_name)
    h = await ws_connect(w1, host.cookie("sessionid"))
    number = (await h.create())["room"]["number"]
    g = await ws_connect(w2, guest.cookie("sessionid"))
    assert (await g.join(number))["type"] == "joined"
    o = await ws_connect(w1, other.cookie("sessionid"))
    assert (await o.join(number))["type"] == "joined"
    await h.next("peer-joined")
    await barrier(h, g, o)
    [(room_id,)] = stack.sql(
        "SELECT id FROM rooms_room WHERE number = %s AND closed_at IS NULL", number
    )
    workers = dict(
        stack.sql(
            "SELECT peer_id, worker FROM rooms_participant WHERE room_id = %s AND left_at IS NULL",
            room_id,
        )
    )
    # The guest's socket is on the other worker than the host's and the admin's request.
    assert workers[g.peer_id] != workers[h.peer_id] == workers[o.peer_id]

    # The console (served by worker A) shows the guest, on worker B.
    status, body = admin.request("GET", CONSOLE.format(room=room_id))
    assert status == 200
    html = body.decode()
    assert f'data-peer-id="{g.peer_id}"' in html
    assert f"<code>{workers[g.peer_id]}</code>" in html

    started = time.monotonic()
    status, _ = admin.request(
        "POST", CONSOLE.format(room=room_id) + "remove/", form={"peer": g.peer_id}
    )
    assert status == 200  # the redirect back to the room's page, followed
    assert await g.next("kicked") == {"type": "kicked"}
    assert await g.wait_closed() == 4003
    took = g.closed_at - started
    for client in (h, o):
        assert await client.next("peer-left", peerId=g.peer_id) == {
            "type": "peer-left",
            "peerId": g.peer_id,
            "reason": "kicked",
        }
    print(f"\nFIGURE admin: a removal reached the other worker's socket in {took:.3f} s")
    assert took < 1
    await barrier(h, o)
    assert not h.closed and not o.closed
    assert admin_log(stack, room_id) == [
        (f"Removed {guest_name} (peer {g.peer_id}) from the room.", 2, "room")
    ]
    assert stack.sql("SELECT left_reason FROM rooms_participant WHERE peer_id = %s", g.peer_id) == [
        ("kicked",)
    ]


@pytest.mark.parametrize("where", ["user-admin", "console"])
async def test_blocking_a_user_closes_their_sockets_on_both_workers(make_stack, ws_connect, where):
    """Block (the user admin's action, or the console's button): 4401 on both workers; logged."""
    stack = make_stack()
    w1, w2 = stack.workers
    tag = uuid.uuid4().hex[:6]
    troll_name, host_name, admin_name = (f"{who}-{tag}" for who in ("troll", "host", "admin"))
    stack.create_users(troll_name, host_name, admin_name, superusers=(admin_name,))
    troll_laptop, troll_phone = HttpSession(w1), HttpSession(w2)
    host, admin = HttpSession(w2), HttpSession(w2)
    troll_laptop.login(troll_name)
    troll_phone.login(troll_name)
    host.login(host_name)
    admin.login(admin_name)
    h = await ws_connect(w2, host.cookie("sessionid"))
    number = (await h.create())["room"]["number"]
    in_call = await ws_connect(w1, troll_laptop.cookie("sessionid"))
    assert (await in_call.join(number))["type"] == "joined"
    idle = await ws_connect(w2, troll_phone.cookie("sessionid"))
    await h.next("peer-joined")
    await barrier(h, in_call, idle)
    [(troll_id,)] = stack.sql("SELECT id FROM auth_user WHERE username = %s", troll_name)
    [(room_id,)] = stack.sql(
        "SELECT id FROM rooms_room WHERE number = %s AND closed_at IS NULL", number
    )

    started = time.monotonic()
    if where == "user-admin":
        status, _ = admin.request(
            "POST",
            "/admin/auth/user/",
            form={"action": "block_users", "_selected_action": [troll_id]},
        )
    else:
        status, _ = admin.request(
            "POST", CONSOLE.format(room=room_id) + "block/", form={"peer": in_call.peer_id}
        )
    assert status == 200
    assert await asyncio.gather(in_call.wait_closed(), idle.wait_closed()) == [4401, 4401]
    took = max(in_call.closed_at, idle.closed_at) - started
    print(f"\nFIGURE admin: block ({where}) closed 2 sockets on 2 workers in {took:.3f} s")
    assert took < 1
    assert await h.next("peer-left", peerId=in_call.peer_id) == {
        "type": "peer-left",
        "peerId": in_call.peer_id,
        "reason": "kicked",
    }
    await barrier(h)
    assert stack.sql("SELECT is_active FROM auth_user WHERE id = %s", troll_id) == [(False,)]
    # Both HTTP sessions are gone, and a new login is refused.
    assert troll_laptop.request("GET", "/api/config")[0] == 401
    assert troll_phone.request("GET", "/api/config")[0] == 401
    fresh = HttpSession(w1).request(
        "POST", "/api/auth/login", json_body={"username": troll_name, "password": PASSWORD}
    )
    assert fresh[0] == 401
    assert admin_log(stack, troll_id) == [
        ("Blocked: deactivated and signed out everywhere.", 2, "user")
    ]
