"""Reads: rooms, participants and chat, as models (rooms.wire says how they look on the wire).

Every function returns data its caller can render without another query:
rooms come with their owner and, where a head count is shown, annotated with
it (`people_now`); participants and chat lines come with their user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Cast, Coalesce, Now, NullIf
from django.utils import timezone

from rooms.models import CallQuality, ChatMessage, Participant, Room, present

CHAT_HISTORY = 50

# What counts as a bad connection in the admin's trouble lists and the overview.
# Loss: of the packets sent to a browser, the share it never got. Google's
# congestion control (the one in every WebRTC browser) holds its rate between
# 2 % and 10 % loss and backs off above 10 %; from about 5 % people see frozen
# video and hear gaps, so 5 % is where a call is worth looking at.
HIGH_LOSS = 0.05
# Round-trip time: ITU-T G.114 asks for at most 150 ms one way for comfortable
# conversation; 300 ms round trip is where people start talking over each other.
HIGH_RTT_MS = 300

# The trouble lists (Django admin filters, the overview's links): each a filter on
# `quality_reports()`.
RELAYED = "relayed"
ICE_FAILED = "ice-failed"
HIGH_LOSS_KIND = "high-loss"
HIGH_RTT = "high-rtt"
QUALITY_TROUBLE: dict[str, Q] = {
    RELAYED: Q(local_candidate_type="relay") | Q(remote_candidate_type="relay"),
    ICE_FAILED: Q(ice_failed__gt=0) | Q(state="failed"),
    HIGH_LOSS_KIND: Q(loss_in_ratio__gte=HIGH_LOSS),
    HIGH_RTT: Q(rtt_ms__gte=HIGH_RTT_MS),
}


def rooms_with_occupancy() -> QuerySet[Room]:
    """Rooms with their owner and `people_now`, the number of people in each now."""
    return Room.objects.select_related("owner").annotate(
        people_now=Count("participants", filter=present("participants"))
    )


def rooms_for_admin() -> QuerySet[Room]:
    """`rooms_with_occupancy()`, with `people_total` (everyone who was ever in it) and `duration`.

    `duration` runs from creation to closing, or to now for an open room; both
    columns sort in the database, so "the biggest" and "the longest" rooms are
    one click away.
    """
    return rooms_with_occupancy().annotate(
        people_total=Count("participants__user", distinct=True),
        duration=ExpressionWrapper(
            Coalesce(F("closed_at"), Now()) - F("created_at"), output_field=DurationField()
        ),
    )


def quality_reports() -> QuerySet[CallQuality]:
    """Call quality reports with who sent them and `loss_in_ratio` (0..1, None when unknown)."""
    return CallQuality.objects.select_related("participant__room", "participant__user").annotate(
        loss_in_ratio=ExpressionWrapper(
            Cast("packets_lost_in", FloatField())
            / NullIf(F("packets_in") + F("packets_lost_in"), 0),
            output_field=FloatField(),
        )
    )


@dataclass(frozen=True)
class Pair:
    """One browser's latest report about its connection to one other person in the room."""

    reporter: Participant
    remote: Participant
    report: CallQuality

    @property
    def relayed(self) -> bool:
        return "relay" in (self.report.local_candidate_type, self.report.remote_candidate_type)

    @property
    def loss_in_percent(self) -> float | None:
        loss = self.report.loss_in
        return None if loss is None else 100 * loss

    @property
    def high_loss(self) -> bool:
        loss = self.report.loss_in
        return loss is not None and loss >= HIGH_LOSS

    @property
    def high_rtt(self) -> bool:
        return self.report.rtt_ms is not None and self.report.rtt_ms >= HIGH_RTT_MS


@dataclass(frozen=True)
class RoomConsole:
    """A room as its admin console shows it: who is in it now, and how their connections are."""

    room: Room
    present: list[Participant]
    pairs: list[Pair]


def room_console(*, room_id: int) -> RoomConsole:
    """The room (with `people_now`), its people now (oldest first) and their pairs' live reports.

    A pair is shown while both its ends are in the room, from the reporter's
    latest live report (each browser reports every 10 s); both directions of
    a pair appear, as each side measures what it receives.
    """
    room = rooms_with_occupancy().get(pk=room_id)
    present = list(room_active_participants(room=room).order_by("joined_at", "pk"))
    by_peer = {participant.peer_id: participant for participant in present}
    by_pk = {participant.pk: participant for participant in present}
    reports = CallQuality.objects.filter(
        participant__in=present, remote_peer_id__in=list(by_peer), final=False
    ).order_by("participant__joined_at", "participant_id", "remote_peer_id")
    pairs = [
        Pair(
            reporter=by_pk[report.participant_id],
            remote=by_peer[report.remote_peer_id],
            report=report,
        )
        for report in reports
    ]
    return RoomConsole(room=room, present=present, pairs=pairs)


def room_get_by_number(*, number: str) -> Room | None:
    """The open room with this number, else the most recently closed one (with `people_now`)."""
    return (
        rooms_with_occupancy()
        .filter(number=number)
        .order_by(F("closed_at").desc(nulls_first=True), "-created_at")
        .first()
    )


def room_active_participants(*, room: Room) -> QuerySet[Participant]:
    return room.participants.present().select_related("user")


def room_participant(*, room_id: int, peer_id: str) -> Participant | None:
    """The person with this peer id in the room now (with their user), if they are there."""
    return (
        Participant.objects.present()
        .filter(room_id=room_id, peer_id=peer_id)
        .select_related("user")
        .first()
    )


def user_recent_rooms(*, user: AbstractBaseUser, limit: int = 8) -> list[Room]:
    """Open rooms the user owns or has been in, most recently used first.

    Each has `people_now` and `last_used`: when the user last joined it, else
    when it was created.
    """
    last_joined = (
        Participant.objects.filter(room=OuterRef("pk"), user=user)
        .order_by("-joined_at")
        .values("joined_at")[:1]
    )
    visited = Participant.objects.filter(user=user).values("room_id")
    rooms = list(
        rooms_with_occupancy()
        .filter(closed_at__isnull=True)
        .filter(Q(owner=user) | Q(pk__in=visited))
        .annotate(last_joined=Subquery(last_joined))
        .order_by(F("last_joined").desc(nulls_last=True), "-created_at")[:limit]
    )
    for room in rooms:
        room.last_used = room.last_joined or room.created_at
    return rooms


def room_chat_history(*, room_id: int, limit: int = CHAT_HISTORY) -> list[ChatMessage]:
    """The room's last `limit` chat lines, oldest first (for `joined.history`)."""
    latest = ChatMessage.objects.filter(room_id=room_id).select_related("user").order_by("-pk")
    return list(reversed(latest[:limit]))


def participants_active_before(*, seconds: float) -> list[str]:
    """Peer ids present for more than `seconds` (for reconciling with presence)."""
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return list(
        Participant.objects.present().filter(joined_at__lt=cutoff).values_list("peer_id", flat=True)
    )


def room_media(*, room_id: int) -> str | None:
    """Where room `room_id`'s media goes now (mesh or sfu); None once it is closed."""
    return Room.objects.open().filter(pk=room_id).values_list("media", flat=True).first()
