"""The join's hand-written statements give exactly what the ORM gives, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rooms.models import ChatMessage, Participant, Room
from rooms.services import _sql as statements

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def seat(room: Room, user, peer_id: str, **extra) -> Participant:
    return Participant.objects.create(
        room=room, user=user, peer_id=peer_id, channel_name=f"c!{peer_id}", **extra
    )


def test_the_locked_room_is_the_orms_room_with_its_owner(make_room, alice):
    room = make_room(alice, pin="1234", name="Lesson", capacity=7)
    Room.objects.filter(pk=room.pk).update(locked=True)
    with transaction.atomic():
        got = statements.lock_open_room(number=room.number)
    expected = Room.objects.select_related("owner").get(pk=room.pk)
    assert fields(got) == fields(expected)
    assert fields(got.owner) == fields(expected.owner)
    assert got.owner.get_full_name() == "Alice Liddell"
    assert got.has_chat is False
    assert got.check_pin("1234") and not got.check_pin("0000")
    # Aware datetimes as the ORM returns them (SQLite stores text: the converters apply).
    assert got.created_at.tzinfo is not None and isinstance(got.locked, bool)
    # A model instance as loaded from the database: saving it updates, not inserts.
    assert got._state.adding is False and got._state.db == "default"


def test_has_chat_says_whether_any_line_exists(make_room, alice):
    room = make_room(alice)
    ChatMessage.objects.create(room=room, user=alice, peer_id="p", text="hi")
    with transaction.atomic():
        assert statements.lock_open_room(number=room.number).has_chat is True
    other = make_room(alice)
    with transaction.atomic():
        assert statements.lock_open_room(number=other.number).has_chat is False
    annotated = Room.objects.annotate(
        has_chat=Exists(ChatMessage.objects.filter(room=OuterRef("pk")))
    ).get(pk=room.pk)
    assert annotated.has_chat is True


def test_closed_and_unknown_rooms_are_not_found(make_room, alice):
    room = make_room(alice)
    Room.objects.filter(pk=room.pk).update(closed_at=timezone.now())
    with transaction.atomic():
        assert statements.lock_open_room(number=room.number) is None
        assert statements.lock_open_room(number="999999999") is None


def test_the_read_locks_the_room_row_only_where_rows_lock():
    """PostgreSQL: FOR NO KEY UPDATE of the room (not its owner); SQLite: no clause at all."""
    sql = statements._statements().lock_room
    if connection.vendor == "postgresql":
        assert sql.endswith(" FOR NO KEY UPDATE OF r")
    else:
        assert " FOR " not in sql


def test_present_is_the_orms_list_in_its_order_with_users(make_room, alice, bob, carol):
    room = make_room(alice)
    first = seat(room, carol, "p-carol", audio=False, screen=True)
    seat(room, bob, "p-gone", left_at=timezone.now())
    second = seat(room, bob, "p-bob")
    # Same joined_at: the model's ordering falls back to the primary key.
    Participant.objects.filter(pk__in=[first.pk, second.pk]).update(
        joined_at=datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)
    )
    got = statements.present_participants(room_id=room.pk)
    expected = list(room.participants.filter(left_at__isnull=True).select_related("user"))
    assert [p.peer_id for p in got] == ["p-carol", "p-bob"]
    assert [fields(p) for p in got] == [fields(p) for p in expected]
    assert [fields(p.user) for p in got] == [fields(p.user) for p in expected]
    assert got[0].audio is False and got[0].screen is True
    with CaptureQueriesContext(connection) as captured:
        assert [p.user.get_username() for p in got] == ["carol", "bob"]
    assert captured.captured_queries == []


def test_present_in_an_empty_room_is_empty(make_room, alice):
    assert statements.present_participants(room_id=make_room(alice).pk) == []


def test_the_insert_is_what_save_stores(make_room, alice, bob):
    room = make_room(alice)
    before = timezone.now()
    participant = Participant(room=room, user=bob, peer_id="p-new", channel_name="c!1", worker="w1")
    statements.insert(participant)
    assert participant.pk is not None and participant._state.adding is False
    assert before <= participant.joined_at <= timezone.now()
    stored = Participant.objects.get(pk=participant.pk)
    assert fields(stored) == fields(participant)
    assert (stored.audio, stored.video, stored.screen, stored.left_at) == (True, True, False, None)
    assert stored.left_reason == ""


def test_owner_room_counts_are_the_recent_and_the_open(make_room, alice, bob):
    """Counted as the caps count them: created within the window, and open whenever created."""
    now = timezone.now()
    long_ago = now - datetime.timedelta(days=2)
    rooms = [make_room(alice) for _ in range(4)]
    make_room(bob)
    # rooms[0]: old, open; rooms[1]: old, closed; rooms[2]: recent, closed; rooms[3]: recent, open.
    Room.objects.filter(pk__in=[rooms[0].pk, rooms[1].pk]).update(created_at=long_ago)
    Room.objects.filter(pk__in=[rooms[1].pk, rooms[2].pk]).update(closed_at=now)
    since = now - datetime.timedelta(hours=1)
    assert statements.owner_room_counts(owner_id=alice.pk, since=since) == (2, 2)
    assert statements.owner_room_counts(owner_id=bob.pk, since=since) == (1, 1)
    assert statements.owner_room_counts(owner_id=bob.pk + alice.pk + 1000, since=since) == (0, 0)
    assert statements.owner_room_counts(owner_id=alice.pk, since=long_ago) == (4, 2)


def test_lock_user_takes_the_row_lock_where_rows_lock(alice):
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        statements.lock_user(user_id=alice.pk)
    (sql,) = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
    if connection.vendor == "postgresql":
        assert sql.endswith(" FOR NO KEY UPDATE")
    else:
        assert " FOR " not in sql
