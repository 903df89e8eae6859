"""Operations (docs/operations.md): logs, and where each worker's metrics are served.

Metrics: every worker serves its own at /metrics (config/metrics.py), for
Prometheus on the internal network; refused when a proxy handed the request on
(BEHIND_PROXY and X-Forwarded-For), and Caddy refuses the path.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.settings.env import env_str

# Logs: `plain` lines for people, or `json` (one object a line, for Loki or
# ELK). The signaling events (join, leave, kick, close, refusals) carry
# their fields either way (signaling/observe.py); never PINs, SDP or keys.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "infra.logs.PlainFormatter"},
        "json": {"()": "infra.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # axes logs every successful login's reset at INFO.
        "axes": {"level": "WARNING"},
        # CHANNEL_LAYER=core: its one INFO line is a group send that skipped a
        # full worker (messages lost); shown whatever LOG_LEVEL says.
        "channels_redis.core": {"level": "INFO"},
    },
}
