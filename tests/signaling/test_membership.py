"""A membership takes in its room's events (signaling/membership.py `hears`), no socket needed."""

from __future__ import annotations

import pytest

from rooms import events
from signaling.membership import Membership


def membership(*, moderator: bool = False) -> Membership:
    return Membership(
        room_id=7,
        number="123456789",
        peer_id="me",
        moderator=moderator,
        participant_pk=1,
        capacity=6,
        media="mesh",
        peers={"bob": "chan.bob"},
    )


def test_peer_joined_adds_a_new_peer_once():
    """A new peer is added and heard; a duplicate, or ourselves, is dropped."""
    m = membership()
    event = {"type": events.PEER_JOINED, "room": 7, "peer_id": "carol", "channel": "chan.carol"}
    assert m.hears(event) is True
    assert m.hears(event) is False
    assert m.hears({**event, "peer_id": "me", "channel": "chan.me"}) is False
    assert m.peers == {"bob": "chan.bob", "carol": "chan.carol"}


def test_peer_left_and_updated_only_for_known_peers():
    """`peer.left` and `peer.updated` of a peer not listed are not passed on."""
    m = membership()
    assert m.hears({"type": events.PEER_UPDATED, "room": 7, "peer_id": "bob"}) is True
    assert m.hears({"type": events.PEER_UPDATED, "room": 7, "peer_id": "zed"}) is False
    assert m.hears({"type": events.PEER_LEFT, "room": 7, "peer_id": "bob"}) is True
    assert m.hears({"type": events.PEER_LEFT, "room": 7, "peer_id": "bob"}) is False
    assert m.peers == {}


def test_peer_moved_changes_the_channel_silently():
    """A resumed peer's new channel is kept; the browser hears nothing of it."""
    m = membership()
    moved = {"type": events.MOVED, "room": 7, "peer_id": "bob", "channel": "chan.bob2"}
    assert m.hears(moved) is False
    assert m.peers == {"bob": "chan.bob2"}


def test_room_updated_follows_the_media_and_moderators_hear_their_own():
    """`room.updated` carries the media along; `room.moderators` reaches moderators only."""
    m = membership()
    assert m.hears({"type": events.ROOM_UPDATED, "room": 7, "media": "sfu"}) is True
    assert m.media == "sfu"
    assert m.hears({"type": events.MODERATORS, "room": 7}) is False
    assert membership(moderator=True).hears({"type": events.MODERATORS, "room": 7}) is True


def test_events_of_another_room_are_dropped():
    """An event for a room this socket left is neither heard nor applied."""
    m = membership()
    left = {"type": events.PEER_LEFT, "room": 8, "peer_id": "bob"}
    assert m.hears(left) is False
    assert m.peers == {"bob": "chan.bob"}


def test_an_unknown_event_type_is_a_bug():
    """A type the membership does not know raises rather than pass unseen."""
    with pytest.raises(ValueError, match=r"peer\.kicked"):
        membership().hears({"type": events.KICKED, "room": 7})
