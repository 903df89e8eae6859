"""ICE for clients: STUN in the session config, TURN REST credentials (checked as coturn does)
only for seated sockets (tests/rooms/test_turn.py hands them over the socket), signaling."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from django.test import Client

from accounts.ice import IceConfig, seated_ice
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-shared-with-coturn"
TURN_URLS = [
    "turn:turn.example.org:3478?transport=udp",
    "turn:turn.example.org:3478?transport=tcp",
    "turns:turn.example.org:5349?transport=tcp",
]
STUN_URLS = ["stun:turn.example.org:3478"]


def coturn_accepts(*, secret: str, username: str, credential: str, now: float) -> bool:
    """Check a credential as coturn does with use-auth-secret (TURN REST API draft, section 2.2)."""
    timestamp = username.split(":", 1)[0]
    if not timestamp.isdigit() or int(timestamp) <= now:
        return False
    expected = base64.b64encode(
        hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    ).decode()
    return hmac.compare_digest(expected, credential)


@pytest.fixture
def turn(settings):
    settings.STUN_URLS = list(STUN_URLS)
    settings.TURN_URLS = list(TURN_URLS)
    settings.TURN_SECRET = SECRET
    settings.TURN_TTL = 3600
    settings.ICE_TRANSPORT_POLICY = "all"
    return settings


@pytest.fixture
def logged_in(make_user):
    def make(user=None, **client_kwargs) -> Client:
        client = Client(**client_kwargs)
        client.force_login(user or make_user("alice"))
        return client

    return make


def config(client: Client, **kwargs) -> dict:
    response = client.get("/api/config", **kwargs)
    assert response.status_code == 200, response.content
    return response.json()


def test_turn_credentials_verify_as_coturn_verifies_them(turn):
    """A seat's TURN credential is base64(HMAC-SHA1(secret, username)), username
    "<expiry>:<client address>"; expired once TURN_TTL has passed."""
    now = 1767603600.7
    ice = seated_ice(user_id=7, address="203.0.113.7", now=now)
    stun, relay = ice.servers
    assert stun == {"urls": STUN_URLS}
    assert set(relay) == {"urls", "username", "credential"}
    assert relay["urls"] == TURN_URLS
    assert relay["username"] == "1767607200:203.0.113.7"
    assert ice.expires == 1767607200
    assert ice.transport_policy == "all"
    assert coturn_accepts(
        secret=SECRET, username=relay["username"], credential=relay["credential"], now=now
    )
    assert not coturn_accepts(
        secret="another-secret", username=relay["username"], credential=relay["credential"], now=now
    )
    assert not coturn_accepts(
        secret=SECRET,
        username=relay["username"],
        credential=relay["credential"],
        now=ice.expires + 1,
    )


@pytest.mark.parametrize(
    ("address", "pool"),
    [
        ("203.0.113.7", "203.0.113.7"),
        # IPv6 by its /64, like every per-address limit: the rest of it is free to choose.
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        # No address known (a UNIX socket): the account's own pool.
        (None, "user-7"),
    ],
)
def test_the_quota_pool_is_the_client_address(turn, address, pool):
    """coturn counts a username's part after the expiry: the address (IPv6: its /64)."""
    (_stun, relay) = seated_ice(user_id=7, address=address, now=1767603600).servers
    assert relay["username"] == f"1767607200:{pool}"


def test_turn_ttl_sets_the_expiry(turn):
    """The expiry is now + TURN_TTL, whole seconds."""
    turn.TURN_TTL = 300
    assert seated_ice(user_id=1, address="198.51.100.1", now=1767603600.99).expires == 1767603900


def test_no_turn_entry_without_secret(settings):
    """With TURN_URLS but no TURN_SECRET there is no TURN entry (and nothing to renew)."""
    settings.STUN_URLS = list(STUN_URLS)
    settings.TURN_URLS = list(TURN_URLS)
    settings.TURN_SECRET = ""
    assert seated_ice(user_id=1, address="198.51.100.1", now=0) == IceConfig(
        servers=[{"urls": STUN_URLS}], transport_policy="all", expires=None
    )


def test_config_gives_no_turn_credentials(turn, logged_in):
    """GET /api/config, to a signed-in account in no call: STUN only, no credential, no expiry."""
    body = config(logged_in())
    assert body["iceServers"] == [{"urls": STUN_URLS}]
    assert body["expiresAt"] is None
    assert "credential" not in str(body)


def test_login_and_pages_give_no_turn_credentials(turn, make_user):
    """The login answer and the lobby page carry no TURN credential either."""
    make_user("alice")
    client = Client()
    login = client.post(
        "/api/auth/login",
        {"username": "alice", "password": PASSWORD},
        content_type="application/json",
    )
    assert login.status_code == 200, login.content
    assert login.json()["iceServers"] == [{"urls": STUN_URLS}]
    lobby = client.get("/")
    assert lobby.status_code == 200
    assert TURN_URLS[0] not in lobby.content.decode()
    assert "credential" not in lobby.content.decode()


def test_turn_only_and_no_ice_servers(settings):
    """TURN without STUN gives one entry; with neither, the servers are []."""
    settings.STUN_URLS = []
    settings.TURN_URLS = list(TURN_URLS)
    settings.TURN_SECRET = SECRET
    servers = seated_ice(user_id=1, address="198.51.100.1", now=0).servers
    assert [entry["urls"] for entry in servers] == [TURN_URLS]
    settings.TURN_URLS = []
    settings.TURN_SECRET = ""
    assert seated_ice(user_id=1, address="198.51.100.1", now=0).servers == []


def test_session_config_shape(turn, logged_in, make_user):
    """The session config has exactly user, signaling, iceServers, iceTransportPolicy, expiresAt."""
    user = make_user("alice", first_name="Alice", last_name="Liddell")
    body = config(logged_in(user))
    assert set(body) == {"user", "signaling", "iceServers", "iceTransportPolicy", "expiresAt"}
    assert body["user"] == {"id": user.pk, "username": "alice", "displayName": "Alice Liddell"}
    assert body["signaling"] == {"url": "ws://testserver/ws/signaling/", "protocol": 1}
    assert body["iceTransportPolicy"] == "all"


def test_display_name_defaults_to_username(logged_in, make_user):
    """A user without a full name is shown by username."""
    body = config(logged_in(make_user("bob")))
    assert body["user"]["displayName"] == "bob"


def test_signaling_url_is_wss_when_the_request_is_secure(settings, logged_in):
    """Over HTTPS the derived signaling URL uses wss:, over HTTP ws:, with the request's host."""
    settings.SIGNALING_URL = ""
    settings.ALLOWED_HOSTS = ["rooms.example.org"]
    client = logged_in()
    plain = config(client, headers={"host": "rooms.example.org"})
    assert plain["signaling"]["url"] == "ws://rooms.example.org/ws/signaling/"
    secure = config(client, secure=True, headers={"host": "rooms.example.org"})
    assert secure["signaling"]["url"] == "wss://rooms.example.org/ws/signaling/"


def test_signaling_url_setting_overrides(settings, logged_in):
    """SIGNALING_URL, when set, is given as is (deployments behind a proxy)."""
    settings.SIGNALING_URL = "wss://meet.example.org/ws/signaling/"
    body = config(logged_in())
    assert body["signaling"] == {"url": "wss://meet.example.org/ws/signaling/", "protocol": 1}


def test_ice_transport_policy_relay(settings, logged_in):
    """ICE_TRANSPORT_POLICY relay is passed to the client."""
    settings.ICE_TRANSPORT_POLICY = "relay"
    assert config(logged_in())["iceTransportPolicy"] == "relay"
