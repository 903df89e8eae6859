"""Peers of one room on two different daphne workers, fanned out through the real Redis."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.slow


class WsPeer:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.peer_id: str | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def recv_type(self, kind: str, timeout: float = 5) -> dict[str, Any]:
        message = await self.recv(timeout)
        assert message["type"] == kind, message
        return message

    async def expect_closed(self, timeout: float = 5) -> int:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        return closed.value.rcvd.code


async def open_peer(base: str, session) -> WsPeer:
    url = base.replace("http://", "ws://") + "/ws/signaling/"
    ws = await connect(url, origin=base, additional_headers=session.ws_headers())
    return WsPeer(ws)


@pytest.fixture
def users(stack):
    suffix = uuid.uuid4().hex[:6]
    names = {role: f"{role}-{suffix}" for role in ("alice", "bob", "admin")}
    stack.create_users(*names.values(), superusers=(names["admin"],))
    return names


async def test_call_across_two_workers(stack, users, http_session):
    """Join, offer/answer, candidates both ways, chat and peer-left cross between workers."""
    w1, w2 = stack.workers
    sa, sb = http_session(w1), http_session(w2)
    sa.login(users["alice"])
    config_b = sb.login(users["bob"])
    assert config_b["signaling"]["url"] == w2.replace("http://", "ws://") + "/ws/signaling/"

    a, b = await open_peer(w1, sa), await open_peer(w2, sb)
    try:
        await a.send({"type": "create", "name": "Across workers", "id": "c1"})
        joined_a = await a.recv_type("joined")
        assert joined_a["re"] == "c1" and joined_a["created"] is True
        number = joined_a["room"]["number"]

        await b.send({"type": "join", "room": number})
        joined_b = await b.recv_type("joined")
        assert [p["peerId"] for p in joined_b["peers"]] == [joined_a["peerId"]]
        a.peer_id, b.peer_id = joined_a["peerId"], joined_b["peerId"]
        assert (await a.recv_type("peer-joined"))["peer"]["peerId"] == b.peer_id

        # The newcomer offers; the peer already there answers.
        sdp = "v=0\r\n" + "a=x\r\n" * 1000
        await b.send({"type": "offer", "to": a.peer_id, "sdp": sdp})
        assert await a.recv_type("offer") == {
            "type": "offer",
            "to": a.peer_id,
            "sdp": sdp,
            "from": b.peer_id,
        }
        await a.send({"type": "answer", "to": b.peer_id, "sdp": "v=0 answer"})
        assert (await b.recv_type("answer"))["from"] == a.peer_id

        candidate = {
            "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
        for sender, receiver in ((a, b), (b, a)):
            for item in (candidate, None):
                await sender.send({"type": "candidate", "to": receiver.peer_id, "candidate": item})
                got = await receiver.recv_type("candidate")
                assert got["candidate"] == item and got["from"] == sender.peer_id

        await a.send({"type": "chat", "text": "hello from worker 1"})
        for peer in (a, b):
            line = await peer.recv_type("chat")
            assert (line["from"], line["text"]) == (a.peer_id, "hello from worker 1")
            assert line["user"]["username"] == users["alice"]

        await b.ws.close()
        left = await a.recv_type("peer-left")
        assert left == {"type": "peer-left", "peerId": b.peer_id, "reason": "disconnected"}
    finally:
        await a.ws.close()
        await b.ws.close()


async def test_admin_close_reaches_peers_on_both_workers(stack, users, http_session):
    """Closing a room in Django admin sends room-closed and 4000 to peers on every worker."""
    w1, w2 = stack.workers
    sa, sb = http_session(w1), http_session(w2)
    sa.login(users["alice"])
    sb.login(users["bob"])
    a, b = await open_peer(w1, sa), await open_peer(w2, sb)
    try:
        await a.send({"type": "create"})
        number = (await a.recv_type("joined"))["room"]["number"]
        await b.send({"type": "join", "room": number})
        await b.recv_type("joined")
        await a.recv_type("peer-joined")

        admin = http_session(w1)
        status, page = admin.request("GET", "/admin/login/")
        assert status == 200
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        status, _ = admin.request(
            "POST",
            "/admin/login/?next=/admin/",
            form={
                "username": users["admin"],
                "password": "correct horse battery staple",
                "csrfmiddlewaretoken": token.decode(),
                "next": "/admin/",
            },
        )
        assert status == 200 and admin.cookie("sessionid")
        status, page = admin.request("GET", f"/admin/rooms/room/?q={number}")
        assert status == 200 and number.encode() in page
        pk = re.search(rb'name="_selected_action" value="(\d+)"', page).group(1).decode()
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        status, page = admin.request(
            "POST",
            "/admin/rooms/room/",
            form={
                "action": "close_rooms",
                "_selected_action": [pk],
                "index": "0",
                "csrfmiddlewaretoken": token,
            },
        )
        assert status == 200 and b"Closed 1 room." in page

        for peer in (a, b):
            assert await peer.recv_type("room-closed") == {"type": "room-closed", "reason": "admin"}
            assert await peer.expect_closed() == 4000
    finally:
        await a.ws.close()
        await b.ws.close()
