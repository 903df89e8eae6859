"""Calls: the signaling socket, ICE and TURN, presence, rates and limits, housekeeping, quality."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.settings.env import DOMAIN, env_bool, env_int, env_list, env_str

# Public URL of the signaling socket, for deployments behind a proxy whose
# address the app cannot see; unset, it is derived from each request.
SIGNALING_URL = env_str("SIGNALING_URL", f"wss://{DOMAIN}/ws/signaling/" if DOMAIN else "")
STUN_URLS = env_list("STUN_URLS")
TURN_URLS = env_list("TURN_URLS")
TURN_SECRET = env_str("TURN_SECRET")
# Seconds a TURN credential allocates for. Only sockets seated in a room get
# one, renewed half-way through its life while the seat lasts, so a signed-out
# or blocked account's last one stops allocating this long after it was issued
# at the latest. coturn's max-allocate-lifetime is no longer (deploy/turnserver.conf).
TURN_TTL = env_int("TURN_TTL", 300)
if TURN_TTL < 10:
    raise ImproperlyConfigured("TURN_TTL must be at least 10 (seconds)")
# "relay" forces every call through TURN (for networks that must hide peers' addresses).
ICE_TRANSPORT_POLICY = env_str("ICE_TRANSPORT_POLICY", "all")
if ICE_TRANSPORT_POLICY not in {"all", "relay"}:
    raise ImproperlyConfigured("ICE_TRANSPORT_POLICY must be 'all' or 'relay'")
if TURN_URLS and not TURN_SECRET:
    raise ImproperlyConfigured("TURN_URLS is set but TURN_SECRET is not")

SIGNALING_MAX_MESSAGE_BYTES = env_int("SIGNALING_MAX_MESSAGE_BYTES", 64 * 1024)
# Bytes the worker may hold for one socket that the client has not read yet
# (transport/patches.py); past it the socket is closed with 4408. A tab that
# reads, even over a slow link, never has more than a joined message's worth.
SOCKET_SEND_BUFFER_MAX = env_int("SOCKET_SEND_BUFFER_MAX", 2 * 1024 * 1024)
if SOCKET_SEND_BUFFER_MAX < 2 * SIGNALING_MAX_MESSAGE_BYTES:
    raise ImproperlyConfigured("SOCKET_SEND_BUFFER_MAX must be at least twice the frame size")
# Presence (signaling/presence.py): a peer nobody renews for PRESENCE_TTL seconds
# is gone; its worker renews it every PRESENCE_RENEW_INTERVAL; every worker
# sweeps for expired peers every PRESENCE_SWEEP_INTERVAL.
PRESENCE_TTL = env_int("PRESENCE_TTL", 30)
PRESENCE_RENEW_INTERVAL = env_int("PRESENCE_RENEW_INTERVAL", 10)
PRESENCE_SWEEP_INTERVAL = env_int("PRESENCE_SWEEP_INTERVAL", 2)
# Seconds a dropped peer may take to come back with `resume` before the others
# are told it left (reason `timeout`).
RESUME_GRACE = env_int("RESUME_GRACE", 30)
# How often each worker checks Redis is there, to notice an outage and recover.
REDIS_CHECK_INTERVAL = env_int("REDIS_CHECK_INTERVAL", 1)
if PRESENCE_RENEW_INTERVAL * 2 > PRESENCE_TTL:
    raise ImproperlyConfigured("PRESENCE_TTL must be at least twice PRESENCE_RENEW_INTERVAL")
# Per-connection message rate (token bucket): sustained messages per second,
# the burst allowed on top, and refusals tolerated before closing with 4429.
SIGNALING_RATE = env_int("SIGNALING_RATE", 50)
SIGNALING_BURST = env_int("SIGNALING_BURST", 200)
SIGNALING_RATE_STRIKES = env_int("SIGNALING_RATE_STRIKES", 50)
# Failed joins and room lookups (unknown number, wrong PIN) per window (seconds):
# per user a cap; per client address (a classroom shares one NAT address) a
# rate: that many at once, then one per window/limit seconds, each failure
# past it answered once its turn comes (waiting at most
# JOIN_FAILURE_ADDRESS_MAX_WAIT seconds, else `rate-limited`). Joins that
# succeed are never slowed.
JOIN_FAILURE_LIMIT = env_int("JOIN_FAILURE_LIMIT", 20, minimum=1)
JOIN_FAILURE_ADDRESS_LIMIT = env_int("JOIN_FAILURE_ADDRESS_LIMIT", 100, minimum=1)
JOIN_FAILURE_WINDOW = env_int("JOIN_FAILURE_WINDOW", 600, minimum=1)
JOIN_FAILURE_ADDRESS_MAX_WAIT = env_int("JOIN_FAILURE_ADDRESS_MAX_WAIT", 10)
# Wrong PINs for one room (from anyone) before its PIN is locked for
# PIN_LOCK_SECONDS: joins that need the PIN are refused `pin-locked` and the
# owner is told (`pin-locked`).
PIN_FAILURE_LIMIT = env_int("PIN_FAILURE_LIMIT", 10, minimum=1)
PIN_LOCK_SECONDS = env_int("PIN_LOCK_SECONDS", 900, minimum=1)
# What one account adds to the database over all its sockets and workers: joins
# (create, join; not resumes) and chat lines per hour, that many at once, then
# evenly spread.
JOINS_PER_USER_PER_HOUR = env_int("JOINS_PER_USER_PER_HOUR", 60, minimum=1)
CHAT_PER_USER_PER_HOUR = env_int("CHAT_PER_USER_PER_HOUR", 600, minimum=1)
# Joins (create, join, resume) one account may have in flight at once on one
# worker; more are refused at once, before any Redis or database work.
JOINS_IN_FLIGHT_PER_USER = env_int("JOINS_IN_FLIGHT_PER_USER", 2, minimum=1)
# Signaling sockets one account may hold open at once, across every worker.
SOCKETS_PER_USER = env_int("SOCKETS_PER_USER", 10, minimum=1)
# Rooms one account may create per hour, and hold open at once.
ROOMS_CREATED_PER_HOUR = env_int("ROOMS_CREATED_PER_HOUR", 20)
OPEN_ROOMS_PER_USER = env_int("OPEN_ROOMS_PER_USER", 10)
# Accounts that may be created from one client address at once (a classroom of
# 30 signing up at 9:00 fits); past them, one per 3600/this many seconds.
SIGNUPS_PER_ADDRESS_PER_HOUR = env_int("SIGNUPS_PER_ADDRESS_PER_HOUR", 50)
# Chat lines per socket: sustained per second, and the burst on top.
CHAT_RATE = env_int("CHAT_RATE", 1, minimum=1)
CHAT_BURST = env_int("CHAT_BURST", 10, minimum=1)
# Housekeeping (rooms/services/housekeeping.py), run by one worker every PRUNE_INTERVAL
# seconds: rooms nobody has been in for EMPTY_ROOM_CLOSE_AFTER seconds are
# closed; chat older than CHAT_RETENTION_DAYS is deleted.
EMPTY_ROOM_CLOSE_AFTER = env_int("EMPTY_ROOM_CLOSE_AFTER", 24 * 3600, minimum=1)
CHAT_RETENTION_DAYS = env_int("CHAT_RETENTION_DAYS", 30, minimum=1)
PRUNE_INTERVAL = env_int("PRUNE_INTERVAL", 600, minimum=1)
# Close every socket with 1012 on SIGTERM so clients resume on another worker.
SIGTERM_DRAIN = env_bool("SIGTERM_DRAIN", True)

# Call quality (rooms/services/quality.py, docs/protocol.md "quality").
# Reports of one socket about one remote peer: at most one live and one final
# report per QUALITY_MIN_INTERVAL seconds on average, one up to an interval early
# (signaling/limits.py QualityLimit; browsers send one every 10 s);
# all of one socket's reports: QUALITY_RATE a second, bursts of QUALITY_BURST
# (a full mesh's final reports at once). Reports about a peer are still taken
# QUALITY_PEER_GRACE seconds after it left (the final one comes as it goes).
QUALITY_MIN_INTERVAL = env_int("QUALITY_MIN_INTERVAL", 5, minimum=1)
QUALITY_RATE = env_int("QUALITY_RATE", 2, minimum=1)
QUALITY_BURST = env_int("QUALITY_BURST", 24, minimum=1)
QUALITY_PEER_GRACE = env_int("QUALITY_PEER_GRACE", 60, minimum=1)
# The call history (participants, and their quality reports) is kept this many
# days after each participant left; the housekeeping deletes what is older.
CALL_HISTORY_RETENTION_DAYS = env_int("CALL_HISTORY_RETENTION_DAYS", 90, minimum=1)
