"""Database work from async code (the consumer, the worker loops, the WebSocket login).

Every call is self-contained (its own queries, its own transaction), so none
needs Django's one thread for thread-sensitive code. On PostgreSQL they run on
a fixed set of `DATABASE_THREADS` threads, so a burst of joins on one worker
proceeds that many at a time instead of one by one; psycopg's pool (sized
above the thread count in config/settings/data.py) lends each call a connection and
Channels' wrapper hands it back when the call ends, even when the awaiting
coroutine was cancelled meanwhile (the call itself runs to its end).

The threads live as long as the process: a thread that ended while holding
Django's thread-local connection would leave it checked out of the pool, which
is why a per-event-loop or throwaway executor is not used here.

SQLite serializes writers anyway (and its shared-cache test databases fail a
second writer instead of waiting), so there every call stays on the one
thread-sensitive thread, as Channels does by default.

Every call is timed from the caller's side (waiting for a free thread
included) into `videorooms_database_call_duration_seconds`, and one that
raises a database error counts in `videorooms_database_errors_total`
(infra/metrics.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import DatabaseSyncToAsync
from django.conf import settings
from django.db import Error as DatabaseError

from infra import metrics

THREADS: int = settings.DATABASE_THREADS

_executor = (
    ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="db") if THREADS > 1 else None
)


def db_call(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` as a coroutine function that runs it on a database thread."""
    if _executor is None:
        call = DatabaseSyncToAsync(func, thread_sensitive=True)
    else:
        call = DatabaseSyncToAsync(func, thread_sensitive=False, executor=_executor)

    @functools.wraps(func)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        except DatabaseError:
            metrics.DATABASE_ERRORS.inc()
            raise
        finally:
            metrics.DATABASE_SECONDS.observe(time.perf_counter() - started)

    return timed
