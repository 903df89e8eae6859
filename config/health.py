"""Health probes for the proxy, the compose healthchecks and monitoring.

`/healthz`: the process is alive and serving requests; it touches nothing else,
so a database or Redis outage never makes an orchestrator restart healthy
workers. `/readyz`: this worker can do its job: a database query and a
round trip through the channel layer (Redis in production) both succeed
within a few seconds, and a worker started by the launcher has warmed up
(config/warmup.py; `warm_up` is `pending` until then). Otherwise 503 with
the failing part named, e.g.
`{"status": "unavailable", "failing": ["channel_layer"], "checks": {...}}`.
The failure details (host names, error text) go to the log, not to the
unauthenticated caller.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

from channels.layers import get_channel_layer
from django.db import close_old_connections, connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config import warmup

logger = logging.getLogger(__name__)

# Each check must finish within this many seconds; the compose healthcheck
# itself times out after 5.
CHECK_TIMEOUT = 3.0


def _query_database() -> None:
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            if cursor.fetchone() != (1,):
                raise RuntimeError("SELECT 1 returned something else")
    finally:
        connection.close()


# The probe's query runs on a thread of its own. On Django's thread for
# synchronous code (sync_to_async's default) a database that hangs would make
# every probe wait for the connection pool's 10 s timeout, past CHECK_TIMEOUT,
# and hold up every synchronous view meanwhile; an abandoned query here only
# keeps this one thread busy, and the next probe says "timeout" on time.
_probe_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-db")


async def check_database() -> None:
    """Run a trivial query on the default database."""
    await asyncio.get_running_loop().run_in_executor(_probe_thread, _query_database)


async def check_channel_layer() -> None:
    """Send a message to a fresh channel of this process and receive it back."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel()
    try:
        token = secrets.token_hex(8)
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await layer.receive(channel)
        if message.get("token") != token:
            raise RuntimeError("the channel layer returned another message")
    finally:
        await _forget_channel(layer, channel)


async def _forget_channel(layer, channel: str) -> None:
    # Without this every probe would leave a subscription behind. The project's
    # layers (transport/layer.py) have delete_channel(); Channels' API has none,
    # so other layers learn that a channel is gone when a receive() on it is
    # cancelled (channels_redis' pub/sub layer then unsubscribes).
    if hasattr(layer, "delete_channel"):
        await layer.delete_channel(channel)
        return
    waiter = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    waiter.cancel()
    with suppress(asyncio.CancelledError, Exception):
        await waiter


CHECKS: dict[str, Callable[[], Awaitable[None]]] = {
    "database": check_database,
    "channel_layer": check_channel_layer,
}


async def _run(name: str) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await CHECKS[name]()
    except TimeoutError:
        logger.warning("readiness check %s timed out after %.0fs", name, CHECK_TIMEOUT)
        return "timeout"
    except Exception as exc:
        logger.warning("readiness check %s failed: %r", name, exc)
        return "error"
    return "ok"


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """Answer 200 while the process serves requests."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the database and the channel layer work and the worker is warm; else 503."""
    names = list(CHECKS)
    results = dict(zip(names, await asyncio.gather(*(_run(n) for n in names)), strict=True))
    if warmup.pending():
        results["warm_up"] = "pending"
    failing = [name for name, result in results.items() if result != "ok"]
    if failing:
        return JsonResponse(
            {"status": "unavailable", "failing": failing, "checks": results}, status=503
        )
    return JsonResponse({"status": "ok", "checks": results})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
