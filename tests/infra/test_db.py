"""infra/db.py: where database calls from async code run, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.db import connection

from infra import db
from rooms.models import Room

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def postgres() -> bool:
    return connection.vendor == "postgresql"


async def test_calls_run_side_by_side_on_postgres_one_by_one_on_sqlite():
    """On PostgreSQL DATABASE_THREADS calls are in flight at once; on SQLite one thread runs all."""
    assert (4 if postgres() else 1) == db.THREADS
    barrier = threading.Barrier(db.THREADS, timeout=5)
    seen: set[str] = set()

    def call() -> int:
        seen.add(threading.current_thread().name)
        count = Room.objects.count()
        # Passes only when THREADS calls are inside a call at the same moment.
        barrier.wait()
        return count

    assert await asyncio.gather(*(db.db_call(call)() for _ in range(db.THREADS * 2))) == [0] * (
        db.THREADS * 2
    )
    assert len(seen) == db.THREADS


async def test_cancelled_calls_give_their_connections_back():
    """Calls whose awaiting task was cancelled still end cleanly and return their connection."""
    started = threading.Semaphore(0)

    def slow() -> None:
        Room.objects.count()
        started.release()
        threading.Event().wait(0.2)
        Room.objects.count()

    tasks = [asyncio.ensure_future(db.db_call(slow)()) for _ in range(db.THREADS * 5)]
    await asyncio.to_thread(started.acquire, timeout=5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Calls already running finish; those still queued were dropped with their task.
    results = await asyncio.wait_for(
        asyncio.gather(*(db.db_call(Room.objects.count)() for _ in range(50))), 20
    )
    assert results == [0] * 50
    if postgres():
        # A barrier: THREADS calls (no query, so no connection) inside a call at
        # the same moment hold every database thread, so each call queued before
        # them, the slow ones included, has ended and given its connection back.
        everyone = threading.Barrier(db.THREADS, timeout=10)
        await asyncio.gather(*(db.db_call(everyone.wait)() for _ in range(db.THREADS)))
        stats = connection.pool.get_stats()
        # All lent connections are back: at most the test's own may be out.
        assert stats["pool_size"] - stats["pool_available"] <= 1, stats
        assert stats.get("requests_waiting", 0) == 0, stats
