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
from collections.abc import Awaitable, Callable

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config import warmup
from infra.probes import check_channel_layer, check_database

logger = logging.getLogger(__name__)

# Each check must finish within this many seconds; the compose healthcheck
# itself times out after 5.
CHECK_TIMEOUT = 3.0


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
