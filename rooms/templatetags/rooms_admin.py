"""Template filters of the admin console and the overview."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


def format_duration(seconds: float) -> str:
    """A duration as people say it: "45 s", "12 min", "3 h 05 min", "2 d 4 h"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def elapsed(since: datetime | None, now: datetime) -> str:
    """How long from `since` to `now`, to the second under a minute ("8 s", "3 min")."""
    return "" if since is None else format_duration((now - since).total_seconds())
