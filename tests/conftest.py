"""Fixtures shared by the whole suite: users, sessions, and protocol peers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import orjson
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import Client

from config.asgi import application
from tests.support.transport import WebsocketCommunicator

PASSWORD = "correct horse battery staple"
_names = itertools.count(1)
_barriers = itertools.count(1)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a failed promise here: Redis, PostgreSQL and browsers are required."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"FAILED: {len(skipped)} test(s) were skipped; none may be.", red=True)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, freed of pooled connections before it is dropped.

    On PostgreSQL, consumer database calls run on pool threads (infra/db.py);
    connections they leave in psycopg's pool would keep the test database from
    being dropped at the end of the run.
    """
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all():
            if connection.vendor != "postgresql" or connection.pool is None:
                continue
            connection.close_pool()
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            connection.close()
            connection.close_pool()


@pytest.fixture(autouse=True)
def fresh_counters():
    """In-process rate counters start empty in every test (Redis ones are namespaced by prefix)."""
    from infra import counters

    counters.clear_memory()


@pytest.fixture
def make_user(db):
    def make(username: str | None = None, **extra: Any):
        name = username or f"user{next(_names)}"
        return get_user_model().objects.create_user(
            username=name, password=PASSWORD, first_name=extra.pop("first_name", ""), **extra
        )

    return make


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture
def api_client(db):
    """A CSRF-enforcing client logged in through POST /api/auth/login, as a JS client would be."""

    def make(user, password: str = PASSWORD) -> Client:
        client = Client(enforce_csrf_checks=True)
        response = client.post(
            "/api/auth/login",
            {"username": user.get_username(), "password": password},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        return client

    return make


def csrf_header(client: Client) -> dict[str, str]:
    """The X-CSRFToken header carrying the client's csrftoken cookie, as protocol.md asks."""
    return {"X-CSRFToken": client.cookies["csrftoken"].value}


class Peer:
    """One signaling socket, driven as a client would drive it."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator
        self.peer_id: str | None = None
        self.room: dict[str, Any] | None = None

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, bytes):
            await self.ws.send_to(bytes_data=message)
        elif isinstance(message, str):
            await self.ws.send_to(text_data=message)
        else:
            await self.ws.send_to(text_data=orjson.dumps(message).decode())

    async def recv(self, timeout: float = 3) -> dict[str, Any]:
        output = await self.ws.receive_output(timeout)
        if output["type"] == "websocket.close":
            raise AssertionError(f"socket closed with {output.get('code')}")
        return orjson.loads(output["text"])

    async def recv_type(self, kind: str, timeout: float = 3) -> dict[str, Any]:
        message = await self.recv(timeout)
        assert message["type"] == kind, message
        return message

    async def nothing_before_pong(self) -> None:
        """A barrier: send a ping; the very next message this socket gets must be its pong.

        A consumer handles what reaches it (frames from its client, events
        from the channel layer) one at a time, in the order it arrived, so a
        pong for a ping sent now comes after everything already on its way to
        this socket. That proves "nothing reached it" only once the step that
        would have sent the message is over: call it after the sender's own
        answer or barrier came back, or after another peer got the broadcast.
        """
        tag = f"barrier-{next(_barriers)}"
        await self.send({"type": "ping", "id": tag})
        message = await self.recv()
        assert message == {"type": "pong", "re": tag}, f"got before the barrier's pong: {message}"

    async def expect_close(self, timeout: float = 3) -> int:
        while True:
            output = await self.ws.receive_output(timeout)
            if output["type"] == "websocket.close":
                return output.get("code")

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.send(message)
        return await self.recv()

    async def create(self, **fields: Any) -> dict[str, Any]:
        answer = await self.request({"type": "create", **fields})
        assert answer["type"] == "joined", answer
        self.peer_id, self.room = answer["peerId"], answer["room"]
        return answer

    async def join(self, number: str, **fields: Any) -> dict[str, Any]:
        answer = await self.request({"type": "join", "room": number, **fields})
        if answer["type"] == "joined":
            self.peer_id, self.room = answer["peerId"], answer["room"]
        return answer

    async def close(self) -> None:
        await self.ws.disconnect()


@pytest.fixture
async def connect():
    """Open signaling sockets on the real router; every one is closed after the test."""
    peers: list[Peer] = []

    async def open_socket(
        user=None,
        *,
        origin: str | None = "http://localhost",
        accept: bool = True,
        client: tuple[str, int] | None = None,
    ) -> Peer:
        headers = [(b"host", b"localhost")]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if user is not None:
            cookie = await database_sync_to_async(session_cookie)(user)
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        communicator = WebsocketCommunicator(application, "/ws/signaling/", headers=headers)
        if client is not None:
            # The client address daphne would put there (read when the socket is served).
            communicator.scope["client"] = list(client)
        peer = Peer(communicator)
        peers.append(peer)
        connected, _ = await communicator.connect()
        if accept:
            assert connected
        peer.connected = connected
        return peer

    yield open_socket
    for peer in peers:
        with contextlib.suppress(asyncio.CancelledError, Exception):  # already closed
            await peer.ws.disconnect()
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
