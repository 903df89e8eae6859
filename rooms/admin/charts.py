"""The geometry of the admin overview's charts: pure numbers, drawn as SVG by the template.

Nothing here knows of Django or HTML. The template
(templates/admin/rooms/overview.html) turns these shapes into `<rect>`,
`<line>` and `<text>` elements with presentation attributes only (no
`style`), which the Content-Security-Policy's `style-src 'self'` allows;
colours come from the admin stylesheet by class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Room above the bars for their values, and below them for the labels.
TOP = 18
BOTTOM = 20


@dataclass(frozen=True, kw_only=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True, kw_only=True)
class BarChart:
    width: int
    height: int
    baseline: float
    bars: list[Bar]
    # Label every `label_every`-th bar, so that the labels never overlap.
    label_every: int
    peak: int

    @property
    def labelled(self) -> list[Bar]:
        """The bars that get a label: the last one (today), and every `label_every`-th before."""
        return self.bars[::-1][:: self.label_every][::-1]


def bar_chart(
    values: Sequence[tuple[str, int]], *, width: int = 560, height: int = 150, gap: float = 4
) -> BarChart:
    """Vertical bars for `values` (label, count >= 0), scaled to the largest (all 0: flat)."""
    peak = max((value for _, value in values), default=0)
    plot = height - TOP - BOTTOM
    slot = width / len(values) if values else width
    bars = []
    for index, (label, value) in enumerate(values):
        bar_height = plot * value / peak if peak else 0.0
        bars.append(
            Bar(
                label=label,
                value=value,
                x=round(index * slot + gap / 2, 2),
                y=round(TOP + plot - bar_height, 2),
                width=round(max(slot - gap, 1.0), 2),
                height=round(bar_height, 2),
            )
        )
    # About 44 px per label ("12-01" at the admin's small font).
    label_every = max(1, -(-44 // int(slot))) if values else 1
    return BarChart(
        width=width,
        height=height,
        baseline=TOP + plot,
        bars=bars,
        label_every=label_every,
        peak=peak,
    )


@dataclass(frozen=True, kw_only=True)
class Share:
    """A part of a whole as one filled bar: `filled` of `width` pixels, and its percentage."""

    width: int
    filled: float
    percent: str


def share(part: int, whole: int, *, width: int = 560) -> Share | None:
    """`part` of `whole` as a bar; None when there is no whole to take a share of."""
    if whole <= 0:
        return None
    fraction = min(max(part / whole, 0.0), 1.0)
    return Share(width=width, filled=round(width * fraction, 2), percent=f"{100 * fraction:.1f} %")


def hbars(
    values: Sequence[tuple[str, int]], *, width: int = 560, row: int = 26, label_width: int = 60
) -> list[Bar]:
    """Horizontal bars (label, value >= 0), scaled to the largest, one row each."""
    peak = max((value for _, value in values), default=0)
    # Room on the right for the value's text.
    span = width - label_width - 80
    return [
        Bar(
            label=label,
            value=value,
            x=label_width,
            y=index * row + 4,
            width=round(span * value / peak, 2) if peak else 0.0,
            height=row - 8,
        )
        for index, (label, value) in enumerate(values)
    ]
