"""Reads of call quality: the trouble thresholds and lists, and one room's live console."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import (
    ExpressionWrapper,
    F,
    FloatField,
    Q,
    QuerySet,
)
from django.db.models.functions import Cast, NullIf

from rooms.models import CallQuality, Participant, Room
from rooms.selectors.participants import room_active_participants
from rooms.selectors.rooms import rooms_with_occupancy

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
