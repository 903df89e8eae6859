"""A signed-up stranger with a script, against two real workers (Redis, PostgreSQL).

Each test is one attack from the "safe in public" issue, run the way an
attacker would run it, and the limit that now stops it; and, where a limit
could hurt people using the product normally (a classroom behind one NAT
address), that they are not stopped. Figures are printed (`-s`).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid

import pytest

from tests.integration.conftest import PASSWORD, HttpSession

pytestmark = pytest.mark.slow


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def barrier(*clients) -> None:
    """A ping round trip on each socket: everything sent to it before has been handled."""
    for client in clients:
        assert (await client.request({"type": "ping"}))["type"] == "pong"


# --- Joins and PINs ------------------------------------------------------------------------


# The attacker runs in its own process, so that its 120 sockets do not share
# the event loop that measures the owner's round trips. It opens them, says
# READY, sends every join at once when it reads a line, and prints the answers.
ATTACKER = r"""
import asyncio, json, sys
from websockets.asyncio.client import connect

async def main(w1, w2, key, number, count):
    sockets = await asyncio.gather(*(
        connect((w1, w2)[i % 2].replace("http://", "ws://") + "/ws/signaling/",
                origin=(w1, w2)[i % 2], additional_headers={"Cookie": "sessionid=" + key})
        for i in range(count)))
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(
        ws.send(json.dumps({"type": "join", "room": number, "pin": str(1000 + i), "id": "j"}))
        for i, ws in enumerate(sockets)))
    answers = await asyncio.gather(*(asyncio.wait_for(ws.recv(), 60) for ws in sockets))
    print(json.dumps([json.loads(a) for a in answers]), flush=True)
    await asyncio.gather(*(ws.close() for ws in sockets))

