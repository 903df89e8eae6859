"""Where state lives: the database, Redis, the channel layer and the cache."""

from __future__ import annotations

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.settings.env import BASE_DIR, env_bool, env_int, env_str

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
