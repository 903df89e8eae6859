"""Database work from async code (the consumer, the worker loops)."""

from functools import partial

from channels.db import database_sync_to_async
from django.conf import settings

# On PostgreSQL, not thread-sensitive: each call runs on a pool thread with a
# connection from the database pool, so a burst of joins on one worker is
# served in parallel instead of queueing on the one thread Django keeps for
# thread-sensitive code. Every call is self-contained (its own transaction),
# so nothing needs that thread. SQLite serializes writers anyway, and its
# shared-cache test databases fail concurrent writers instead of waiting.
PARALLEL = settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"

db_call = partial(database_sync_to_async, thread_sensitive=not PARALLEL)
