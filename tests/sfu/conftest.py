"""Fixtures for the SFU tests: real Janus processes (janusproc.py) and clients of them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from sfu import JanusClient, VideoRoomAdmin
from tests.sfu.janusproc import JanusServer, janus_servers
from tests.support.rooms import (  # noqa: F401 - the room fixtures
    add_participant,
    alice,
    bob,
    carol,
    dave,
    fast_password_hashing,
    make_room,
    room_of,
    staff,
    superuser,
)


@pytest.fixture(scope="session")
def janus(tmp_path_factory) -> JanusServer:
    """One Janus with the production configuration, shared by the tests that do not break it."""
    with janus_servers(tmp_path_factory.mktemp("janus-logs")) as make:
        yield make(name="janus-shared")


@pytest.fixture
def make_janus(tmp_path):
    """Start a Janus of the test's own (to kill, or with other options); stopped after the test."""
    with janus_servers(tmp_path) as make:
        yield make


@pytest.fixture
async def make_client():
    """JanusClients for a server; closed after the test."""
    clients: list[JanusClient] = []

    def make(server: JanusServer, **options: Any) -> JanusClient:
        options.setdefault("api_secret", server.api_secret)
        options.setdefault("request_timeout", 5.0)
        client = JanusClient(url=server.url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(janus, make_client) -> JanusClient:
    return make_client(janus)


@pytest.fixture
async def admin(client, janus) -> VideoRoomAdmin:
    """A room-management handle on a session of its own, as a worker would hold it."""
    session = await client.create_session()
    return await VideoRoomAdmin.attach(session, admin_key=janus.admin_key)


@pytest.fixture
def room_id() -> int:
    """A room number no other test uses on the shared Janus."""
    return 10**9 + secrets.randbelow(10**9)


async def wait_for(
    queue: asyncio.Queue, match: Callable[[Any], bool], *, seconds: float = 5
) -> tuple[Any, list[Any]]:
    """The first item of ``queue`` that ``match``es, and the ones taken before it."""
    skipped: list[Any] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                item = await queue.get()
                if match(item):
                    return item, skipped
                skipped.append(item)
    except TimeoutError:
        raise AssertionError(f"no matching event within {seconds}s; got {skipped}") from None
