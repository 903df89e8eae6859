"""The room fixtures (tests/support/rooms.py), cheap password hashing included."""

from tests.support.rooms import (  # noqa: F401 - fixtures
    add_participant,
    alice,
    bob,
    carol,
    dave,
    fast_password_hashing,
    make_room,
    room_of,
    staff,
    superuser,
)
