"""Reads for the admin overview: calls and people over time, and how the connections went.

Two kinds of figure, from two tables:

- **Calls and people per day** come from the call history (`Participant`): a
  *call* is a room that someone joined that day, *people* the distinct
  accounts that joined a room that day (UTC days).
- **Connections** come from the browsers' reports (`CallQuality`): one per
  (reporting participant, remote peer), its final report when the pair has
  ended, else its latest live one. A call between two people is two
  connections, one measured by each side. A connection is *relayed* when
  either end of its selected candidate pair is a TURN relay, *failed* when
  ICE failed on it at least once, and its *setup time* is the time from
  `joined` to the first remote video frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from rooms.models import CallQuality, Participant
from rooms.selectors.quality import ICE_FAILED, QUALITY_TROUBLE, RELAYED

OVERVIEW_DAYS = 14


@dataclass(frozen=True, kw_only=True)
class Day:
    day: date
    calls: int
    people: int


@dataclass(frozen=True, kw_only=True)
class Overview:
    """The figures of the last `len(days)` days, today included."""

    days: list[Day]
    connections: int
    relayed: int
    ice_failed: int
    setup_samples: int
    setup_p50_ms: int | None
    setup_p95_ms: int | None

    @property
    def since(self) -> date:
        return self.days[0].day

    @property
    def calls(self) -> int:
        return sum(day.calls for day in self.days)

    @property
    def has_calls(self) -> bool:
        return self.calls > 0

    @property
    def relayed_share(self) -> float | None:
        return self.relayed / self.connections if self.connections else None

    @property
    def ice_failure_rate(self) -> float | None:
        return self.ice_failed / self.connections if self.connections else None


def percentile(values: list[int], q: float) -> int | None:
    """The nearest-rank percentile (`q` in 0..100): a value that occurred; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def overview(*, days: int = OVERVIEW_DAYS, today: date | None = None) -> Overview:
    """The overview of the `days` UTC days up to `today` (default: today)."""
    today = today or timezone.now().date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=timezone.get_current_timezone())
    end = start + timedelta(days=days)

    per_day = {
        row["day"]: row
        for row in Participant.objects.filter(joined_at__gte=start, joined_at__lt=end)
        .annotate(day=TruncDate("joined_at"))
        .values("day")
        .annotate(calls=Count("room", distinct=True), people=Count("user", distinct=True))
        .order_by("day")
    }
    series = [
        Day(
            day=day,
            calls=per_day.get(day, {}).get("calls", 0),
            people=per_day.get(day, {}).get("people", 0),
        )
        for day in (first + timedelta(days=n) for n in range(days))
    ]

    # One report per connection: the final one, or the live one of a pair not yet ended.
    ended = CallQuality.objects.filter(
        participant=OuterRef("participant"), remote_peer_id=OuterRef("remote_peer_id"), final=True
    )
    connections = CallQuality.objects.filter(
        Q(final=True) | ~Exists(ended), created_at__gte=start, created_at__lt=end
    )
    counts = connections.aggregate(
        total=Count("pk"),
        relayed=Count("pk", filter=QUALITY_TROUBLE[RELAYED]),
        failed=Count("pk", filter=QUALITY_TROUBLE[ICE_FAILED]),
    )
    setup = list(
        connections.filter(first_frame_ms__isnull=False).values_list("first_frame_ms", flat=True)
    )
    return Overview(
        days=series,
        connections=counts["total"],
        relayed=counts["relayed"],
        ice_failed=counts["failed"],
        setup_samples=len(setup),
        setup_p50_ms=percentile(setup, 50),
        setup_p95_ms=percentile(setup, 95),
    )
