"""`GET /metrics`: this worker's Prometheus metrics, for Prometheus on the internal network only.

Served in front of Django (an ASGI wrapper, not a view): the scraper asks
for `http://<worker address>:8000/metrics`, a Host header that is no site
name, over plain HTTP, and neither `ALLOWED_HOSTS` nor the HTTPS redirect
nor sessions have anything to say about it. Nothing here is per person:
figures only, no room, peer or user.

Who may read it (docs/operations.md, "Exposure"): whoever reaches the worker
directly, which in the deployment is the `backend` network's Prometheus and
nobody else. The public way in, Caddy, answers 404 for `/metrics` itself
(deploy/Caddyfile); and, in case a proxy in front forgets that, a request
that came through a proxy (`BEHIND_PROXY` on and an `X-Forwarded-For` or
`Forwarded` header, which Caddy always sets) gets 404 here too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from infra import metrics

PATH = "/metrics"
_PROXY_HEADERS = frozenset({b"x-forwarded-for", b"forwarded"})


def came_through_proxy(scope: dict[str, Any]) -> bool:
    """True when a proxy in front (BEHIND_PROXY) handed this request on."""
    return settings.BEHIND_PROXY and any(
        name.lower() in _PROXY_HEADERS for name, _ in scope.get("headers", ())
    )


async def _respond(send: Any, status: int, body: bytes, content_type: str, **extra: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *((name.encode(), value.encode()) for name, value in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve_metrics(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer one request for PATH."""
    if came_through_proxy(scope):
        await _respond(send, 404, b"Not Found\n", "text/plain; charset=utf-8")
        return
    if scope["method"] not in ("GET", "HEAD"):
        await _respond(send, 405, b"Method Not Allowed\n", "text/plain; charset=utf-8", allow="GET")
        return
    body = metrics.exposition()
    await _respond(send, 200, b"" if scope["method"] == "HEAD" else body, metrics.CONTENT_TYPE)


def with_metrics(app: Any) -> Any:
    """`app` (Django's ASGI handler) with PATH answered in front of it."""

    async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == PATH:
            await serve_metrics(scope, receive, send)
        else:
            await app(scope, receive, send)

    return http
