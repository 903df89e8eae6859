"""Each refusal of the rooms domain carries how both edges say it (rooms/errors.py)."""

from __future__ import annotations

import pytest

from rooms import errors
from rooms import protocol as p


def test_each_refusal_says_its_protocol_code_and_http_status():
    """The socket's code and the API's status of every refusal, written out."""
    said = {cls.__name__: (cls.code, cls.status) for cls in errors.RoomsError.__subclasses__()}
    assert said == {
        "RoomNotFound": ("room-not-found", 404),
        "RoomClosed": ("room-closed", 410),
        "RoomFull": ("room-full", 409),
        "RoomLocked": ("room-locked", 423),
        "WrongPin": ("bad-pin", 403),
        "PinLocked": ("pin-locked", 429),
        "NotAllowed": ("forbidden", 403),
        "PeerNotFound": ("unknown-peer", 404),
        "CapReached": ("rate-limited", 429),
        "InvalidRoom": ("bad-message", 400),
        "NumberTaken": ("server-busy", 409),
        "NoFreeNumber": ("server-busy", 503),
        "SfuUnavailable": ("sfu-unavailable", 503),
    }


def test_refusal_is_the_protocol_error_with_the_sentence():
    """`refusal()` answers with the error's code, its sentence and the request's id."""
    err = errors.refusal(errors.RoomFull(4), msg_id="m7")
    assert isinstance(err, p.ClientError)
    assert (err.code, err.message, err.msg_id) == (
        "room-full",
        "This room is full (4 people).",
        "m7",
    )


def test_a_refusal_without_a_protocol_code_cannot_be_declared():
    """A new refusal must name a code the protocol knows and an HTTP status."""
    with pytest.raises(TypeError, match="code must be one of"):
        type("Vague", (errors.RoomsError,), {"status": 400})
    with pytest.raises(TypeError, match="status must be an HTTP status"):
        type("Statusless", (errors.RoomsError,), {"code": p.FORBIDDEN})
