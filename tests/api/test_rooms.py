"""The rooms part of the JSON API: POST /api/rooms and GET /api/rooms/<number>."""

from __future__ import annotations

import re
import secrets

import pytest
from django.test import Client

from rooms import services
from rooms.models import Room
from tests.conftest import csrf_header

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ROOM_KEYS = {
    "number", "name", "capacity", "locked", "hasPin", "owner", "participants", "closed",
    "mode", "media",
}  # fmt: skip


def create(client: Client, body, **headers):
    return client.post("/api/rooms", body, content_type="application/json", headers=headers)


def test_create_room_with_defaults(api_client, alice):
    """POST /api/rooms with {} creates a room: 201, the room object with exact keys and defaults."""
    client = api_client(alice)
    response = create(client, {}, **csrf_header(client))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == ROOM_KEYS
    assert re.fullmatch(r"[1-9][0-9]{8}", body["number"])
    assert body == {
        "number": body["number"],
        "name": "alice's room",
        "capacity": 6,
        "locked": False,
        "hasPin": False,
        "owner": {"id": alice.pk, "username": "alice"},
        "participants": 0,
        "closed": False,
        "mode": "auto",
        "media": "mesh",
    }
    room = Room.objects.get(number=body["number"])
    assert (room.owner, room.capacity, room.closed_at) == (alice, 6, None)


def test_create_room_with_name_capacity_and_pin(api_client, alice):
    """POST /api/rooms takes name, capacity and pin; the PIN shows only as hasPin."""
    client = api_client(alice)
    response = create(
        client, {"name": " Weekly ", "capacity": 12, "pin": "0042"}, **csrf_header(client)
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["capacity"], body["hasPin"]) == ("Weekly", 12, True)
    assert "0042" not in response.content.decode()
    assert Room.objects.get(number=body["number"]).check_pin("0042")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"capacity": 1}, "'capacity' must be between 2 and 200"),
        ({"capacity": 201}, "'capacity' must be between 2 and 200"),
        ({"capacity": "6"}, "'capacity' must be an integer"),
        ({"capacity": 6.0}, "'capacity' must be an integer"),
        ({"pin": "12"}, "'pin' must be 4 to 12 digits"),
        ({"pin": "1234567890123"}, "'pin' must be 4 to 12 digits"),
        ({"pin": "12ab"}, "'pin' must be 4 to 12 digits"),
        ({"pin": 1234}, "'pin' must be 4 to 12 digits"),
        ({"name": "n" * 101}, "'name' is longer than 100 characters"),
        ({"name": ["x"]}, "'name' must be a string"),
    ],
)
def test_create_room_refuses_bad_fields(api_client, alice, body, message):
    """POST /api/rooms with a bad capacity, pin or name: 400 bad-message with the reason."""
    client = api_client(alice)
    response = create(client, body, **csrf_header(client))
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "bad-message", "message": message}}
    assert not Room.objects.exists()


def test_create_room_needs_the_csrf_header(api_client, alice):
    """POST /api/rooms without X-CSRFToken: 403 csrf-failed JSON, no room."""
    client = api_client(alice)
    response = create(client, {})
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "csrf-failed",
            "message": "Send the csrftoken cookie's value as the X-CSRFToken header.",
        }
    }
    assert not Room.objects.exists()


def test_create_room_needs_a_session():
    """POST /api/rooms when not logged in: 401 not-authenticated JSON."""
    response = create(Client(), {})
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "not-authenticated", "message": "Log in first."}}


def test_create_room_needs_json(api_client, alice):
    """POST /api/rooms with a form body: 415, and invalid JSON: 400 bad-request."""
    client = api_client(alice)
    form = client.post("/api/rooms", {"capacity": "3"}, headers=csrf_header(client))
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "unsupported-media-type"
    broken = create(client, "{nope", **csrf_header(client))
    assert broken.status_code == 400
    assert broken.json() == {
        "error": {"code": "bad-request", "message": "The body is not valid JSON."}
    }


def test_create_room_draws_again_then_gives_up_with_503_server_busy(
    api_client, make_room, alice, bob, monkeypatch
):
    """A drawn number an open room holds is passed over; when every draw is taken, 503."""
    taken = make_room(alice).number
    draws = iter([int(taken) - 100_000_000, 987_654_321 - 100_000_000])
    monkeypatch.setattr(secrets, "randbelow", lambda _: next(draws))
    client = api_client(bob)
    response = create(client, {}, **csrf_header(client))
    assert (response.status_code, response.json()["number"]) == (201, "987654321")
    monkeypatch.setattr(secrets, "randbelow", lambda _: int(taken) - 100_000_000)
    response = create(client, {}, **csrf_header(client))
    assert response.status_code == 503
    assert response.json() == {
        "error": {
            "code": "server-busy",
            "message": "Could not find a free room number; try again.",
        }
    }


def test_get_room(api_client, make_room, add_participant, alice, bob):
    """GET /api/rooms/<number>: 200 the room object, counting the people in it now."""
    room = make_room(alice, name="Ops", capacity=3, pin="1234")
    add_participant(room, alice)
    add_participant(room, bob, left=True, reason="left")
    response = api_client(bob).get(f"/api/rooms/{room.number}")
    assert response.status_code == 200
    assert response.json() == {
        "number": room.number,
        "name": "Ops",
        "capacity": 3,
        "locked": False,
        "hasPin": True,
        "owner": {"id": alice.pk, "username": "alice"},
        "participants": 1,
        "closed": False,
        "mode": "auto",
        "media": "mesh",
    }


def test_get_room_accepts_the_number_as_people_type_it(api_client, make_room, alice):
    """GET /api/rooms/482-913-075 finds room 482913075."""
    room = make_room(alice)
    dashed = f"{room.number[:3]}-{room.number[3:6]}-{room.number[6:]}"
    response = api_client(alice).get(f"/api/rooms/{dashed}")
    assert response.status_code == 200
    assert response.json()["number"] == room.number


def test_get_closed_room_says_closed(api_client, make_room, alice):
    """GET of a closed room: 200 with closed true (extension)."""
    room = make_room(alice)
    services.room_close(room_id=room.pk, reason="admin")
    response = api_client(alice).get(f"/api/rooms/{room.number}")
    assert response.status_code == 200
    assert response.json()["closed"] is True


@pytest.mark.parametrize("number", ["999999999", "012345678", "abc", "1" * 40, "%20", "12-34"])
def test_get_unknown_room_is_404_room_not_found(api_client, alice, number):
    """GET /api/rooms/<number> for no room, or a number that cannot exist: 404 room-not-found."""
    response = api_client(alice).get(f"/api/rooms/{number}")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "room-not-found", "message": "There is no room with that number."}
    }


def test_get_room_needs_a_session(make_room, alice):
    """GET /api/rooms/<number> when not logged in: 401 JSON."""
    room = make_room(alice)
    response = Client().get(f"/api/rooms/{room.number}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not-authenticated"


def test_rooms_endpoints_refuse_other_methods(api_client, make_room, alice):
    """GET /api/rooms and POST /api/rooms/<number>: 405 JSON with Allow."""
    client = api_client(alice)
    listing = client.get("/api/rooms")
    assert listing.status_code == 405
    assert listing["Allow"] == "POST"
    assert listing.json() == {"error": {"code": "method-not-allowed", "message": "Use POST here."}}
    room = make_room(alice)
    detail = client.post(
        f"/api/rooms/{room.number}",
        {},
        content_type="application/json",
        headers=csrf_header(client),
    )
    assert detail.status_code == 405
    assert detail.json()["error"]["code"] == "method-not-allowed"
