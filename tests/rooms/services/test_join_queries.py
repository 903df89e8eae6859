"""How many queries a join costs: the exact statements, so that one more fails here.

A join's database work is the handshake's user lookup (the session itself
comes from the cache) and one `room_join` call. Transaction control (BEGIN,
COMMIT, savepoints, SQLite's BEGIN IMMEDIATE) is left out: it is the same on
every path and costs no ORM work.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.middleware import user_for_session
from rooms import errors, services
from rooms.models import ChatMessage, Room
from tests.conftest import session_cookie

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"(\w+)"')
PARENTHESES = re.compile(r"\([^()]*\)")


def top_level(sql: str) -> str:
    """The statement without its parenthesized parts (subqueries, column lists)."""
    while True:
        shorter = PARENTHESES.sub("", sql)
        if shorter == sql:
            return sql
        sql = shorter


def statements(captured: CaptureQueriesContext) -> list[str]:
    """Each statement as its verb and its first table, plus the lock it takes on PostgreSQL."""
    out = []
    for query in captured.captured_queries:
        sql = query["sql"].strip()
        if sql.upper().startswith(TRANSACTION_CONTROL):
            continue
        text = f"{sql.split(None, 1)[0].upper()} {TABLE.search(top_level(sql)).group(1)}"
        if "FOR NO KEY UPDATE" in sql:
            text += " FOR NO KEY UPDATE"
        out.append(text)
    return out


def lock(text: str) -> str:
    """The locking read as PostgreSQL gets it (SQLite has no row locks: Django leaves it out)."""
    return text + " FOR NO KEY UPDATE" if connection.vendor == "postgresql" else text


def join(room: Room, user, channel: str = "") -> services.Seat:
    return services.room_join(number=room.number, user=user, channel_name=channel or f"t!{user}")


def test_a_join_into_a_room_without_chat_is_three_statements(make_room, alice, bob, carol):
    """Joining a room without chat: the locking read, who is there, the insert; no history read."""
    room = make_room(alice)
    join(room, bob)
    with CaptureQueriesContext(connection) as captured:
        seat = join(room, carol)
    assert statements(captured) == [
        lock("SELECT rooms_room"),
        "SELECT rooms_participant",
        "INSERT rooms_participant",
    ]
    assert [p.user for p in seat.present] == [bob] and seat.history == []


def test_a_join_into_a_room_with_chat_reads_the_history_too(make_room, alice, bob, carol):
    """Joining a room that has chat adds exactly the history read."""
    room = make_room(alice)
    join(room, bob)
    ChatMessage.objects.create(room=room, user=bob, peer_id="p", text="hello")
    with CaptureQueriesContext(connection) as captured:
        seat = join(room, carol)
    assert statements(captured) == [
        lock("SELECT rooms_room"),
        "SELECT rooms_participant",
        "INSERT rooms_participant",
        "SELECT rooms_chatmessage",
    ]
    assert [line.text for line in seat.history] == ["hello"]


def test_taking_over_ones_own_seat_adds_the_update(make_room, alice, bob):
    """Joining again from another tab adds the update that ends the old seat, nothing else."""
    room = make_room(alice)
    join(room, bob, "t!1")
    with CaptureQueriesContext(connection) as captured:
        join(room, bob, "t!2")
    assert statements(captured) == [
        lock("SELECT rooms_room"),
        "SELECT rooms_participant",
        "UPDATE rooms_participant",
        "INSERT rooms_participant",
    ]


def test_a_refused_join_stops_at_the_locking_read(make_room, alice, bob):
    """A wrong PIN is refused after the one read of the room."""
    room = make_room(alice, pin="1234")
    with CaptureQueriesContext(connection) as captured, pytest.raises(errors.WrongPin):
        services.room_join(number=room.number, user=bob, channel_name="t!x", pin="0000")
    assert statements(captured) == [lock("SELECT rooms_room")]


def test_the_handshake_reads_only_the_user_and_its_session_generation(alice):
    """The socket's login reads the session from the cache, the user and the generation of
    their sessions (accounts/sessions.py) from the database."""
    key = session_cookie(alice)
    with CaptureQueriesContext(connection) as captured:
        user = user_for_session(key)
    assert user == alice
    assert statements(captured) == ["SELECT auth_user", "SELECT accounts_sessionepoch"]
