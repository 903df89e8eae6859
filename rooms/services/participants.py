"""Writes about who sits in a room: creating one with its owner seated, joining, resuming,
leaving, expiring, kicking, and a participant's media.

A create is here, not in rooms.py: a room is created with its owner's seat in
the same transaction (nobody sees the room before its owner is in it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from infra.process import worker_name
from rooms import attempts, errors, events, protocol, selectors
from rooms.events import Outbox
from rooms.models import ChatMessage, Participant, Room
from rooms.services import _sql
from rooms.services.rooms import (
    can_moderate,
    check_create_caps,
    media_return_clock,
    new_room,
    room_announce_update,
)

RESUME_SALT = "rooms.resume"


@dataclass(frozen=True)
class Seat:
    """A place in a room just taken (created, joined or resumed), and what comes with it."""

    room: Room
    participant: Participant
    # Everyone else in the room, oldest first (their channels are on the models).
    present: list[Participant]
    # The room's recent chat, so a newcomer sees what was said (extension).
    history: list[ChatMessage]
    resume_token: str
    moderator: bool
    outbox: Outbox = ()

    @property
    def participants(self) -> int:
        return len(self.present) + 1


def room_create(
    *,
    owner: AbstractBaseUser,
    number: str,
    name: str | None = None,
    capacity: int | None = None,
    pin: str | None = None,
    channel_name: str | None = None,
    media: str | None = None,
    sfu_available: bool = False,
) -> Seat | Room:
    """Open room `number`; with `channel_name`, with its owner already in it (the socket's create).

    One transaction: nobody can see the room before its owner is in it, and
    none of a join's checks (lock, PIN, capacity, chat history) has anything to
    look at yet. The caller draws the number (`room_numbers()`), so that a
    socket can subscribe to the room's group before anyone else can join;
    `NumberTaken` when an open room holds it: draw again. An `sfu` room with
    its owner in it is refused (`SfuUnavailable`) while Janus cannot be
    reached (`sfu_available`).
    """
    room = new_room(owner=owner, name=name, capacity=capacity, pin=pin, media=media)
    if room.media_mode == Room.MediaMode.SFU and channel_name is not None and not sfu_available:
        raise errors.SfuUnavailable()
    room.number = number
    # A number taken meanwhile fails the insert and rolls the whole transaction
    # back (no savepoint: the caller draws again and starts over, caps included).
    with transaction.atomic():
        check_create_caps(owner=owner)
        try:
            _sql.insert(room)
        except IntegrityError:
            raise errors.NumberTaken() from None
        participant = None
        if channel_name is not None:
            participant = _seat_participant(room=room, user=owner, channel_name=channel_name)
    if participant is None:
        return room
    return Seat(
        room=room,
        participant=participant,
        present=[],
        history=[],
        resume_token=_resume_token(participant=participant),
        moderator=True,
    )


def _seat_participant(*, room: Room, user: AbstractBaseUser, channel_name: str) -> Participant:
    """A new participant for `user` in `room` on this worker, stored in the open transaction."""
    participant = Participant(
        room=room,
        user=user,
        peer_id=secrets.token_urlsafe(12),
        channel_name=channel_name,
        worker=worker_name(),
    )
    _sql.insert(participant)
    return participant


def _resume_token(*, participant: Participant) -> str:
    return signing.dumps(
        {"p": participant.peer_id, "u": participant.user_id, "r": participant.room_id},
        salt=RESUME_SALT,
        compress=True,
    )


def room_join(
    *,
    number: str,
    user: AbstractBaseUser,
    channel_name: str,
    pin: str | None = None,
    sfu_available: bool = False,
) -> Seat:
    """Admit `user` to the open room `number`, or refuse with the reason.

    Media: an `sfu` room admits nobody while Janus is unreachable
    (`sfu_available` False: `SfuUnavailable`); an `auto` room on the mesh
    moves to the SFU when this join takes it past MESH_MAX_PEERS people and
    Janus answers, decided here under the room's lock so exactly one join
    makes the switch; everyone hears `room-updated` before the newcomer. An
    `auto` room on the SFU on its way back to the mesh (`room_media_return`)
    that this join takes past MESH_MAX_PEERS again stays on the SFU.

    One read of the room under its lock decides everything (closed, locked,
    PIN, whether it has any chat), then capacity is checked and the
    participant created, so joins racing on different workers can never
    overfill it. The lock is PostgreSQL's FOR NO KEY UPDATE on the room row
    only: it serializes joins, but not the rows that merely point at the
    room (a chat line's foreign key takes FOR KEY SHARE, which FOR UPDATE
    would make wait behind every queued join). A refused attempt holds the
    lock only for an HMAC of the PIN (no slow hash: rooms/models.py; a room
    from before that, with a password-hashed PIN, pays for it under its own
    lock until it is closed once empty). One seat per account: a seat the
    same user already holds in the room (another tab or device) is taken
    over, and is not counted against the capacity.

    Queries: the locking read, the people present, the insert (plus an
    update when a seat is taken over, and the chat history only when the
    room has chat); tests/rooms/services/test_join_queries.py counts them. The three
    that every join runs are written in SQL (rooms/_sql.py: the ORM
    spent more CPU building them than PostgreSQL spent running them).
    """
    with transaction.atomic():
        room = _sql.lock_open_room(number=number)
        if room is None:
            if Room.objects.filter(number=number).exists():
                raise errors.RoomClosed()
            raise errors.RoomNotFound()
        moderator = can_moderate(room=room, user=user)
        if room.locked and not moderator:
            raise errors.RoomLocked()
        if not moderator and room.has_pin:
            # Locked by wrong guesses (from anyone): refused unevaluated, right or wrong.
            if attempts.pin_locked(room_id=room.pk):
                raise errors.PinLocked()
            if not room.check_pin(pin):
                # Only a PIN given counts against the room: a link opened without one is no guess.
                locked = bool(pin) and attempts.pin_failed(room_id=room.pk)
                raise errors.WrongPin(given=bool(pin), room_id=room.pk, locked=locked)
        if room.media_mode == Room.MediaMode.SFU and not sfu_available:
            raise errors.SfuUnavailable()
        present = _sql.present_participants(room_id=room.pk)
        mine = [other for other in present if other.user_id == user.pk]
        present = [other for other in present if other.user_id != user.pk]
        if len(present) >= room.capacity:
            raise errors.RoomFull(room.capacity)
        if mine:
            Participant.objects.filter(pk__in=[seat.pk for seat in mine]).update(
                left_at=timezone.now(), left_reason=Participant.LeftReason.REPLACED
            )
        participant = _seat_participant(room=room, user=user, channel_name=channel_name)
        switched = (
            room.media_mode == Room.MediaMode.AUTO
            and room.media == protocol.MEDIA_MESH
            and sfu_available
            and len(present) + 1 > settings.MESH_MAX_PEERS
        )
        if switched:
            Room.objects.filter(pk=room.pk).update(media=protocol.MEDIA_SFU)
            room.media = protocol.MEDIA_SFU
        elif room.media_small_since is not None and len(present) + 1 > settings.MESH_MAX_PEERS:
            # Grown again before its delay ran out: it stays on the SFU (no flapping).
            Room.objects.filter(pk=room.pk).update(media_small_since=None)
            room.media_small_since = None
    participant.user = user
    group = room.group_name
    # The seat taken over leaves first (the others see it go before they see
    # the newcomer); its socket, wherever it is, is closed with 4409.
    outbox: list[events.Outgoing] = []
    for seat in mine:
        outbox.append(
            events.peer_left(
                room_id=room.pk,
                group=group,
                peer_id=seat.peer_id,
                reason=Participant.LeftReason.REPLACED,
            )
        )
        outbox.append(
            events.peer_replaced(room_id=room.pk, peer_id=seat.peer_id, channel=seat.channel_name)
        )
    if mine and room.media == protocol.MEDIA_SFU and not switched:
        # A seat whose socket dropped is parked in Janus on some worker: it ends there.
        outbox.append(events.sfu_cleanup(room_id=room.pk, feeds=tuple(seat.pk for seat in mine)))
    if switched:
        # Before the newcomer: when they appear, everyone is already on the SFU.
        outbox.extend(room_announce_update(room=room, participants=len(present) + 1))
    outbox.append(events.peer_joined(room_id=room.pk, group=group, participant=participant))
    return _seat(
        room=room,
        participant=participant,
        present=present,
        user=user,
        outbox=outbox,
        has_chat=room.has_chat,
    )


def _seat(
    *,
    room: Room,
    participant: Participant,
    present: list[Participant],
    user: AbstractBaseUser,
    outbox: list[events.Outgoing],
    has_chat: bool = True,
) -> Seat:
    """The seat a join or a resume took, with the room's recent chat (none to read: no query)."""
    return Seat(
        room=room,
        participant=participant,
        present=present,
        history=selectors.room_chat_history(room_id=room.pk) if has_chat else [],
        resume_token=_resume_token(participant=participant),
        moderator=can_moderate(room=room, user=user),
        outbox=tuple(outbox),
    )


def resume_token_peer(*, token: str, user: AbstractBaseUser) -> str | None:
    """The peer id a resume token names, if it is genuine and was issued to `user`."""
    try:
        data = signing.loads(token, salt=RESUME_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user.pk:
        return None  # someone else's token: worth nothing to this user
    peer_id = data.get("p")
    return peer_id if isinstance(peer_id, str) else None


def participant_resume(
    *, peer_id: str, number: str, user: AbstractBaseUser, channel_name: str
) -> Seat | None:
    """Reattach a peer that is still present to a new socket, keeping its peer id.

    The caller has already taken the peer's presence (so no sweeper can expire
    it meanwhile); None when the peer is no longer in that room. The room
    hears where the peer is now before the client does, so an offer the
    client provokes cannot go to the old socket; the old socket, if it still
    lives, is closed with 4409.
    """
    with transaction.atomic():
        participant = (
            Participant.objects.present()
            .select_for_update()
            .select_related("room__owner", "user")
            .filter(
                peer_id=peer_id,
                user=user,
                room__number=number,
                room__closed_at__isnull=True,
            )
            .first()
        )
        if participant is None:
            return None
        previous = participant.channel_name
        participant.channel_name = channel_name
        participant.worker = worker_name()
        participant.save(update_fields=["channel_name", "worker"])
        room = participant.room
        present = list(
            room.participants.present().exclude(pk=participant.pk).select_related("user")
        )
    outbox = [
        events.peer_moved(
            room_id=room.pk, group=room.group_name, peer_id=peer_id, channel=channel_name
        )
    ]
    if previous and previous != channel_name:
        outbox.append(
            events.peer_replaced(room_id=room.pk, peer_id=peer_id, channel=previous, resumed=True)
        )
    return _seat(room=room, participant=participant, present=present, user=user, outbox=outbox)


def participant_was_replaced(*, peer_id: str, user: AbstractBaseUser) -> bool:
    """True when this user's peer gave its seat to a later join of the same account."""
    return Participant.objects.filter(
        peer_id=peer_id, user=user, left_reason=Participant.LeftReason.REPLACED
    ).exists()


def participant_leave(*, peer_id: str, reason: str) -> Outbox:
    """Mark the peer as gone and tell its room; nothing when it had already left."""
    participant = (
        Participant.objects.present().filter(peer_id=peer_id).select_related("room").first()
    )
    if participant is None or not Participant.objects.present().filter(pk=participant.pk).update(
        left_at=timezone.now(), left_reason=reason
    ):
        return ()
    room = participant.room
    outbox = [
        events.peer_left(room_id=room.pk, group=room.group_name, peer_id=peer_id, reason=reason)
    ]
    if room.media == protocol.MEDIA_SFU:
        outbox.extend(_sfu_after_leave(room=room, participant=participant, reason=reason))
    return tuple(outbox)


def _sfu_after_leave(*, room: Room, participant: Participant, reason: str) -> Outbox:
    """Janus follows a departure: a kicked or expired feed goes; an empty room is destroyed.

    An `auto` room that empties goes back to the mesh at once for whoever
    comes next; one that shrinks to MESH_MAX_PEERS starts its way back
    (`media_return_clock`).
    """
    if not room.participants.present().exists():
        if room.media_mode == Room.MediaMode.AUTO:
            Room.objects.filter(pk=room.pk, media=protocol.MEDIA_SFU).update(
                media=protocol.MEDIA_MESH, media_small_since=None
            )
        return (events.sfu_cleanup(room_id=room.pk, destroy=True),)
    outbox: list[events.Outgoing] = []
    if reason in (Participant.LeftReason.KICKED, Participant.LeftReason.TIMEOUT):
        # Their worker may be dead: whoever gets this kicks the feed.
        outbox.append(events.sfu_cleanup(room_id=room.pk, feeds=(participant.pk,)))
    if room.media_mode == Room.MediaMode.AUTO:
        outbox.extend(media_return_clock(room_id=room.pk))
    return tuple(outbox)


def participant_expire(*, peer_id: str) -> Outbox:
    """A peer's presence ran out: tell its room, once, and its socket, should it still live."""
    participant = (
        Participant.objects.present().filter(peer_id=peer_id).select_related("room").first()
    )
    left = participant_leave(peer_id=peer_id, reason=Participant.LeftReason.TIMEOUT)
    if not left:
        return ()
    # Its socket may be alive after all (a worker stalled past the deadline):
    # tell it, so it does not go on thinking it is in the room.
    return (
        *left,
        events.peer_expired(
            room_id=participant.room_id, peer_id=peer_id, channel=participant.channel_name
        ),
    )


def participant_kick(*, room_id: int, actor: AbstractBaseUser, peer_id: str) -> Outbox:
    room = Room.objects.select_related("owner").get(pk=room_id)
    if not can_moderate(room=room, user=actor):
        raise errors.NotAllowed("Only the room's owner can remove people.")
    target = (
        Participant.objects.present()
        .filter(room=room, peer_id=peer_id)
        .select_related("user")
        .first()
    )
    if target is None:
        raise errors.PeerNotFound()
    if target.user_id == actor.pk:
        raise errors.NotAllowed("Use leave to leave the room yourself.")
    left = participant_leave(peer_id=peer_id, reason=Participant.LeftReason.KICKED)
    if not left:
        raise errors.PeerNotFound()
    return (events.kicked(room_id=room.pk, channel=target.channel_name), *left)


def participant_set_media(
    *, peer_id: str, audio: bool | None, video: bool | None, screen: bool | None
) -> Outbox:
    """Store what the peer now sends; the others hear the whole peer object."""
    participant = (
        Participant.objects.present().filter(peer_id=peer_id).select_related("user", "room").first()
    )
    if participant is None:
        return ()
    changed = []
    for field, value in (("audio", audio), ("video", video), ("screen", screen)):
        if value is not None and getattr(participant, field) != value:
            setattr(participant, field, value)
            changed.append(field)
    if changed:
        participant.save(update_fields=changed)
    room = participant.room
    return (events.peer_updated(room_id=room.pk, group=room.group_name, participant=participant),)
