"""config/origins.py on the real router: a WebSocket opens only from the site's own origins."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from config.asgi import application
from tests.conftest import session_cookie
from tests.support.transport import WebsocketCommunicator

pytestmark = pytest.mark.django_db(transaction=True)

PROXY_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


async def handshake(
    headers: list[tuple[str, str]], *, user=None, scheme: str | None = None
) -> tuple[dict, WebsocketCommunicator]:
    """Send a handshake with exactly `headers`; return the router's first message and the socket."""
    raw = [(name.encode(), value.encode()) for name, value in headers]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        raw.append((b"cookie", f"sessionid={cookie}".encode()))
    ws = WebsocketCommunicator(application, "/ws/signaling/", headers=raw)
    if scheme is not None:
        # As a server that terminates TLS itself reports it (the application starts on connect).
        ws.scope["scheme"] = scheme
    await ws.send_input({"type": "websocket.connect"})
    return await ws.receive_output(timeout=3), ws


async def assert_refused(headers: list[tuple[str, str]], **options) -> None:
    first, ws = await handshake(headers, **options)
    # Closed before accept: daphne answers the handshake with HTTP 403.
    assert first == {"type": "websocket.close"}
    await ws.wait()


async def assert_accepted(headers: list[tuple[str, str]], user, **options) -> None:
    first, ws = await handshake(headers, user=user, **options)
    try:
        assert first == {"type": "websocket.accept", "subprotocol": None}
        await ws.send_json_to({"type": "ping", "id": "o"})
        assert await ws.receive_json_from() == {"type": "pong", "re": "o"}
    finally:
        await ws.disconnect()


@pytest.fixture
async def alice(make_user):
    return await database_sync_to_async(make_user)("alice")


async def test_the_sites_own_origin_is_accepted(alice):
    """Origin http://localhost for Host localhost over plain ws: accepted, ping gets pong."""
    await assert_accepted([("host", "localhost"), ("origin", "http://localhost")], alice)


async def test_the_own_origin_includes_the_port_of_the_host_header(alice):
    """Host localhost:8000 is the site http://localhost:8000, and only that."""
    host = ("host", "localhost:8000")
    await assert_accepted([host, ("origin", "http://localhost:8000")], alice)
    for origin in ("http://localhost", "http://localhost:8001", "http://localhost:80"):
        await assert_refused([host, ("origin", origin)])


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:8080",  # another port on the same host
        "https://localhost",  # another scheme
        "ws://localhost",  # not an origin a browser sends
        "http://127.0.0.1",  # another allowed host, but not this connection's
        "http://evil.example",
        "http://localhost.evil.example",
        "HTTP://LOCALHOST",  # browsers serialize origins in lower case; compared as Django does
        "http://localhost/",
        "null",  # sandboxed frames, file: pages
        "",
    ],
)
async def test_any_other_origin_is_refused(origin):
    """Scheme, host and port must all match: everything else is refused at the handshake."""
    await assert_refused([("host", "localhost"), ("origin", origin)])


async def test_a_missing_origin_is_refused():
    """No Origin header (a script that does not say where it comes from): refused."""
    await assert_refused([("host", "localhost")])


async def test_two_origin_headers_are_refused():
    """Two Origin headers, even both right, are ambiguous: refused."""
    await assert_refused(
        [("host", "localhost"), ("origin", "http://localhost"), ("origin", "http://localhost")]
    )


async def test_a_host_outside_allowed_hosts_is_refused_even_from_its_own_origin():
    """Host evil.example is not served (ALLOWED_HOSTS), so it has no own origin."""
    await assert_refused([("host", "evil.example"), ("origin", "http://evil.example")])
    await assert_refused([("origin", "http://localhost")])  # no Host at all


async def test_a_secure_scope_is_the_https_origin(alice):
    """A server that terminates TLS reports scheme wss: the own origin is https://host."""
    await assert_accepted(
        [("host", "localhost"), ("origin", "https://localhost")], alice, scheme="wss"
    )
    await assert_refused([("host", "localhost"), ("origin", "http://localhost")], scheme="wss")


async def test_behind_the_proxy_x_forwarded_proto_decides(alice, settings):
    """BEHIND_PROXY: the proxy's X-Forwarded-Proto https makes the own origin https://$DOMAIN."""
    settings.SECURE_PROXY_SSL_HEADER = PROXY_HEADER
    settings.ALLOWED_HOSTS = ["video.example.org"]
    host = ("host", "video.example.org")
    https = ("x-forwarded-proto", "https")
    await assert_accepted([host, https, ("origin", "https://video.example.org")], alice)
    for origin in (
        "http://video.example.org",
        "https://video.example.org:8443",
        "https://localhost",
    ):
        await assert_refused([host, https, ("origin", origin)])
    # The proxy said http: the page was http, whatever the scope claims.
    await assert_refused(
        [host, ("x-forwarded-proto", "http"), ("origin", "https://video.example.org")],
        scheme="wss",
    )
    await assert_accepted(
        [host, ("x-forwarded-proto", "http"), ("origin", "http://video.example.org")], alice
    )
    # As Django reads it: the first of several values.
    await assert_accepted(
        [host, ("x-forwarded-proto", "https, http"), ("origin", "https://video.example.org")],
        alice,
    )


async def test_x_forwarded_proto_is_ignored_unless_behind_the_proxy(alice, settings):
    """Without BEHIND_PROXY a client's own X-Forwarded-Proto changes nothing."""
    settings.SECURE_PROXY_SSL_HEADER = None
    https = ("x-forwarded-proto", "https")
    await assert_refused([("host", "localhost"), https, ("origin", "https://localhost")])
    await assert_accepted([("host", "localhost"), https, ("origin", "http://localhost")], alice)


async def test_csrf_trusted_origins_are_accepted_exactly(alice, settings):
    """A CSRF_TRUSTED_ORIGINS entry opens the socket for exactly that scheme, host and port."""
    settings.CSRF_TRUSTED_ORIGINS = ["https://rooms.example.org", "https://*.example.net"]
    host = ("host", "localhost")
    await assert_accepted([host, ("origin", "https://rooms.example.org")], alice)
    for origin in (
        "http://rooms.example.org",
        "https://rooms.example.org:8443",
        "https://sub.rooms.example.org",
        # Django's CSRF check would take a wildcard's subdomains; the socket does not.
        "https://a.example.net",
    ):
        await assert_refused([host, ("origin", origin)])
