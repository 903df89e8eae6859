"""A signaling socket's state: who is on it (`Account`) and the room they are in (`Membership`).

A socket is in one of three states, each visible as an attribute of the
socket (signaling/socket.py): not signed in (no `Account`: it is being
closed), signed in and in no room (no `Membership`), or in a room. The
membership keeps the room's peers (peer id -> channel), learned from
`joined` and kept current by the room's events (`hears`), so that the
forwarding path needs neither the database nor Redis.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser

from rooms import events
from rooms.models import Room
from signaling import limits

if TYPE_CHECKING:
    from sfu.seat import SfuSeat


@dataclass
class Account:
    """Who is on this socket: set once the handshake's session proved a signed-in user.

    The buckets are this socket's own rates (signaling/limits.py); the
    quality and resubscription limits are made at their first use, since
    most sockets never need them.
    """

    user: AbstractBaseUser
    # The user as the wire shows it (chat lines carry it).
    wire_user: dict[str, Any]
    # The client's address, for the per-address limits; None when unknown.
    address: str | None
    # Which login session opened the socket (a hash: logout closes only its sockets).
    session: str | None
    messages: limits.TokenBucket
    strikes: limits.TokenBucket
    chat: limits.TokenBucket
    quality: limits.QualityLimit | None = None
    resubscribes: limits.TokenBucket | None = None

    def quality_limit(self) -> limits.QualityLimit:
        if self.quality is None:
            self.quality = limits.QualityLimit()
        return self.quality

    def resubscribe_limit(self) -> limits.TokenBucket:
        if self.resubscribes is None:
            self.resubscribes = limits.resubscribe_bucket()
        return self.resubscribes


@dataclass
class Membership:
    """The room this socket is in, as which peer, and who else is there (peer id -> channel).

    `media` is where the room's media goes now (mesh or sfu, kept current by
    `room.updated`); `sfu` this person's place in the Janus room, once their
    browser published there.
    """

    room_id: int
    number: str
    peer_id: str
    moderator: bool
    # The Participant's primary key: their feed id in Janus.
    participant_pk: int
    capacity: int
    media: str
    peers: dict[str, str] = field(default_factory=dict)
    sfu: SfuSeat | None = None
    # When this seat's TURN credentials are renewed (`ice-servers`); cancelled as it ends.
    ice_renewal: asyncio.TimerHandle | None = None

    @property
    def group(self) -> str:
        return Room.group_name_for(self.number)

    def hears(self, event: dict[str, Any]) -> bool:
        """Take in a room event (rooms/events.py); True when its text goes on to the browser.

        Events of another room (one this socket left) are dropped. A
        `peer.joined` of a peer already listed is a duplicate (the socket
        subscribed before its join committed, signaling/seating.py).
        """
        if event["room"] != self.room_id:
            return False
        kind = event["type"]
        if kind == events.SIGNAL or kind == events.BROADCAST:
            return True
        peer_id = event.get("peer_id")
        if kind == events.PEER_JOINED:
            if peer_id == self.peer_id or peer_id in self.peers:
                return False
            self.peers[peer_id] = event["channel"]
            return True
        if kind == events.PEER_LEFT:
            return self.peers.pop(peer_id, None) is not None
        if kind == events.PEER_UPDATED:
            return peer_id in self.peers
        if kind == events.MOVED:
            if peer_id in self.peers:
                self.peers[peer_id] = event["channel"]
            return False
        if kind == events.ROOM_UPDATED:
            self.media = event.get("media", self.media)
            return True
        if kind == events.MODERATORS:
            return self.moderator
        raise ValueError(f"not a room event a membership hears: {kind}")

    def ends(self) -> None:
        """This membership is over: no more TURN credentials for it."""
        if self.ice_renewal is not None:
            self.ice_renewal.cancel()
