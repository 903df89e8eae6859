"""The auth JSON API (login, logout, config) and the account, lobby and room pages."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from rooms import services
from tests.conftest import PASSWORD, csrf_header

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login"
LOGOUT = "/api/auth/logout"
CONFIG = "/api/config"
CONFIG_KEYS = {"user", "signaling", "iceServers", "iceTransportPolicy", "expiresAt"}


def api_error(response, status: int, code: str, message: str | None = None) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    if message is not None:
        assert body["error"]["message"] == message


def post_json(client: Client, path: str, body, **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, data, content_type="application/json", headers=headers)


# --- POST /api/auth/login ----------------------------------------------------------------


def test_login_returns_session_config_and_working_cookies(make_user):
    """Login answers the session config and sets sessionid and csrftoken; the session then works."""
    user = make_user("alice", first_name="Alice")
    client = Client(enforce_csrf_checks=True)
    response = post_json(client, LOGIN, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == CONFIG_KEYS
    assert body["user"] == {"id": user.pk, "username": "alice", "displayName": "Alice"}
    assert body["signaling"] == {"url": "ws://testserver/ws/signaling/", "protocol": 1}
    assert response.cookies["sessionid"].value
    assert response.cookies["csrftoken"].value
    # Only the cookie carries the session into the next request.
    fresh = Client(enforce_csrf_checks=True)
    fresh.cookies["sessionid"] = response.cookies["sessionid"].value
    again = fresh.get(CONFIG)
    assert again.status_code == 200
    assert again.json()["user"] == body["user"]


def test_login_wrong_password_is_401(make_user):
    """A wrong password answers 401 invalid-credentials and no session."""
    make_user("alice")
    response = post_json(Client(), LOGIN, {"username": "alice", "password": "not it"})
    api_error(response, 401, "invalid-credentials", "Wrong username or password.")
    assert "sessionid" not in response.cookies


def test_login_unknown_user_is_401(db):
    """An unknown username answers the same 401 invalid-credentials."""
    response = post_json(Client(), LOGIN, {"username": "ghost", "password": PASSWORD})
    api_error(response, 401, "invalid-credentials", "Wrong username or password.")


def test_login_inactive_user_is_401(make_user):
    """A deactivated account cannot log in."""
    make_user("alice", is_active=False)
    response = post_json(Client(), LOGIN, {"username": "alice", "password": PASSWORD})
    api_error(response, 401, "invalid-credentials")


@pytest.mark.parametrize("body", ["{nope", '{"username": "alice",}'])
def test_login_malformed_json_is_400(db, body):
    """A body that is not JSON answers 400 bad-request."""
    response = post_json(Client(), LOGIN, body)
    api_error(response, 400, "bad-request", "The body is not valid JSON.")


@pytest.mark.parametrize("body", ['["alice", "pw"]', '"alice"', "42", "null"])
def test_login_non_object_json_is_400(db, body):
    """JSON that is not an object answers 400 bad-request."""
    response = post_json(Client(), LOGIN, body)
    api_error(response, 400, "bad-request", "The body must be a JSON object.")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"password": PASSWORD}, "'username' is required and must be a string."),
        ({"username": "alice"}, "'password' is required and must be a string."),
        ({"username": "", "password": PASSWORD}, "'username' is required and must be a string."),
        ({"username": 7, "password": PASSWORD}, "'username' is required and must be a string."),
        ({"username": "alice", "password": ["x"]}, "'password' is required and must be a string."),
        ({"username": "alice", "password": "x" * 4097}, "'password' is too long."),
    ],
)
def test_login_missing_or_bad_fields_are_400(make_user, body, message):
    """Missing, empty, non-string or over-long fields answer 400 bad-request naming the field."""
    make_user("alice")
    api_error(post_json(Client(), LOGIN, body), 400, "bad-request", message)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
)
def test_login_wrong_content_type_is_415(make_user, content_type):
    """A body that is not application/json answers 415 unsupported-media-type."""
    make_user("alice")
    body = json.dumps({"username": "alice", "password": PASSWORD})
    if content_type == "multipart/form-data":
        response = Client().post(LOGIN, {"username": "alice", "password": PASSWORD})
    else:
        response = Client().post(LOGIN, body, content_type=content_type)
    api_error(response, 415, "unsupported-media-type", "Send the body as application/json.")


def test_login_json_with_charset_is_accepted(make_user):
    """application/json; charset=utf-8 is JSON too."""
    make_user("alice")
    response = Client().post(
        LOGIN,
        json.dumps({"username": "alice", "password": PASSWORD}),
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 200


@pytest.mark.postgres
def test_login_without_a_client_address(make_user):
    """A request with no client address (daphne on a UNIX socket) gets 401/200, never a 500."""
    make_user("alice")
    client = Client(REMOTE_ADDR="")
    wrong = post_json(client, LOGIN, {"username": "alice", "password": "nope"})
    api_error(wrong, 401, "invalid-credentials")
    right = post_json(client, LOGIN, {"username": "alice", "password": PASSWORD})
    assert right.status_code == 200, right.content


def test_login_get_is_405_json(db):
    """GET on the login endpoint answers 405 method-not-allowed JSON with Allow: POST."""
    response = Client().get(LOGIN)
    api_error(response, 405, "method-not-allowed", "Use POST here.")
    assert response["Allow"] == "POST"


# --- /api/config and logout -------------------------------------------------------------------


def test_config_anonymous_is_401_json(db):
    """GET /api/config without a session answers 401 not-authenticated JSON."""
    api_error(Client().get(CONFIG), 401, "not-authenticated", "Log in first.")


def test_logout_with_csrf_header_ends_the_session(api_client, make_user):
    """Logout with X-CSRFToken answers 204; /api/config is 401 afterwards."""
    client = api_client(make_user("alice"))
    assert client.get(CONFIG).status_code == 200
    response = client.post(LOGOUT, headers=csrf_header(client))
    assert response.status_code == 204
    assert response.content == b""
    api_error(client.get(CONFIG), 401, "not-authenticated")


def test_logout_without_csrf_token_is_403_json(api_client, make_user):
    """Logout without the CSRF header answers 403 csrf-failed JSON and keeps the session."""
    client = api_client(make_user("alice"))
    response = client.post(LOGOUT)
    api_error(
        response,
        403,
        "csrf-failed",
        "Send the csrftoken cookie's value as the X-CSRFToken header.",
    )
    assert client.get(CONFIG).status_code == 200


def test_logout_get_is_405_json(api_client, make_user):
    """GET on logout answers 405 JSON and does not log out."""
    client = api_client(make_user("alice"))
    api_error(client.get(LOGOUT), 405, "method-not-allowed")
    assert client.get(CONFIG).status_code == 200


@pytest.mark.parametrize("path", ["/api/nothing", "/api/auth/whoami", "/api/rooms/1/2"])
def test_unknown_api_path_is_404_json(db, path):
    """Any unknown path under /api/ answers 404 not-found JSON, never an HTML page."""
    api_error(Client().get(path), 404, "not-found", "There is nothing at this address.")


# --- Pages ---------------------------------------------------------------------------------------


def session_config_in(html: str) -> dict:
    match = re.search(
        r'<script id="session-config" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "no session-config json_script"
    return json.loads(match.group(1))


def test_signup_creates_the_user_and_logs_in(db):
    """Sign-up with a good password creates the account, logs in and goes to the lobby."""
    client = Client()
    assert client.get("/accounts/signup/").status_code == 200
    response = client.post(
        "/accounts/signup/",
        {
            "username": "newcomer",
            "password1": "tangerine-Orbit-42",
            "password2": "tangerine-Orbit-42",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = get_user_model().objects.get(username="newcomer")
    assert user.check_password("tangerine-Orbit-42")
    assert client.get(CONFIG).json()["user"]["id"] == user.pk


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        ("margaretha", "margaretha1", "The password is too similar to the username."),
        ("someone", "x7$Qz", "This password is too short. It must contain at least 8 characters."),
        ("someone", "password", "This password is too common."),
        ("someone", "83920174615", "This password is entirely numeric."),
    ],
)
def test_signup_refuses_weak_passwords(db, username, password, expected):
    """Each of the four password validators refuses its kind of weak password."""
    response = Client().post(
        "/accounts/signup/", {"username": username, "password1": password, "password2": password}
    )
    assert response.status_code == 200
    errors = [error for errors in response.context["form"].errors.values() for error in errors]
    assert expected in errors, errors
    assert not get_user_model().objects.filter(username=username).exists()


def test_login_page_logs_in(make_user):
    """The login page takes username and password and goes to the lobby."""
    make_user("alice")
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get(CONFIG).status_code == 200


def test_login_page_refuses_a_wrong_password(make_user):
    """A wrong password redisplays the login form and logs nobody in."""
    make_user("alice")
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert client.get(CONFIG).status_code == 401


def test_logout_page_asks_on_get_and_logs_out_on_post(make_user):
    """GET /accounts/logout/ shows a confirmation and keeps the session; POST logs out."""
    client = Client()
    client.force_login(make_user("alice"))
    page = client.get("/accounts/logout/")
    assert page.status_code == 200
    assert b'<form method="post"' in page.content
    assert client.get(CONFIG).status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.get(CONFIG).status_code == 401


@pytest.mark.parametrize("path", ["/", "/rooms/482913075/"])
def test_pages_need_login(db, path):
    """The lobby and the room page send an anonymous visitor to the login page."""
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_lobby_renders_the_session_config(make_user):
    """The lobby carries the session config in a json_script for the page's code."""
    user = make_user("alice")
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    config = session_config_in(response.content.decode())
    assert set(config) == CONFIG_KEYS
    assert config["user"]["id"] == user.pk


