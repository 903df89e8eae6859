"""Settings for the video-room site: one module, every value from the environment.

Unset variables fall back to embedded defaults that run the whole product on
one machine (SQLite, in-memory channel layer, no TURN). `.env.example` lists
every variable read here.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# --- Core -------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (see .env.example); "
            "for local development set DEBUG=true or use `make run`."
        )
    # Only ever used with DEBUG on: sessions signed with it are worthless elsewhere.
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105

# DOMAIN is the public host name of a deployment; it fills in the host and
# origin lists so a deployment sets one variable rather than three.
DOMAIN = env_str("DOMAIN")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", DOMAIN or "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", f"https://{DOMAIN}" if DOMAIN else "")

INSTALLED_APPS = [
    # daphne first: it replaces runserver with the ASGI server.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # Checks the releases every speed-up of transport/ was written for (transport/versions.py).
    "transport",
    "axes",
    # Content-Security-Policy (its system checks; the header comes from the middleware).
    "csp",
    "accounts",
    "rooms",
    "sfu",
    "signaling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so static files carry the policy headers too.
    "csp.middleware.CSPMiddleware",
    "config.permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A session that "sign out everywhere" ended is anonymous, even from the cache.
    "accounts.sessions.SessionEpochMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees the outcome of every login attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data -------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_POOL", True
):
    # A connection pool (psycopg 3), as Django advises under ASGI instead of
    # persistent connections: every join and chat line would otherwise open a
    # new PostgreSQL connection (a new server process) and close it again.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DATABASE_POOL_MAX", 10),
        "timeout": 10,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent joins from several sockets write at once; SQLite waits for the
    # lock instead of failing, and IMMEDIATE makes every write transaction
    # take it up front so capacity checks cannot interleave.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
# Threads a worker runs database calls on (infra/db.py): joins in a burst run
# this many at a time. SQLite has one writer at a time, so one thread there.
DATABASE_THREADS = (
    1
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    else env_int("DATABASE_THREADS", 4)
)
if DATABASE_THREADS < 1:
    raise ImproperlyConfigured("DATABASE_THREADS must be at least 1")
_pool = DATABASES["default"].get("OPTIONS", {}).get("pool")
if _pool and _pool["max_size"] <= DATABASE_THREADS:
    # Each database thread holds a connection during a call, and Django's own
    # thread-sensitive thread (HTTP views, admin) needs one too.
    raise ImproperlyConfigured(
        f"DATABASE_POOL_MAX ({_pool['max_size']}) must exceed DATABASE_THREADS ({DATABASE_THREADS})"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
# Each worker's pool for its own Redis commands (presence, limits, the socket
# registry; infra/redis.py): a burst waits up to REDIS_POOL_TIMEOUT seconds for
# one of its REDIS_POOL_SIZE connections.
REDIS_POOL_SIZE = env_int("REDIS_POOL_SIZE", 32)
REDIS_POOL_TIMEOUT = env_int("REDIS_POOL_TIMEOUT", 10)
if REDIS_POOL_SIZE < 1 or REDIS_POOL_TIMEOUT < 1:
    raise ImproperlyConfigured("REDIS_POOL_SIZE and REDIS_POOL_TIMEOUT must be at least 1")
# "pubsub" was chosen by measurement (docs/architecture.md, "Channel layer" and
# "Transport"); channels_redis' layers stay selectable so the benchmark can
# compare them.
_LAYER_BACKENDS = {
    # Redis pub/sub with batched sends and a lean reader, on redis-py's public API.
    "pubsub": "transport.layer.RedisPubSubLayer",
    # channels_redis' layers as shipped, for A/B runs of the benchmark.
    "pubsub-stock": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
CHANNEL_LAYER = env_str("CHANNEL_LAYER", "pubsub")
if CHANNEL_LAYER not in _LAYER_BACKENDS:
    raise ImproperlyConfigured(f"CHANNEL_LAYER must be one of {sorted(_LAYER_BACKENDS)}")
# Pub/sub channel names ignore Redis database numbers: deployments (and test
# runs) sharing one Redis keep apart by prefix.
CHANNEL_LAYER_PREFIX = env_str("CHANNEL_LAYER_PREFIX", "videorooms")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _LAYER_BACKENDS[CHANNEL_LAYER],
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNEL_LAYER_PREFIX},
        }
    }
    if CHANNEL_LAYER == "pubsub":
        # Sends pipelined by one flusher; false: one PUBLISH round trip at a time (A/B only).
        CHANNEL_LAYERS["default"]["CONFIG"]["batch"] = env_bool("CHANNEL_LAYER_BATCH", True)
        # Seconds between PINGs on the (otherwise silent) subscription connection;
        # unanswered by the next one: lost, reconnect. A dead Redis is noticed within 2x.
        CHANNEL_LAYERS["default"]["CONFIG"]["heartbeat"] = env_int("CHANNEL_LAYER_HEARTBEAT", 10)
    elif CHANNEL_LAYER == "core":
        # channels_redis' core layer waits for messages with BZPOPMIN for up to
        # 5 s (RedisChannelLayer.brpop_timeout), and redis-py 8 reads with a
        # 5 s socket timeout by default: an idle worker's pop then ends in
        # TimeoutError, raised into whichever consumer's receive() was doing
        # it, which kills that socket (daphne: "Exception inside application").
        # So reads may take the pop's 5 s and 10 s more.
        CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [
            {"address": REDIS_URL, "socket_timeout": 15}
        ]
        # Its capacity (ChannelFull past it; default 100) counts every message
        # waiting in one sorted set, and all the sockets of a worker share one:
        # 100 is one burst to a busy worker (lost at 300 msgs/s over 20 rooms;
        # with 1000 none, p99 30 ms at 500 msgs/s). Past it a forward is
        # answered `server-busy` (logged, counted) and a group send skips the
        # worker; channels_redis logs that at INFO (LOGGING below keeps it).
        CHANNEL_LAYERS["default"]["CONFIG"]["capacity"] = 1000
else:
    # One process only: fine for `make run` and the tests, never for several workers.
    CHANNEL_LAYERS = {"default": {"BACKEND": "transport.layer.InMemoryLayer"}}

# The cache holds counters every worker must share (failed joins, login
# attempts): Redis when there is one.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CHANNEL_LAYER_PREFIX,
            "OPTIONS": {"pool_class": "infra.cache.SharedConnectionPool"},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Accounts ---------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses (429) while a client is locked out, before any password check.
    "axes.backends.AxesStandaloneBackend",
    # Authenticates nobody: marks the attempts that get their password hashed.
    "accounts.backends.PasswordCheckMark",
    "django.contrib.auth.backends.ModelBackend",
]
# Login brute-force protection (django-axes): after AXES_FAILURE_LIMIT wrong
# passwords for one username from one client address, that pair is refused
# with 429 for LOGIN_LOCKOUT_MINUTES. The address is the ASGI client address:
# behind the proxy, daphne's --proxy-headers takes it from the proxy's
# X-Forwarded-For, and only the proxy can reach daphne (docs/deployment.md);
# a client's own X-Forwarded-For is never read.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("LOGIN_LOCKOUT_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "accounts.views.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_VERBOSE = False
# Failed logins per client address (accounts/limits.py), whatever the username:
# a script trying fresh usernames costs a password hash each. LIMIT at once (a
# classroom of 30 behind one NAT address with three typos each fits), then one
# per WINDOW/LIMIT seconds (6 s: ten hashes a minute); past it 429 with
# Retry-After, before any hash. Logins that succeed are not counted.
LOGIN_FAILURE_ADDRESS_LIMIT = env_int("LOGIN_FAILURE_ADDRESS_LIMIT", 100)
LOGIN_FAILURE_ADDRESS_WINDOW = env_int("LOGIN_FAILURE_ADDRESS_WINDOW", 600)
# Sign-up forms submitted per client address, valid or not (each one says
# whether its username is taken): LIMIT at once, then one per WINDOW/LIMIT
# seconds; past it 429 saying only when to try again.
SIGNUP_ATTEMPT_ADDRESS_LIMIT = env_int("SIGNUP_ATTEMPT_ADDRESS_LIMIT", 100)
SIGNUP_ATTEMPT_ADDRESS_WINDOW = env_int("SIGNUP_ATTEMPT_ADDRESS_WINDOW", 600)
for _name in (
    "LOGIN_FAILURE_ADDRESS_LIMIT",
    "LOGIN_FAILURE_ADDRESS_WINDOW",
    "SIGNUP_ATTEMPT_ADDRESS_LIMIT",
    "SIGNUP_ATTEMPT_ADDRESS_WINDOW",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1")
CSRF_FAILURE_VIEW = "accounts.views.csrf_failure"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "lobby"
LOGOUT_REDIRECT_URL = "login"

# --- Calls: signaling and ICE -------------------------------------------------

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
# (transport/server.py); past it the socket is closed with 4408. A tab that
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
JOIN_FAILURE_LIMIT = env_int("JOIN_FAILURE_LIMIT", 20)
JOIN_FAILURE_ADDRESS_LIMIT = env_int("JOIN_FAILURE_ADDRESS_LIMIT", 100)
JOIN_FAILURE_WINDOW = env_int("JOIN_FAILURE_WINDOW", 600)
JOIN_FAILURE_ADDRESS_MAX_WAIT = env_int("JOIN_FAILURE_ADDRESS_MAX_WAIT", 10)
# Wrong PINs for one room (from anyone) before its PIN is locked for
# PIN_LOCK_SECONDS: joins that need the PIN are refused `pin-locked` and the
# owner is told (`pin-locked`).
PIN_FAILURE_LIMIT = env_int("PIN_FAILURE_LIMIT", 10)
PIN_LOCK_SECONDS = env_int("PIN_LOCK_SECONDS", 900)
# What one account adds to the database over all its sockets and workers: joins
# (create, join; not resumes) and chat lines per hour, that many at once, then
# evenly spread.
JOINS_PER_USER_PER_HOUR = env_int("JOINS_PER_USER_PER_HOUR", 60)
CHAT_PER_USER_PER_HOUR = env_int("CHAT_PER_USER_PER_HOUR", 600)
# Joins (create, join, resume) one account may have in flight at once on one
# worker; more are refused at once, before any Redis or database work.
JOINS_IN_FLIGHT_PER_USER = env_int("JOINS_IN_FLIGHT_PER_USER", 2)
# Signaling sockets one account may hold open at once, across every worker.
SOCKETS_PER_USER = env_int("SOCKETS_PER_USER", 10)
# Rooms one account may create per hour, and hold open at once.
ROOMS_CREATED_PER_HOUR = env_int("ROOMS_CREATED_PER_HOUR", 20)
OPEN_ROOMS_PER_USER = env_int("OPEN_ROOMS_PER_USER", 10)
# Accounts that may be created from one client address at once (a classroom of
# 30 signing up at 9:00 fits); past them, one per 3600/this many seconds.
SIGNUPS_PER_ADDRESS_PER_HOUR = env_int("SIGNUPS_PER_ADDRESS_PER_HOUR", 50)
# Chat lines per socket: sustained per second, and the burst on top.
CHAT_RATE = env_int("CHAT_RATE", 1)
CHAT_BURST = env_int("CHAT_BURST", 10)
# Housekeeping (rooms/housekeeping.py), run by one worker every PRUNE_INTERVAL
# seconds: rooms nobody has been in for EMPTY_ROOM_CLOSE_AFTER seconds are
# closed; chat older than CHAT_RETENTION_DAYS is deleted.
EMPTY_ROOM_CLOSE_AFTER = env_int("EMPTY_ROOM_CLOSE_AFTER", 24 * 3600)
CHAT_RETENTION_DAYS = env_int("CHAT_RETENTION_DAYS", 30)
PRUNE_INTERVAL = env_int("PRUNE_INTERVAL", 600)
for _name in (
    "JOIN_FAILURE_LIMIT",
    "JOIN_FAILURE_ADDRESS_LIMIT",
    "JOIN_FAILURE_WINDOW",
    "PIN_FAILURE_LIMIT",
    "PIN_LOCK_SECONDS",
    "JOINS_PER_USER_PER_HOUR",
    "CHAT_PER_USER_PER_HOUR",
    "SOCKETS_PER_USER",
    "JOINS_IN_FLIGHT_PER_USER",
    "CHAT_RATE",
    "CHAT_BURST",
    "EMPTY_ROOM_CLOSE_AFTER",
    "CHAT_RETENTION_DAYS",
    "PRUNE_INTERVAL",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1")
# Close every socket with 1012 on SIGTERM so clients resume on another worker.
SIGTERM_DRAIN = env_bool("SIGTERM_DRAIN", True)

# --- HTTP, static files and security -----------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Behind the TLS proxy the app sees plain HTTP; the proxy says what the
# browser used. Only trust the header when a proxy that sets it is in front.
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = False

# Secure by default: with DEBUG off the site is served over HTTPS, so every
# HTTPS protection is on unless a variable turns it off (a plain-http test
# rig on loopback does; `make run` has DEBUG on and needs none of this).
_HTTPS_DEFAULT = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _HTTPS_DEFAULT)
# The health probes answer plain HTTP too: the compose healthchecks ask a
# worker directly, not through the proxy. They set no cookie and show nothing
# private (config/health.py).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", _HTTPS_DEFAULT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _HTTPS_DEFAULT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
# HSTS preload stays off unless asked for. The `preload` token is the domain
# owner's consent to the browsers' built-in HSTS list: with it anyone may
# submit the domain at hstspreload.org, the list then binds the registrable
# domain and every subdomain to HTTPS in shipped browsers, and getting off it
# takes months of browser releases. hstspreload.org itself asks projects that
# offer HSTS not to send `preload` by default. Django's `check --deploy` warns
# when it is off (security.W021) only because a domain without it cannot be
# submitted; that warning is silenced while preload is off, on purpose. Set
# SECURE_HSTS_PRELOAD=true once you have decided to submit the domain.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): pages run only this site's own files.
# Scripts are ES modules and styles app.css, never inline (server data reaches
# a page through json_script, a data block that is never run), so neither
# script-src nor style-src allows 'unsafe-inline'. connect-src 'self' covers
# fetch() and, in CSP Level 3 browsers, ws:/wss: to the same host and port
# (tests/e2e/test_csp.py calls through it in Chromium); SIGNALING_URL's origin
# is added when it is set, for browsers older than that and for a signaling
# host of its own. Videos play MediaStreams through srcObject, which no fetch
# directive governs, so media-src and img-src need nothing beyond 'self'. No
# plugins, no <base> pointing elsewhere, forms post only here, and no site may
# frame the pages (X_FRAME_OPTIONS says the same to older browsers). Django
# admin needs no exception: its templates have no inline script, style or
# handler either.
_SIGNALING = urlsplit(SIGNALING_URL)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "media-src": [SELF],
        "connect-src": [SELF]
        + ([f"{_SIGNALING.scheme}://{_SIGNALING.netloc}"] if SIGNALING_URL else []),
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Permissions-Policy (config/permissions_policy.py): a call needs the camera,
# the microphone and screen sharing on this site's own pages, and the room
# page also plays audio and video as it arrives, picks the speaker and copies
# the room link; every other powerful feature is denied to every page and
# frame. Only names Chromium knows are listed: it warns about any other.
PERMISSIONS_POLICY = {
    "camera": ["self"],
    "microphone": ["self"],
    "display-capture": ["self"],
    "autoplay": ["self"],
    "speaker-selection": ["self"],
    "clipboard-write": ["self"],
    "fullscreen": ["self"],
    "picture-in-picture": ["self"],
    **{
        feature: []
        for feature in (
            "accelerometer",
            "browsing-topics",
            "captured-surface-control",
            "clipboard-read",
            "compute-pressure",
            "encrypted-media",
            "gamepad",
            "geolocation",
            "gyroscope",
            "hid",
            "identity-credentials-get",
            "idle-detection",
            "keyboard-map",
            "local-fonts",
            "magnetometer",
            "midi",
            "otp-credentials",
            "payment",
            "publickey-credentials-create",
            "publickey-credentials-get",
            "screen-wake-lock",
            "serial",
            "storage-access",
            "usb",
            "window-management",
            "xr-spatial-tracking",
        )
    },
}
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
# Sessions read through the cache (Redis with several workers), written to the
# database too: every WebSocket opened is a session read, and a join burst is
# many at once.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
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

# --- SFU: Janus (docs/sfu.md) ---------------------------------------------------
# Calls past a few people go through Janus' VideoRoom, which the site drives
# over the Janus API (sfu/). JANUS_URL unset means no SFU: every call
# stays a mesh. ws://host:port, wss://..., or unix:/path for a UNIX socket.
JANUS_URL = env_str("JANUS_URL")
# Janus' api_secret and the VideoRoom admin_key (deploy/janus/entrypoint
# renders the same two into Janus' config). Room secrets and PINs are derived
# from the admin key per room (sfu.room_credentials).
JANUS_API_SECRET = env_str("JANUS_API_SECRET")
JANUS_ADMIN_KEY = env_str("JANUS_ADMIN_KEY")
# Rooms in `auto` media mode (the default) stay peer to peer up to this many
# people and move to the SFU when one more joins (and Janus answers).
MESH_MAX_PEERS = env_int("MESH_MAX_PEERS", 4)
# An `auto` room on the SFU goes back to direct (mesh) once it has had
# MESH_MAX_PEERS people or fewer for MESH_RETURN_AFTER seconds (someone who
# leaves and comes back within it changes nothing: no flapping); the Janus
# room is destroyed SFU_RETURN_GRACE seconds later, the browsers' time to set
# up their direct links while still receiving through the SFU. The grace is
# shorter than the delay, so a room's next return never meets its last grace.
MESH_RETURN_AFTER = env_int("MESH_RETURN_AFTER", 60)
SFU_RETURN_GRACE = env_int("SFU_RETURN_GRACE", 30)
if not 1 <= SFU_RETURN_GRACE < MESH_RETURN_AFTER:
    raise ImproperlyConfigured("SFU_RETURN_GRACE must be at least 1 and below MESH_RETURN_AFTER")
# The largest capacity of an `sfu` or `auto` room (mesh rooms: 12); each Janus
# room admits its room's capacity of publishers.
SFU_CAPACITY_MAX = env_int("SFU_CAPACITY_MAX", 50)
# Seconds: a Janus request's answer; between keepalives of each session (Janus
# drops a session silent for its session_timeout, 60 s); how long a worker
# tries to claim its sessions back after its connection to Janus dropped
# (Janus keeps them for its reclaim_session_timeout, 30 s).
JANUS_REQUEST_TIMEOUT = env_int("JANUS_REQUEST_TIMEOUT", 10)
JANUS_KEEPALIVE_INTERVAL = env_int("JANUS_KEEPALIVE_INTERVAL", 15)
JANUS_RECLAIM_WINDOW = env_int("JANUS_RECLAIM_WINDOW", 25)
# The server's watchdog of every SFU PeerConnection (sfu/seat.py): one not up
# this many seconds after its answer is replaced (doubling on each failure, to 60 s).
# The browser's own watchdog acts first (static/js/sfu.js); this is for when it cannot.
SFU_SETUP_TIMEOUT = env_int("SFU_SETUP_TIMEOUT", 30)
if JANUS_URL:
    if not JANUS_URL.startswith(("ws://", "wss://", "unix:/")):
        raise ImproperlyConfigured("JANUS_URL must be ws://host:port, wss://... or unix:/path")
    if len(JANUS_API_SECRET) < 16 or len(JANUS_ADMIN_KEY) < 16:
        raise ImproperlyConfigured(
            "JANUS_URL is set: JANUS_API_SECRET and JANUS_ADMIN_KEY must be set too"
            " (at least 16 characters each; deploy/make-env writes them)"
        )
    if not 1 <= JANUS_KEEPALIVE_INTERVAL <= 20:
        raise ImproperlyConfigured(
            "JANUS_KEEPALIVE_INTERVAL must be 1-20 s (Janus' session_timeout is 60 s)"
        )
if not 1 <= MESH_MAX_PEERS <= 12:
    raise ImproperlyConfigured("MESH_MAX_PEERS must be 1-12")
if not 12 <= SFU_CAPACITY_MAX <= 200:
    raise ImproperlyConfigured("SFU_CAPACITY_MAX must be 12-200")
# Where Janus may send ICE connectivity checks (sfu/sdp.py): the browsers'
# candidates on public unicast addresses only, plus the networks in ALLOW (a site
# whose browsers or TURN relays are on a LAN; the test stacks' loopback), minus
# those in DENY (public addresses that must not be probed, e.g. the server's own).
# Comma-separated CIDRs.
SFU_CANDIDATE_ALLOW = env_list("SFU_CANDIDATE_ALLOW")
SFU_CANDIDATE_DENY = env_list("SFU_CANDIDATE_DENY")
for _cidr in (*SFU_CANDIDATE_ALLOW, *SFU_CANDIDATE_DENY):
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"SFU_CANDIDATE_ALLOW / SFU_CANDIDATE_DENY: {_cidr!r} is not a network (CIDR)"
        ) from None
# --- end of SFU: Janus ------------------------------------------------------------

# --- Call quality (rooms/quality.py, docs/protocol.md "quality") ---------------------
# Reports of one socket about one remote peer: at most one live and one final
# report per QUALITY_MIN_INTERVAL seconds on average, one up to an interval early
# (signaling/limits.py QualityLimit; browsers send one every 10 s);
# all of one socket's reports: QUALITY_RATE a second, bursts of QUALITY_BURST
# (a full mesh's final reports at once). Reports about a peer are still taken
# QUALITY_PEER_GRACE seconds after it left (the final one comes as it goes).
QUALITY_MIN_INTERVAL = env_int("QUALITY_MIN_INTERVAL", 5)
QUALITY_RATE = env_int("QUALITY_RATE", 2)
QUALITY_BURST = env_int("QUALITY_BURST", 24)
QUALITY_PEER_GRACE = env_int("QUALITY_PEER_GRACE", 60)
# The call history (participants, and their quality reports) is kept this many
# days after each participant left; the housekeeping deletes what is older.
CALL_HISTORY_RETENTION_DAYS = env_int("CALL_HISTORY_RETENTION_DAYS", 90)
for _name in (
    "QUALITY_MIN_INTERVAL",
    "QUALITY_RATE",
    "QUALITY_BURST",
    "QUALITY_PEER_GRACE",
    "CALL_HISTORY_RETENTION_DAYS",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1")
# --- end of call quality --------------------------------------------------------------

# --- Operations: metrics and logs (docs/operations.md) -------------------------------
# Metrics: every worker serves its own at /metrics (config/metrics.py), for
# Prometheus on the internal network; refused when a proxy handed the
# request on (BEHIND_PROXY and X-Forwarded-For), and Caddy refuses the path.
# Logs: `plain` lines for people, or `json` (one object a line, for Loki or
# ELK). The signaling events (join, leave, kick, close, refusals) carry
# their fields either way (signaling/observe.py); never PINs, SDP or keys.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'")
LOGGING["formatters"] = {
    "plain": {"()": "infra.logs.PlainFormatter"},
    "json": {"()": "infra.logs.JsonFormatter"},
}
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT
# --- end of Operations ----------------------------------------------------------------