asyncio.run(main(*sys.argv[1:5], int(sys.argv[5])))
"""


@pytest.mark.parametrize("in_flight", ["2", "1000"], ids=["default", "no-in-flight-limit"])
async def test_parallel_wrong_pins_evaluate_at_most_the_cap(make_stack, ws_connect, in_flight):
    """120 parallel wrong PINs from one account: at most 20 evaluated, the rest refused at once.

    With the default in-flight limit (2 joins per account per worker) most are
    refused before any Redis or database work, and the owner's chat does not
    notice; with that limit lifted, the reservation alone still lets exactly
    the cap (20) be evaluated.
    """
    # The socket cap would stop this account at 10 sockets: lift it, to prove
    # the join limits on their own.
    stack = make_stack(
        SOCKETS_PER_USER="200",
        CHAT_RATE="100",
        CHAT_BURST="100",
        JOINS_IN_FLIGHT_PER_USER=in_flight,
        # The room's own PIN lock (10 wrong) would answer pin-locked first: lifted,
        # to prove the account's cap (test_fair_limits.py has the room's).
        PIN_FAILURE_LIMIT="1000",
        CHAT_PER_USER_PER_HOUR="100000",
        JOINS_PER_USER_PER_HOUR="1000",
    )
    w1, w2 = stack.workers
    (_, owner_key), (_, attacker_key), (_, guest_key) = stack.sessions(3)
    owner = await ws_connect(w1, owner_key)
    number = (await owner.create(pin="4826"))["room"]["number"]
    # Warm both workers up (database pool, first queries) with a guest who
    # comes and goes: this measures an attack on a running site, not a cold start.
    for worker in (w1, w2, w1, w2):
        guest = await ws_connect(worker, guest_key)
        assert (await guest.join(number, pin="4826"))["type"] == "joined"
        await guest.close()
    await owner.until(lambda: len(owner.seen("peer-left")) == 4, timeout=10)
    attacker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ATTACKER,
        w1,
        w2,
        attacker_key,
        number,
        "120",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert (await asyncio.wait_for(attacker.stdout.readline(), 60)).strip() == b"READY"

    rtts: list[float] = []
    stop = asyncio.Event()

    async def chat_round_trips() -> None:
        n = 0
        while not stop.is_set():
            text = f"still here {n}"
            sent = time.monotonic()
            await owner.send({"type": "chat", "text": text})
            await owner.next("chat", text=text, timeout=60)
            rtts.append((time.monotonic() - sent) * 1000)
            n += 1
            await asyncio.sleep(0.005)

    measuring = asyncio.ensure_future(chat_round_trips())
    await owner.until(lambda: len(rtts) >= 10, timeout=10)
    started = time.monotonic()
    attacker.stdin.write(b"go\n")
    await attacker.stdin.drain()
    out = await asyncio.wait_for(attacker.stdout.readline(), 60)
    took = time.monotonic() - started
    during = len(rtts)
    await owner.until(lambda: len(rtts) >= during + 10, timeout=10)
    stop.set()
    await measuring
    await asyncio.wait_for(attacker.wait(), 30)
    assert attacker.returncode == 0, (await attacker.stderr.read()).decode()
    answers = json.loads(out)

    codes = [a.get("code") for a in answers]
    print(
        f"\nFIGURE pins ({in_flight} joins in flight per account and worker): "
        f"120 parallel wrong PINs from one account over 2 workers: "
        f"{codes.count('bad-pin')} bad-pin, {codes.count('rate-limited')} rate-limited, "
        f"all answered in {took:.2f} s; the owner's chat round trip meanwhile: "
        f"p50 {statistics.median(rtts):.1f} ms, p99 {percentile(rtts, 0.99):.1f} ms, "
        f"max {max(rtts):.1f} ms (n={len(rtts)})"
    )
    refusals = {a["message"] for a in answers if a["code"] == "rate-limited"}
    assert codes.count("bad-pin") + codes.count("rate-limited") == 120
    if in_flight == "1000":
        assert codes.count("bad-pin") == 20
        assert refusals == {"Too many failed attempts to join; wait a while."}
    else:
        assert 1 <= codes.count("bad-pin") <= 20
        assert "Too many joins at once from your account; try again." in refusals
        # Printed above and in docs/reliability.md: p99 40-80 ms on this 2-core
        # machine (the target is 100 ms). Asserted loosely, as the suite's other
        # timings are: before the fix the owner waited 45 s; a busy CI box must
        # not turn a burst's queueing into a failure.
        assert percentile(rtts, 0.99) < 1000
    # Nobody got in: the owner saw only the guest's four visits.
    assert len(owner.seen("peer-joined")) == 4


async def test_a_classroom_behind_one_address_signs_up_and_joins(make_stack, ws_connect):
    """30 people behind one NAT address sign up and join at once; typos do not lock them out."""
    stack = make_stack()
    w1, w2 = stack.workers
    tag = uuid.uuid4().hex[:6]
    teacher = HttpSession(w1)
    stack.create_user(f"teacher-{tag}")
    teacher.login(f"teacher-{tag}")
    rooms = []
    for n in range(3):
        status, body = teacher.request(
            "POST", "/api/rooms", json_body={"name": f"Group {n}", "capacity": 10, "pin": "2468"}
        )
        assert status == 201, body
        rooms.append(json.loads(body)["number"])

    students = [HttpSession((w1, w2)[i % 2]) for i in range(30)]

    def sign_up(i: int, student: HttpSession) -> int:
        student.request("GET", "/accounts/signup/")  # the CSRF cookie, as a browser gets it
        status, _ = student.request(
            "POST",
            "/accounts/signup/",
            form={
                "username": f"student{i}-{tag}",
                "password1": PASSWORD,
                "password2": PASSWORD,
                "csrfmiddlewaretoken": student.cookie("csrftoken"),
            },
        )
        return status

    statuses = await asyncio.gather(
        *(asyncio.to_thread(sign_up, i, s) for i, s in enumerate(students))
    )
    # urllib follows the redirect to the lobby: 200 with the account made and logged in.
    assert statuses == [200] * 30
    sockets = await asyncio.gather(*(ws_connect(s.base, s.cookie("sessionid")) for s in students))
    # Five mistype the PIN first.
    for s in sockets[:5]:
        answer = await s.join(rooms[0], pin="2469")
        assert answer["code"] == "bad-pin"
    answers = await asyncio.gather(
        *(s.join(rooms[i % 3], pin="2468") for i, s in enumerate(sockets))
    )
    print(
        f"\nFIGURE classroom: 30 sign-ups from one address, then 30 joins at once "
        f"(3 rooms of 10, 5 typos first): {sum(a['type'] == 'joined' for a in answers)} joined"
    )
    assert [a["type"] for a in answers] == ["joined"] * 30


async def test_room_lookups_over_http_share_the_join_cap(make_stack, ws_connect):
    """Not-found lookups over HTTP count with failed joins, per user and per address."""
    stack = make_stack(JOIN_FAILURE_LIMIT="5", JOIN_FAILURE_ADDRESS_LIMIT="8")
    w1, w2 = stack.workers
    tag = uuid.uuid4().hex[:6]
    stack.create_users(f"owner-{tag}", f"prober-{tag}", f"other-{tag}")
    owner = HttpSession(w1)
    owner.login(f"owner-{tag}")
    status, body = owner.request("POST", "/api/rooms", json_body={"name": "Real"})
    real = json.loads(body)["number"]
    prober = HttpSession(w2)
    prober.login(f"prober-{tag}")
    missing = [str(100_000_000 + i) for i in range(10) if str(100_000_000 + i) != real]

    # A room that exists does not count (nothing was guessed wrong).
    assert prober.request("GET", f"/api/rooms/{real}")[0] == 200
    assert [prober.request("GET", f"/api/rooms/{n}")[0] for n in missing[:5]] == [404] * 5
    status, body = prober.request("GET", f"/api/rooms/{missing[5]}")
    assert (status, json.loads(body)["error"]["code"]) == (429, "rate-limited")
    # The same cap holds on the room page, and for a join over the socket.
    assert prober.request("GET", f"/rooms/{real}/")[0] == 429
    socket = await ws_connect(w1, prober.cookie("sessionid"))
    assert (await socket.join(real))["code"] == "rate-limited"

    # Another account on the same address has the address's remaining 3.
    other = HttpSession(w1)
    other.login(f"other-{tag}")
    assert [other.request("GET", f"/api/rooms/{n}")[0] for n in missing[5:9]] == [
        404,
        404,
        404,
        429,
    ]


# --- Revocation -----------------------------------------------------------------------------


async def test_logout_closes_that_sessions_sockets_on_every_worker(make_stack, ws_connect):
    """Logout: that session's sockets close with 4401 on both workers within 1 s; others stay."""
    stack = make_stack()
    w1, w2 = stack.workers
    tag = uuid.uuid4().hex[:6]
    stack.create_users(f"alice-{tag}", f"bob-{tag}")
    laptop, phone, bob = HttpSession(w1), HttpSession(w2), HttpSession(w2)
    laptop.login(f"alice-{tag}")
    phone.login(f"alice-{tag}")
    bob.login(f"bob-{tag}")
    b = await ws_connect(w2, bob.cookie("sessionid"))
    number = (await b.create())["room"]["number"]
    in_call = await ws_connect(w1, laptop.cookie("sessionid"))
    await in_call.join(number)
    idle = await ws_connect(w2, laptop.cookie("sessionid"))
    on_phone = await ws_connect(w2, phone.cookie("sessionid"))
    await barrier(idle, on_phone)

    started = time.monotonic()
    assert laptop.request("POST", "/api/auth/logout")[0] == 204
    codes = await asyncio.gather(in_call.wait_closed(), idle.wait_closed())
    took = max(in_call.closed_at, idle.closed_at) - started
    left = await b.next("peer-left", peerId=in_call.peer_id)
    print(f"\nFIGURE revoke: logout closed the session's 2 sockets (2 workers) in {took:.3f} s")
    assert codes == [4401, 4401]
    assert took < 1
    assert left["reason"] == "left"
    # The phone's session was not logged out.
    await barrier(on_phone)
    assert not on_phone.closed


