"""Which pages may open the signaling WebSocket: the site's own origins, exactly.

A WebSocket is not bound by the same-origin policy: any page a logged-in user
visits could open one to this site, and the browser would send the session
cookie along (cross-site WebSocket hijacking). Browsers always send the
page's `Origin` with the handshake, so the handshake is accepted only when
that Origin equals, scheme, host and port alike,

- the site's own origin for this connection, built as Django's CSRF origin
  check builds it (`CsrfViewMiddleware._origin_verified`): `https` when the
  connection is secure, else `http`, then `://` and the Host header as sent,
  whose host must be in ALLOWED_HOSTS; or
- one of CSRF_TRUSTED_ORIGINS, compared as written. Django's `https://*.`
  subdomain wildcards there are not honoured for the WebSocket: a trusted
  origin is named in full.

Secure means what `HttpRequest.is_secure()` means. With SECURE_PROXY_SSL_HEADER
set (BEHIND_PROXY), the proxy's header (X-Forwarded-Proto) decides when it is
present; otherwise the ASGI scope's scheme, `wss`, does. daphne 4.2 puts no
`scheme` in a WebSocket scope, with or without `--proxy-headers` (it reads
X-Forwarded-Proto only into an attribute it never uses for WebSockets), and
passes the header on among the scope's headers: that header is what tells a
worker behind Caddy that the browser used https. Caddy sets it on every
request it proxies and replaces any value a client sent.

Anything else (a missing, repeated or foreign Origin, a Host not served) is
refused before the socket is accepted, which daphne answers with HTTP 403.
Channels' `AllowedHostsOriginValidator`, used before, compared host names
only: `http://host:8080` passed for an `https://host` site.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host

logger = logging.getLogger(__name__)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    """A request header as Django's ASGIRequest puts it in META: repeated values joined by ","."""
    values = [value.decode("latin1") for key, value in scope.get("headers", ()) if key == name]
    return ",".join(values) if values else None


def _meta_to_header(meta_name: str) -> bytes:
    # "HTTP_X_FORWARDED_PROTO" -> b"x-forwarded-proto"
    return meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin1")


def is_secure(scope: dict[str, Any]) -> bool:
    """Whether the browser reached this WebSocket over TLS (Django's `is_secure()`)."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = _header(scope, _meta_to_header(meta_name))
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") == "wss"


def site_origin(scope: dict[str, Any]) -> str | None:
    """The site's own origin for this connection, or None when its host is not served."""
    host = None
    if settings.USE_X_FORWARDED_HOST:
        host = _header(scope, b"x-forwarded-host")
    if host is None:
        host = _header(scope, b"host")
    if host is None:
        # Django would rebuild one from the server address; a browser always sends Host.
        return None
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, allowed_hosts):
        return None
    return f"{'https' if is_secure(scope) else 'http'}://{host}"


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether the handshake's one Origin is the site's own or a trusted one, exactly."""
    origins = [value for key, value in scope.get("headers", ()) if key == b"origin"]
    if len(origins) != 1:
        return False
    origin = origins[0].decode("latin1")
    return origin == site_origin(scope) or origin in settings.CSRF_TRUSTED_ORIGINS


async def refuse(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Close the handshake before accepting it: the server answers HTTP 403.

    Channels' WebsocketDenier would do the same as a consumer, and so first
    make a channel-layer channel for a socket that is about to be refused.
    """
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})


class SiteOriginValidator:
    """ASGI middleware: pass a WebSocket on only when `origin_allowed(scope)`."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("SiteOriginValidator only handles WebSocket connections")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        logger.info(
            "refused a WebSocket handshake from Origin %r (the site's own origin here: %r)",
            _header(scope, b"origin"),
            site_origin(scope),
        )
        return await refuse(scope, receive, send)
