"""What a logged-in client is told before a call (rooms/client_config.py)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from rooms import client_config

pytestmark = pytest.mark.django_db


def test_session_config_from_the_request(settings, alice):
    """The session config: the user, the signaling URL from the request, ICE, the expiry."""
    settings.SIGNALING_URL, settings.STUN_URLS, settings.TURN_URLS = "", ["stun:s:3478"], []
    settings.ALLOWED_HOSTS = ["rooms.example.org"]
    request = RequestFactory().get("/", HTTP_HOST="rooms.example.org", secure=True)
    config = client_config.session_config(account=alice, request=request)
    assert config["user"] == {"id": alice.pk, "username": "alice", "displayName": "Alice Liddell"}
    assert config["signaling"] == {"url": "wss://rooms.example.org/ws/signaling/", "protocol": 1}
    assert config["iceServers"] == [{"urls": ["stun:s:3478"]}]
    assert config["iceTransportPolicy"] == "all"
    # TURN comes over the socket, to a seated one: nothing here expires.
    assert config["expiresAt"] is None