@pytest.mark.parametrize(
    "change",
    [
        "u.set_password('another horse battery staple'); u.save()",
        "u.is_active = False; u.save()",
    ],
    ids=["password-change", "deactivation"],
)
async def test_password_change_and_deactivation_close_every_socket(make_stack, ws_connect, change):
    """A new password or a deactivation (here from a shell) closes all the user's sockets."""
    stack = make_stack()
    w1, w2 = stack.workers
    (name_a, key_a), (_, key_b) = stack.sessions(2)
    b = await ws_connect(w1, key_b)
    number = (await b.create())["room"]["number"]
    a1, a2 = await ws_connect(w1, key_a), await ws_connect(w2, key_a)
    await a2.join(number)
    await barrier(a1)
    stack.manage(
        "shell",
        "-c",
        f"from django.contrib.auth import get_user_model\n"
        f"u = get_user_model().objects.get(username={name_a!r})\n{change}",
    )
    ended = time.monotonic()
    assert await asyncio.gather(a1.wait_closed(), a2.wait_closed()) == [4401, 4401]
    took = max(a1.closed_at, a2.closed_at) - ended
    print(f"\nFIGURE revoke: {change.split(';')[0]} closed 2 sockets {took:.3f} s after the shell")
    assert took < 1
    assert (await b.next("peer-left", peerId=a2.peer_id))["reason"] == "left"


