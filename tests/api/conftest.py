"""Fixtures for the JSON API tests: the rooms tests' people and rooms."""

from tests.rooms.conftest import (  # noqa: F401 - fixtures, found by name
    add_participant,
    alice,
    bob,
    carol,
    fast_password_hashing,
    make_room,
)