def test_room_page_renders_for_a_room_and_404s_otherwise(make_user):
    """/rooms/<number>/ renders an existing room with the session config; unknown numbers 404."""
    user = make_user("alice")
    room = services.room_create(owner=user, number=next(services.room_numbers()))
    client = Client()
    client.force_login(user)
    response = client.get(f"/rooms/{room.number}/")
    assert response.status_code == 200
    assert session_config_in(response.content.decode())["user"]["id"] == user.pk
    for number in ("999999999", "abc", "012345678"):
        missing = client.get(f"/rooms/{number}/")
        assert missing.status_code == 404
        assert missing["Content-Type"].startswith("text/html")


def test_room_link_typed_with_dashes_or_spaces_redirects(make_user):
    """/rooms/482-913-075/ and /rooms/482 913 075/ redirect to the room's canonical link."""
    user = make_user("alice")
    room = services.room_create(owner=user, number=next(services.room_numbers()))
    client = Client()
    client.force_login(user)
    n = room.number
    for typed in (f"{n[:3]}-{n[3:6]}-{n[6:]}", f"{n[:3]}%20{n[3:6]}%20{n[6:]}"):
        response = client.get(f"/rooms/{typed}/")
        assert response.status_code == 302
        assert response["Location"] == f"/rooms/{n}/"


@pytest.mark.postgres
def test_login_with_nul_in_credentials_is_a_bad_request(make_user):
    """A NUL in username or password is a 400, as Django's forms refuse it, not a 500."""
    make_user("alice")
    for body in (
        {"username": "ali\x00ce", "password": "x"},
        {"username": "alice", "password": "\x00"},
    ):
        response = Client().post("/api/auth/login", body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "bad-request"