async def test_admin_signs_a_user_out_everywhere(make_stack, ws_connect):
    """Admin 'sign out everywhere': every socket closes (4401), the others see kicked, logged."""
    stack = make_stack()
    w1, w2 = stack.workers
    tag = uuid.uuid4().hex[:6]
    stack.create_users(f"troll-{tag}", f"host-{tag}", f"admin-{tag}", superusers=(f"admin-{tag}",))
    troll, host, admin = HttpSession(w1), HttpSession(w2), HttpSession(w1)
    troll.login(f"troll-{tag}")
    host.login(f"host-{tag}")
    admin.login(f"admin-{tag}")
    h = await ws_connect(w2, host.cookie("sessionid"))
    number = (await h.create())["room"]["number"]
    t1 = await ws_connect(w1, troll.cookie("sessionid"))
    await t1.join(number)
    t2 = await ws_connect(w2, troll.cookie("sessionid"))
    await barrier(t2)
    troll_id = stack.sql("SELECT id FROM auth_user WHERE username = %s", f"troll-{tag}")[0][0]

    started = time.monotonic()
    status, _ = admin.request(
        "POST",
        "/admin/auth/user/",
        form={"action": "sign_out_everywhere", "_selected_action": [troll_id]},
    )
    assert status == 200
    assert await asyncio.gather(t1.wait_closed(), t2.wait_closed()) == [4401, 4401]
    took = max(t1.closed_at, t2.closed_at) - started
    print(f"\nFIGURE revoke: admin sign-out closed 2 sockets on 2 workers in {took:.3f} s")
    assert took < 1
    assert (await h.next("peer-left", peerId=t1.peer_id))["reason"] == "kicked"
    # The HTTP session is gone too: the troll is logged out.
    assert troll.request("GET", "/api/config")[0] == 401
    assert stack.sql(
        "SELECT change_message FROM django_admin_log WHERE object_id = %s", str(troll_id)
    ) == [("Signed out everywhere (1 sessions).",)]


# --- Caps -------------------------------------------------------------------------------------


async def test_open_sockets_per_account_are_capped_across_workers(make_stack, ws_connect):
    """At SOCKETS_PER_USER sockets anywhere the next one is closed 4429; a freed place is reused."""
    stack = make_stack(SOCKETS_PER_USER="3")
    w1, w2 = stack.workers
    (_, key), (_, other) = stack.sessions(2)
    held = [await ws_connect(w, key) for w in (w1, w2, w1)]
    await barrier(*held)
    fourth = await ws_connect(w2, key)
    assert await fourth.wait_closed() == 4429
    # Someone else is not affected.
    await barrier(await ws_connect(w2, other))
    await held[0].close()
    # Once the first one's disconnect has been handled a new socket fits.
    deadline = time.monotonic() + 10
    while True:
        again = await ws_connect(w2, key)
        try:
            await barrier(again)
            break
        except AssertionError:
            assert again.close_code == 4429
            assert time.monotonic() < deadline, "the freed place never came back"
            await asyncio.sleep(0.05)


async def test_room_creation_is_capped_per_account(make_stack, ws_connect):
    """Open rooms and rooms per hour are capped, over the socket and over POST /api/rooms."""
    stack = make_stack(OPEN_ROOMS_PER_USER="2", ROOMS_CREATED_PER_HOUR="3")
    w1, w2 = stack.workers
    tag = uuid.uuid4().hex[:6]
    stack.create_user(f"maker-{tag}")
    http = HttpSession(w1)
    http.login(f"maker-{tag}")
    socket = await ws_connect(w2, http.cookie("sessionid"))
    first = (await socket.create())["room"]["number"]
    await socket.send({"type": "leave"})
    status, _ = http.request("POST", "/api/rooms", json_body={})
    assert status == 201
    # Two open: a third is refused, on both paths.
    status, body = http.request("POST", "/api/rooms", json_body={})
    assert (status, json.loads(body)["error"]) == (
        429,
        {
            "code": "rate-limited",
            "message": "You have 2 open rooms; end one before creating another.",
        },
    )
    refused = await socket.request({"type": "create"})
    assert (refused["code"], refused["message"]) == (
        "rate-limited",
        "You have 2 open rooms; end one before creating another.",
    )
    # Ending one frees a place: the third room of the hour.
    await socket.join(first)
    await socket.send({"type": "close"})
    assert await socket.wait_closed() == 4000
    status, _ = http.request("POST", "/api/rooms", json_body={})
    assert status == 201
    stack.sql("UPDATE rooms_room SET closed_at = now() WHERE closed_at IS NULL")
    status, body = http.request("POST", "/api/rooms", json_body={})
    assert (status, json.loads(body)["error"]["message"]) == (
        429,
        "You have created too many rooms in the last hour; try again later.",
    )


