"""A join's three statements, in SQL written once from the models' own metadata.

Every join runs them (tests/rooms/services/test_join_queries.py), and through the ORM
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

import datetime
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


class _Insert:
    """One model's INSERT of every concrete column but its auto primary key, which it returns."""

    def __init__(self, model: type[models.Model]) -> None:
        meta = model._meta
        self.fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
        self.returning = connection.features.can_return_columns_from_insert
        self.sql = (
            f"INSERT INTO {_table(model)} "  # noqa: S608
            f"({', '.join(connection.ops.quote_name(f.column) for f in self.fields)}) "
            f"VALUES ({', '.join(['%s'] * len(self.fields))})"
            + (f" RETURNING {_col(model, 'pk')}" if self.returning else "")
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


@functools.cache
def _insert_for(model: type[models.Model]) -> _Insert:
    return _Insert(model)


def insert(instance: models.Model) -> None:
    """INSERT the new `instance` as save() would (defaults, `auto_now_add`); set its primary key.

    For this app's models, which override no save() and have no save signal
    that applies to them (accounts.signals watches users only).
    """
    model = type(instance)
    s = _insert_for(model)
    values = [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in s.fields]
    with connection.cursor() as cursor:
        cursor.execute(s.sql, values)
        if s.returning:
            pk = cursor.fetchone()[0]
        else:
            pk = connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column)
    instance.pk = pk
    # What save() and from_db() set (Django's documented `_state`): stored, in this database.
    instance._state.adding = False
    instance._state.db = connection.alias


# --- A create's cap check (services._check_create_caps) -------------------------------------


class _CreateStatements:
    def __init__(self) -> None:
        user = get_user_model()
        features = connection.features
        lock = ""
        if features.has_select_for_update:
            lock = " FOR NO KEY UPDATE" if features.has_select_for_no_key_update else " FOR UPDATE"
        self.lock_user = f"SELECT 1 FROM {_table(user)} WHERE {_col(user, 'pk')} = %s{lock}"  # noqa: S608
        created, closed = _col(Room, "created_at"), _col(Room, "closed_at")
        self.counts = (
            f"SELECT COALESCE(SUM(CASE WHEN {created} >= %s THEN 1 ELSE 0 END), 0), "  # noqa: S608
            f"COALESCE(SUM(CASE WHEN {closed} IS NULL THEN 1 ELSE 0 END), 0) "
            f"FROM {_table(Room)} WHERE {_col(Room, 'owner')} = %s "
            f"AND ({created} >= %s OR {closed} IS NULL)"
        )


@functools.cache
def _create_statements() -> _CreateStatements:
    return _CreateStatements()


def lock_user(*, user_id: int) -> None:
    """Lock the user's row until the transaction ends: one account's creates go one at a time."""
    with connection.cursor() as cursor:
        cursor.execute(_create_statements().lock_user, [user_id])


def owner_room_counts(*, owner_id: int, since: datetime.datetime) -> tuple[int, int]:
    """How many rooms `owner_id` created since `since`, and how many of theirs are open."""
    when = Room._meta.get_field("created_at").get_db_prep_value(since, connection)
    with connection.cursor() as cursor:
        cursor.execute(_create_statements().counts, [when, owner_id, when])
        recent, open_ = cursor.fetchone()
    return int(recent), int(open_)
