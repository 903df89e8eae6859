"""Login brute-force protection (django-axes) on the JSON API and the login page."""

from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def login(client: Client, password: str, **headers: str):
    return client.post(
        "/api/auth/login",
        data=json.dumps({"username": "alice", "password": password}),
        content_type="application/json",
        **headers,
    )


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def test_nth_bad_password_gets_429(alice, settings):
    """The LOGIN_FAILURE_LIMIT-th wrong password from one client is answered 429 in JSON."""
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "wrong").status_code == 401
    response = login(client, "wrong")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too-many-attempts"
    assert int(response["Retry-After"]) == settings.AXES_COOLOFF_TIME * 3600
    # Locked out means locked out: even the right password is refused now.
    assert login(client, "correct horse battery staple").status_code == 429


def test_forged_forwarded_for_does_not_reset_the_count(alice, settings):
    """A client inventing X-Forwarded-For addresses is still counted as itself."""
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code == 401
    assert login(client, "wrong", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429


def test_lockout_is_per_client(alice, settings):
    """Another address can still log in while one is locked out."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(Client(REMOTE_ADDR="192.0.2.1"), "wrong")
    assert login(Client(REMOTE_ADDR="192.0.2.1"), "wrong").status_code == 429
    ok = login(Client(REMOTE_ADDR="192.0.2.2"), "correct horse battery staple")
    assert ok.status_code == 200


def test_login_page_lockout_is_a_page(alice, settings):
    """The HTML login form gets a 429 page, not JSON."""
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
