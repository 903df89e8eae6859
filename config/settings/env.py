"""What every part of the settings reads first: the environment parsers, BASE_DIR, DEBUG, DOMAIN.

Unset variables fall back to embedded defaults that run the whole product on
one machine (SQLite, in-memory channel layer, no TURN). `.env.example` lists
every variable read by the settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_str(name: str, default: str = "") -> str:
    """Read `name` from the environment, stripped; `default` when unset."""
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean (true/false, 1/0, yes/no, on/off); `default` when unset or blank."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Read an integer; `default` when unset or blank; refused below `minimum`."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        value = default
    else:
        try:
            value = int(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated list, items stripped, empty ones dropped."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# DOMAIN is the public host name of a deployment; it fills in the host and
# origin lists so a deployment sets one variable rather than three.
DOMAIN = env_str("DOMAIN")
