"""The session config's ICE part: STUN, TURN REST credentials checked as coturn does, signaling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from django.test import Client

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


def test_turn_credentials_verify_as_coturn_verifies_them(turn, logged_in, make_user):
    """The TURN credential is base64(HMAC-SHA1(secret, username)), username "<expiry>:<user id>"."""
    user = make_user("carol")
    before = int(time.time())
    body = config(logged_in(user))
    after = int(time.time())
    stun, relay = body["iceServers"]
    assert stun == {"urls": STUN_URLS}
    assert set(relay) == {"urls", "username", "credential"}
    assert relay["urls"] == TURN_URLS
    expiry, user_id = relay["username"].split(":")
    assert user_id == str(user.pk)
    assert before + 3600 <= int(expiry) <= after + 3600
    assert coturn_accepts(
        secret=SECRET, username=relay["username"], credential=relay["credential"], now=time.time()
    )
    assert not coturn_accepts(
        secret="another-secret",
        username=relay["username"],
        credential=relay["credential"],
        now=time.time(),
    )
    # Expired once the TTL has passed, as coturn would judge it then.
    assert not coturn_accepts(
        secret=SECRET,
        username=relay["username"],
        credential=relay["credential"],
        now=int(expiry) + 1,
    )
    assert SECRET not in str(body)


def test_expiry_follows_turn_ttl_and_expires_at(turn, logged_in):
    """The expiry is now + TURN_TTL and expiresAt is that instant in UTC ISO form."""
    turn.TURN_TTL = 600
    before = int(time.time())
    body = config(logged_in())
    after = int(time.time())
    expiry = int(body["iceServers"][1]["username"].split(":")[0])
    assert before + 600 <= expiry <= after + 600
    assert body["expiresAt"] == datetime.fromtimestamp(expiry, tz=UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_config_gives_fresh_credentials_each_call(turn, logged_in):
    """Each GET /api/config computes new credentials: a later expiry, a different credential."""
    client = logged_in()
    first = config(client)["iceServers"][1]
    turn.TURN_TTL = 7200
    second = config(client)["iceServers"][1]
    assert int(second["username"].split(":")[0]) >= int(first["username"].split(":")[0]) + 3600
    assert second["credential"] != first["credential"]
    for entry in (first, second):
        assert coturn_accepts(
            secret=SECRET,
            username=entry["username"],
            credential=entry["credential"],
            now=time.time(),
        )


def test_config_advances_with_time(turn, logged_in):
    """Two calls a second apart carry different usernames (the expiry moves with the clock)."""
    client = logged_in()
    first = config(client)["iceServers"][1]["username"]
    start = int(time.time())
    while int(time.time()) == start:  # at most one second
        time.sleep(0.05)
    second = config(client)["iceServers"][1]["username"]
    assert int(second.split(":")[0]) > int(first.split(":")[0])


def test_turn_entry_absent_without_secret(settings, logged_in):
    """With TURN_URLS but no TURN_SECRET the TURN entry is left out; STUN stays."""
    settings.STUN_URLS = list(STUN_URLS)
    settings.TURN_URLS = list(TURN_URLS)
    settings.TURN_SECRET = ""
    assert config(logged_in())["iceServers"] == [{"urls": STUN_URLS}]


def test_turn_only_and_no_ice_servers(settings, logged_in):
    """TURN without STUN gives one entry; with neither, iceServers is []."""
    settings.STUN_URLS = []
    settings.TURN_URLS = list(TURN_URLS)
    settings.TURN_SECRET = SECRET
    client = logged_in()
    servers = config(client)["iceServers"]
    assert [entry["urls"] for entry in servers] == [TURN_URLS]
    settings.TURN_URLS = []
    settings.TURN_SECRET = ""
    assert config(client)["iceServers"] == []


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