async def test_sign_ups_past_the_address_burst_are_slowed_not_refused_for_an_hour(make_stack):
    """SIGNUPS_PER_ADDRESS_PER_HOUR=3: the fourth from one address waits 20 minutes, not an hour.

    The attack of issue 22 scaled down (50 at the default, which a classroom of
    30 fits in): past the burst one sign-up per hour/limit, so the next
    classmate is told when, and it is 72 s at the default (before: an hour).
    """
    stack = make_stack(SIGNUPS_PER_ADDRESS_PER_HOUR="3")
    tag = uuid.uuid4().hex[:6]
    answers = []
    for i in range(4):
        browser = HttpSession(stack.workers[i % 2])
        browser.request("GET", "/accounts/signup/")
        answers.append(
            browser.request(
                "POST",
                "/accounts/signup/",
                form={
                    "username": f"new{i}-{tag}",
                    "password1": PASSWORD,
                    "password2": PASSWORD,
                    "csrfmiddlewaretoken": browser.cookie("csrftoken"),
                },
            )
        )
    assert [status for status, _ in answers] == [200, 200, 200, 429]
    assert (
        b"Many accounts were created from your network just now. Try again in 20 minutes."
        in answers[3][1]
    )
    assert stack.sql("SELECT count(*) FROM auth_user WHERE username LIKE %s", f"new%-{tag}") == [
        (3,)
    ]


async def test_chat_is_rate_limited_and_old_chat_and_idle_rooms_are_pruned(make_stack, ws_connect):
    """Chat past its burst is refused; housekeeping deletes old chat and closes idle rooms."""
    stack = make_stack(PRUNE_INTERVAL="1", CHAT_RETENTION_DAYS="30", EMPTY_ROOM_CLOSE_AFTER="3600")
    w1, _ = stack.workers
    (_, key), (_, other) = stack.sessions(2)
    talker = await ws_connect(w1, key)
    number = (await talker.create())["room"]["number"]
    for n in range(12):
        await talker.send({"type": "chat", "text": "x" * 2000, "id": f"c{n}"})
    answers = [await talker.next(re=f"c{n}") for n in (10, 11)]
    assert [(a["type"], a["code"]) for a in answers] == [("error", "rate-limited")] * 2
    await talker.until(lambda: len(talker.seen("chat")) == 10, timeout=10)
    await barrier(talker)
    assert len(talker.seen("chat")) == 10

    # An old line in this room, and a room empty for two hours.
    stack.sql(
        "UPDATE rooms_chatmessage SET created_at = now() - interval '31 days' WHERE id = "
        "(SELECT min(id) FROM rooms_chatmessage)"
    )
    idle = await ws_connect(w1, other)
    idle_number = (await idle.create())["room"]["number"]
    await idle.send({"type": "leave"})
    await barrier(idle)
    stack.sql(
        "UPDATE rooms_room SET created_at = now() - interval '2 hours' WHERE number = %s",
        idle_number,
    )
    stack.sql(
        "UPDATE rooms_participant SET left_at = now() - interval '2 hours' WHERE room_id = "
        "(SELECT id FROM rooms_room WHERE number = %s)",
        idle_number,
    )
    # One prune closes idle rooms, then deletes old chat (each in its own
    # transaction): wait for both, as the closed room alone may be seen between.
    deadline = time.monotonic() + 20
    while (
        stack.sql(
            "SELECT count(*) FROM rooms_room WHERE number = %s AND closed_at IS NULL", idle_number
        ),
        stack.sql("SELECT count(*) FROM rooms_chatmessage"),
    ) != ([(0,)], [(9,)]):
        assert time.monotonic() < deadline, "the idle room was never closed, or old chat kept"
        await asyncio.sleep(0.2)
    # The room someone is in stays open.
    assert stack.sql(
        "SELECT count(*) FROM rooms_room WHERE number = %s AND closed_at IS NULL", number
    ) == [(1,)]


