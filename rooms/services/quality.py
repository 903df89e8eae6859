"""Call quality: what each browser reports about its connection to each remote peer.

A browser sends a `quality` report (docs/protocol.md, an extension) about
every remote peer every 10 s during the call and once at the end of the
pair. The server keeps, per (reporting participant, remote peer), the
latest live summary and the final one (`CallQuality`), deleted with the
call history (rooms/services/housekeeping.py). Nothing is published: the figures are
for the operator (Django admin), not for the other peers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from rooms import errors, protocol
from rooms.events import Outbox
from rooms.models import CallQuality, Participant, present


@dataclass(frozen=True, kw_only=True)
class Summary:
    """One report's figures, named as `CallQuality` stores them; None (or "") when unknown."""

    state: str | None = None
    first_frame_ms: int | None = None
    local_candidate_type: str | None = None
    remote_candidate_type: str | None = None
    protocol: str | None = None
    relay_protocol: str | None = None
    rtt_ms: int | None = None
    bitrate_in_kbps: int | None = None
    bitrate_out_kbps: int | None = None
    packets_in: int | None = None
    packets_lost_in: int | None = None
    packets_out: int | None = None
    packets_lost_out: int | None = None
    frames_decoded: int | None = None
    frames_dropped: int | None = None
    ice_restarts: int | None = None
    ice_failed: int = 0
    ice_disconnected_timeouts: int = 0

    @classmethod
    def from_message(cls, msg: dict[str, Any]) -> Summary:
        """The figures of a `quality` message as `rooms.protocol` validated it."""
        pair, inbound, outbound = msg["pair"], msg["in"], msg["out"]
        return cls(
            state=msg["state"],
            first_frame_ms=msg["firstFrameMs"],
            local_candidate_type=pair["local"],
            remote_candidate_type=pair["remote"],
            protocol=pair["protocol"],
            relay_protocol=pair["relayProtocol"],
            rtt_ms=msg["rttMs"],
            bitrate_in_kbps=inbound["kbps"],
            bitrate_out_kbps=outbound["kbps"],
            packets_in=inbound["packets"],
            packets_lost_in=inbound["lost"],
            packets_out=outbound["packets"],
            packets_lost_out=outbound["lost"],
            frames_decoded=inbound["framesDecoded"],
            frames_dropped=inbound["framesDropped"],
            ice_restarts=msg["iceRestarts"],
            ice_failed=msg["iceFailures"]["failed"],
            ice_disconnected_timeouts=msg["iceFailures"]["disconnected-timeout"],
        )

    def fields(self) -> dict[str, Any]:
        """The model's field values: unknown text is "" (Django's blank), unknown numbers None."""
        return {
            name: ("" if value is None and name in _TEXT_FIELDS else value)
            for name, value in asdict(self).items()
        }


SUMMARY_FIELDS = tuple(Summary.__dataclass_fields__)
_TEXT_FIELDS = frozenset(
    {"state", "local_candidate_type", "remote_candidate_type", "protocol", "relay_protocol"}
)


def quality_record(
    *,
    room_id: int,
    peer_id: str,
    remote_peer_id: str,
    final: bool,
    summary: Summary,
    now: datetime | None = None,
) -> Outbox:
    """Keep `peer_id`'s report about `remote_peer_id`: one upsert, nothing to publish.

    The remote peer must have been in the room while the reporter was (a
    report is about a pair that existed), and be there now or have left
    less than `QUALITY_PEER_GRACE` seconds ago (the final report comes as, or
    just after, the pair ends): else `PeerNotFound`. A participant reports
    on at most `QUALITY_PEERS_MAX` (11) peers, so keeps at most 22 rows
    (docs/protocol.md); a report about one more is `CapReached`. A reporter
    that is no longer in the room (a race with a kick or the room closing)
    stores nothing.
    """
    now = now or timezone.now()
    reporter = (
        Participant.objects.present()
        .filter(peer_id=peer_id, room_id=room_id)
        .values_list("pk", "joined_at")
        .first()
    )
    if reporter is None:
        return ()
    reporter, joined_at = reporter
    since = max(joined_at, now - timedelta(seconds=settings.QUALITY_PEER_GRACE))
    remote = (
        Participant.objects.filter(room_id=room_id, peer_id=remote_peer_id)
        .filter(present() | Q(left_at__gte=since))
        .exclude(pk=reporter)
        .values_list("pk", flat=True)
        .first()
    )
    if remote is None:
        raise errors.PeerNotFound()
    # One socket holds the reporter's seat and handles one frame at a time:
    # nothing races between this count and the insert.
    reported = set(
        CallQuality.objects.filter(participant_id=reporter).values_list("remote_peer_id", flat=True)
    )
    if remote_peer_id not in reported and len(reported) >= protocol.QUALITY_PEERS_MAX:
        raise errors.CapReached(
            f"Reports about {protocol.QUALITY_PEERS_MAX} people are kept per call; no more."
        )
    # INSERT ... ON CONFLICT DO UPDATE (PostgreSQL and SQLite alike): one
    # statement, no lock, and the row's first-report time is kept.
    CallQuality.objects.bulk_create(
        [
            CallQuality(
                participant_id=reporter,
                remote_peer_id=remote_peer_id,
                remote_id=remote,
                final=final,
                created_at=now,
                updated_at=now,
                **summary.fields(),
            )
        ],
        update_conflicts=True,
        unique_fields=["participant", "remote_peer_id", "final"],
        update_fields=["remote", *SUMMARY_FIELDS, "updated_at"],
    )
    return ()
