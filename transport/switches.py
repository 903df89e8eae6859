"""Switches that turn a speed-up off for an A/B run (`python -m bench --variant ...`)."""

from __future__ import annotations

import os


def switched_off(name: str) -> bool:
    """True when the environment variable `name` says false/0/no/off (unset: on)."""
    return os.environ.get(name, "true").strip().lower() in {"0", "false", "no", "off"}