# --- One seat per account ------------------------------------------------------------------------


async def test_a_second_device_takes_over_the_seat(make_stack, ws_connect):
    """The same account joining again takes its seat (old socket 4409), even in a full room."""
    stack = make_stack()
    w1, w2 = stack.workers
    (_, key_a), (_, key_b) = stack.sessions(2)
    b = await ws_connect(w1, key_b)
    number = (await b.create(capacity=2))["room"]["number"]
    laptop = await ws_connect(w1, key_a)
    first = await laptop.join(number)
    await b.next("peer-joined")
    phone = await ws_connect(w2, key_a)
    second = await phone.join(number)
    assert second["type"] == "joined", second  # the room of 2 was full, but the seat is A's
    assert [peer["peerId"] for peer in second["peers"]] == [b.peer_id]
    assert second["room"]["participants"] == 2
    assert await laptop.wait_closed() == 4409
    # B sees the old seat go, then the new one arrive.
    left = await b.next("peer-left")
    joined = await b.next("peer-joined")
    assert (left["peerId"], left["reason"]) == (first["peerId"], "left")
    assert joined["peer"]["peerId"] == second["peerId"]
    assert stack.sql(
        "SELECT left_reason FROM rooms_participant WHERE peer_id = %s", first["peerId"]
    ) == [("replaced",)]
    # The laptop coming back with its resume token does not take the seat back.
    back = await ws_connect(w1, key_a)
    await back.send({"type": "join", "room": number, "resume": first["resumeToken"]})
    assert await back.wait_closed() == 4409
    # Had that resume taken the seat, worker 1 would have told the phone's channel
    # before closing `back`; an offer worker 1 sends that channel now comes after it.
    await b.send({"type": "offer", "to": phone.peer_id, "sdp": "v=0 after the resume"})
    assert (await phone.next("offer", sdp="v=0 after the resume"))["from"] == b.peer_id
    await barrier(phone)
    assert not phone.closed


# --- Closed sockets -------------------------------------------------------------------------------

JUNK = ["{", "[]", '{"type": 7}', '{"type": "join"}', "null", '"text"']


async def test_frames_queued_on_a_closed_socket_leave_no_traceback(make_stack, ws_connect):
    """Frames queued when a socket closes (4400, or the client drops) are no-ops, not crashes."""
    stack = make_stack()
    w1, w2 = stack.workers
    (_, key_a), (_, key_b), (_, key_c) = stack.sessions(3)
    # 1. The server closes for bad input while hundreds of frames are queued behind.
    bad = await ws_connect(w1, key_a)
    number = (await bad.create())["room"]["number"]
    burst = [JUNK[i % len(JUNK)] for i in range(20)] + ['{"type": "ping"}'] * 300
    await asyncio.gather(*(bad.send(frame) for frame in burst))
    assert await bad.wait_closed() == 4400
    # 2. A client sends hundreds of frames that all want answers, then drops the TCP connection.
    rude = await ws_connect(w2, key_b)
    await rude.join(number)
    for n in range(300):
        await rude.send({"type": "chat", "text": f"spam {n}"} if n % 2 else {"type": "ping"})
    rude.ws.transport.abort()
    # Both workers still serve, and both consumers ran their cleanup: the
    # account's socket entries are gone from the registry.
    watcher = await ws_connect(w2, key_c)
    await barrier(watcher)
    users = stack.sql(
        "SELECT id FROM auth_user WHERE id IN "
        "(SELECT user_id FROM rooms_participant WHERE room_id = "
        "(SELECT id FROM rooms_room WHERE number = %s))",
        number,
    )
    redis = stack.redis()
    deadline = time.monotonic() + 10
    while any(redis.zcard(f"{stack.prefix}:sockets:{uid}") for (uid,) in users):
        assert time.monotonic() < deadline, (
            "a closed socket's cleanup did not run",
            {uid: redis.zrange(f"{stack.prefix}:sockets:{uid}", 0, -1) for (uid,) in users},
            stack.worker_logs()[-3000:],
        )
        await asyncio.sleep(0.05)
    logs = stack.worker_logs()
    assert "Traceback" not in logs, logs[-3000:]
    assert "Exception inside application" not in logs
