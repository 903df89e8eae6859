"""The SFU's settings, checked as Django system checks: every problem reported at once.

Registered by `SfuConfig.ready()`. Each is an Error, so `manage.py check`,
`migrate` and the launcher (`python -m config.serve`, which runs the checks
before it serves) refuse to start on any of them, naming them all.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

JANUS_SCHEMES = ("ws://", "wss://", "unix:/")
# Janus drops a session silent for its session_timeout (60 s, deploy/janus).
KEEPALIVE_RANGE = range(1, 21)
MESH_MAX_PEERS_RANGE = range(1, 13)
SFU_CAPACITY_MAX_RANGE = range(12, 201)
SECRET_MIN_LENGTH = 16


def check_sfu_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Return one Error per SFU setting that would make calls fail, in the order of the settings."""
    errors = []
    if settings.JANUS_URL:
        if not settings.JANUS_URL.startswith(JANUS_SCHEMES):
            errors.append(
                Error("JANUS_URL must be ws://host:port, wss://... or unix:/path", id="sfu.E001")
            )
        if (
            len(settings.JANUS_API_SECRET) < SECRET_MIN_LENGTH
            or len(settings.JANUS_ADMIN_KEY) < SECRET_MIN_LENGTH
        ):
            errors.append(
                Error(
                    "JANUS_URL is set: JANUS_API_SECRET and JANUS_ADMIN_KEY must be set too"
                    " (at least 16 characters each; deploy/make-env writes them)",
                    id="sfu.E002",
                )
            )
        if settings.JANUS_KEEPALIVE_INTERVAL not in KEEPALIVE_RANGE:
            errors.append(
                Error(
                    "JANUS_KEEPALIVE_INTERVAL must be 1-20 s (Janus' session_timeout is 60 s)",
                    id="sfu.E003",
                )
            )
    if settings.MESH_MAX_PEERS not in MESH_MAX_PEERS_RANGE:
        errors.append(Error("MESH_MAX_PEERS must be 1-12", id="sfu.E004"))
    if settings.SFU_CAPACITY_MAX not in SFU_CAPACITY_MAX_RANGE:
        errors.append(Error("SFU_CAPACITY_MAX must be 12-200", id="sfu.E005"))
    # The grace is shorter than the delay, so a room's next return never meets its last grace.
    if not 1 <= settings.SFU_RETURN_GRACE < settings.MESH_RETURN_AFTER:
        errors.append(
            Error("SFU_RETURN_GRACE must be at least 1 and below MESH_RETURN_AFTER", id="sfu.E006")
        )
    for cidr in (*settings.SFU_CANDIDATE_ALLOW, *settings.SFU_CANDIDATE_DENY):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"SFU_CANDIDATE_ALLOW / SFU_CANDIDATE_DENY: {cidr!r} is not a network (CIDR)",
                    id="sfu.E007",
                )
            )
    return errors
