"""A join's three statements, in SQL written once from the models' own metadata.

Every join runs them (tests/rooms/test_join_queries.py), and through the ORM
they cost more CPU in Django than in PostgreSQL: building and compiling the
querysets took 0.8-1.2 ms per statement against 0.3-0.5 ms for the database
itself (docs/benchmarks.md, tuning history). Here the SQL text is built once
from `_meta` (tables, columns and their order follow the models and their
migrations), values go in through each field's `pre_save()` and
`get_db_prep_save()` and come out through the backend's and the field's own
converters into `Model.from_db()`: the instances are the ones the ORM makes.
Everything off this path keeps the ORM.

The locking read and the read of who is present stay two statements on
purpose: PostgreSQL takes a statement's snapshot before the statement waits
for the row lock, so a participant list read in the locking statement could
miss the seat the previous holder of the lock just committed, and the room
would overfill.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, models

from rooms.models import ChatMessage, Participant, Room


class _Columns:
    """One model's concrete columns at a fixed place in a result row."""

    def __init__(self, model: type[models.Model], alias: str, start: int = 0) -> None:
        qn = connection.ops.quote_name
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.names = [f.attname for f in self.fields]
        self.sql = ", ".join(f"{alias}.{qn(f.column)}" for f in self.fields)
        self.start, self.stop = start, start + len(self.fields)

    @functools.cached_property
    def converters(self) -> list[tuple[int, models.Field, list[Callable[..., Any]]]]:
        # As the ORM's compiler finds them: none on PostgreSQL; SQLite's
        # datetimes (text there) and booleans (integers) for instance.
        found = []
        for i, f in enumerate(self.fields):
            col = f.get_col(f.model._meta.db_table)
            convs = connection.ops.get_db_converters(col) + f.get_db_converters(connection)
            if convs:
                found.append((i, col, convs))
        return found

    def instance(self, row: Sequence[Any]) -> models.Model:
        values = list(row[self.start : self.stop])
        for i, col, convs in self.converters:
            for convert in convs:
                values[i] = convert(values[i], col, connection)
        return self.model.from_db(connection.alias, self.names, values)


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _col(model: type[models.Model], name: str) -> str:
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return connection.ops.quote_name(field.column)


class _JoinStatements:
    # S608: the f-strings below hold only identifiers from the models' metadata
    # (quoted by the backend); every value is a parameter.
    def __init__(self) -> None:
        user = get_user_model()
        features = connection.features

        self.room = _Columns(Room, "r")
        self.owner = _Columns(user, "o", self.room.stop)
        # FOR NO KEY UPDATE: see room_join() on why not FOR UPDATE. SQLite has
        # no row locks; its IMMEDIATE transactions serialize the joins instead.
        lock = ""
        if features.has_select_for_update:
            lock = " FOR NO KEY UPDATE" if features.has_select_for_no_key_update else " FOR UPDATE"
            if features.has_select_for_update_of:
                lock += " OF r"
        has_chat = (
            f"EXISTS (SELECT 1 FROM {_table(ChatMessage)} c "  # noqa: S608
            f"WHERE c.{_col(ChatMessage, 'room')} = r.{_col(Room, 'pk')})"
        )
        self.lock_room = (
            f"SELECT {self.room.sql}, {self.owner.sql}, {has_chat} "  # noqa: S608
            f"FROM {_table(Room)} r INNER JOIN {_table(user)} o "
            f"ON o.{_col(user, 'pk')} = r.{_col(Room, 'owner')} "
            f"WHERE r.{_col(Room, 'number')} = %s AND r.{_col(Room, 'closed_at')} IS NULL{lock}"
        )

        self.participant = _Columns(Participant, "p")
        self.user = _Columns(user, "u", self.participant.stop)
        ordering = ", ".join(
            f"p.{_col(Participant, name.lstrip('-'))}{' DESC' if name.startswith('-') else ''}"
            for name in Participant._meta.ordering
        )
        self.present = (
            f"SELECT {self.participant.sql}, {self.user.sql} "  # noqa: S608
            f"FROM {_table(Participant)} p INNER JOIN {_table(user)} u "
            f"ON u.{_col(user, 'pk')} = p.{_col(Participant, 'user')} "
            f"WHERE p.{_col(Participant, 'room')} = %s "
            f"AND p.{_col(Participant, 'left_at')} IS NULL ORDER BY {ordering}"
        )

        self.insert_fields = [f for f in Participant._meta.concrete_fields if not f.primary_key]
        returning = (
            f" RETURNING {_col(Participant, 'pk')}"
            if features.can_return_columns_from_insert
            else ""
        )
        self.insert = (
            f"INSERT INTO {_table(Participant)} "  # noqa: S608
            f"({', '.join(connection.ops.quote_name(f.column) for f in self.insert_fields)}) "
            f"VALUES ({', '.join(['%s'] * len(self.insert_fields))}){returning}"
        )


@functools.cache
def _statements() -> _JoinStatements:
    return _JoinStatements()


def lock_open_room(*, number: str) -> Room | None:
    """The open room `number`, its row locked until the transaction ends; its owner loaded.

    `has_chat` on it says whether the room has any chat line (the history is
    read only then).
    """
    s = _statements()
    with connection.cursor() as cursor:
        cursor.execute(s.lock_room, [number])
        row = cursor.fetchone()
    if row is None:
        return None
    room = s.room.instance(row)
    room.owner = s.owner.instance(row)
    room.has_chat = bool(row[s.owner.stop])
    return room


def present_participants(*, room_id: int) -> list[Participant]:
    """Who is in the room now, in the model's order, each with their user loaded."""
    s = _statements()
    with connection.cursor() as cursor:
        cursor.execute(s.present, [room_id])
        rows = cursor.fetchall()
    present = []
    for row in rows:
        participant = s.participant.instance(row)
        participant.user = s.user.instance(row)
        present.append(participant)
    return present


def insert_participant(participant: Participant) -> None:
    """INSERT `participant` (defaults and `auto_now_add` as save() applies them); sets its pk."""
    s = _statements()
    values = [
        f.get_db_prep_save(f.pre_save(participant, add=True), connection) for f in s.insert_fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(s.insert, values)
        if connection.features.can_return_columns_from_insert:
            pk = cursor.fetchone()[0]
        else:
            pk = connection.ops.last_insert_id(
                cursor, Participant._meta.db_table, Participant._meta.pk.column
            )
    participant.pk = pk
    # What save() and from_db() set (Django's documented `_state`): stored, in this database.
    participant._state.adding = False
    participant._state.db = connection.alias
