"""What keeps the database from growing without bound: run by the workers, no cron needed.

Every worker runs `prune()` every `PRUNE_INTERVAL` seconds (signaling/runtime/sweeper.py),
one worker at a time when they share Redis; `manage.py prune` runs it by hand.

- Rooms nobody has been in for `EMPTY_ROOM_CLOSE_AFTER` seconds (never
  joined since they were created, or empty since the last person left) are
  closed, so a script cannot hold room numbers forever.
- Chat lines older than `CHAT_RETENTION_DAYS` days are deleted.
- The call history: participants who left more than
  `CALL_HISTORY_RETENTION_DAYS` days ago are deleted, and their call-quality
  reports with them. Rooms stay (closed ones too): their numbers and owners
  are what the admin and the per-account caps look at, and they are small.
- `auto` rooms whose way back to the mesh is due and was not taken (the
  worker that was to check them died) go back (`services.room_media_return`).
- Expired login sessions are cleared (`accounts.services.sessions_prune`:
  what `manage.py clearsessions` does, with the rows that track them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone

from accounts.services import sessions_prune
from rooms.events import Outbox, Outgoing
from rooms.models import ChatMessage, Participant, Room, present
from rooms.services import rooms as services

BATCH = 500


@dataclass(frozen=True)
class PruneReport:
    rooms_closed: int
    chat_deleted: int
    sessions_deleted: int
    # Participants, with their quality reports (call history past its retention).
    participants_deleted: int = 0
    # `auto` rooms taken back to the mesh.
    rooms_returned: int = 0
    # What the rooms closed must tell (nobody is in them, but a join may race).
    outbox: Outbox = ()

    @property
    def changed(self) -> bool:
        return bool(
            self.rooms_closed
            or self.chat_deleted
            or self.sessions_deleted
            or self.participants_deleted
            or self.rooms_returned
        )


def idle_rooms(*, before: datetime) -> list[Room]:
    """Open rooms with nobody in them and no one there since `before`."""
    return list(
        Room.objects.open()
        .filter(created_at__lt=before)
        .annotate(
            present=Count("participants", filter=present("participants")),
            last_left=Max("participants__left_at"),
        )
        .filter(present=0)
        .filter(Q(last_left__isnull=True) | Q(last_left__lt=before))[:BATCH]
    )


def prune(*, now: datetime | None = None) -> PruneReport:
    now = now or timezone.now()
    before = now - timedelta(seconds=settings.EMPTY_ROOM_CLOSE_AFTER)
    outbox: list[Outgoing] = []
    closed = 0
    for room in idle_rooms(before=before):
        said = services.room_close_if_idle(room_id=room.pk, before=before)
        closed += bool(said)
        outbox.extend(said)
    returned = 0
    for room_id in services.rooms_media_return_due(now=now):
        said = services.room_media_return(room_id=room_id, now=now)
        returned += bool(said)
        outbox.extend(said)
    cutoff = now - timedelta(days=settings.CHAT_RETENTION_DAYS)
    chat = 0
    while True:
        ids = list(
            ChatMessage.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            break
        chat += ChatMessage.objects.filter(pk__in=ids).delete()[0]
    return PruneReport(
        rooms_closed=closed,
        chat_deleted=chat,
        sessions_deleted=sessions_prune(now=now),
        participants_deleted=call_history_prune(
            before=now - timedelta(days=settings.CALL_HISTORY_RETENTION_DAYS)
        ),
        rooms_returned=returned,
        outbox=tuple(outbox),
    )


def call_history_prune(*, before: datetime) -> int:
    """Delete participants who left before `before`, in batches; return how many.

    Their quality reports go with them (cascade); reports others made about
    them stay, without the link (`CallQuality.remote` is set to null).
    """
    deleted = 0
    while True:
        ids = list(
            Participant.objects.filter(left_at__lt=before).values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            return deleted
        Participant.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
