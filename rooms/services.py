"""Writes: creating, joining, leaving, locking and closing rooms, and chat.

Every function is synchronous and keyword-only; the consumer calls them
through `database_sync_to_async`. Refusals are `ClientError`s carrying the
protocol's error code, so the WebSocket and the HTTP API report them alike.
Changes that connected peers must hear about (lock, close, kick) are sent to
the room's group on commit, so Django admin reaches every worker too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from rooms import events
from rooms import protocol as p
from rooms.models import CAPACITY_DEFAULT, ChatMessage, Participant, Room
from rooms.selectors import peer_to_dict, room_chat_history, room_to_dict

RESUME_SALT = "rooms.resume"
NUMBER_ATTEMPTS = 20


@dataclass(frozen=True)
class JoinResult:
    room: Room
    participant: Participant
    # Everyone already in the room: (peer object, their channel name).
    peers: list[tuple[dict[str, Any], str]]
    room_dict: dict[str, Any]
    peer_dict: dict[str, Any]
    resume_token: str
    is_moderator: bool
    # The room's recent chat, so a newcomer sees what was said (extension).
    history: list[dict[str, Any]]
    # On resume: the channel the peer had before, to hand over from.
    previous_channel: str | None = None
    # The same account's earlier seat in this room, which this join took over
    # (one seat per account): (peer id, its channel), to announce and close.
    replaced: tuple[tuple[str, str], ...] = ()


def can_moderate(*, room: Room, user: AbstractBaseUser) -> bool:
    return user.pk == room.owner_id or bool(getattr(user, "is_staff", False))


def new_room_number() -> str:
    # Uniform over all 9-digit numbers without a leading zero: nothing about one
    # room's number tells anything about another's.
    return str(100_000_000 + secrets.randbelow(900_000_000))


def _check_create_caps(*, owner: AbstractBaseUser) -> None:
    """Refuse a new room when the owner is at a per-account cap; call inside the transaction.

    The owner's row is locked first, so two creates racing on two workers are
    counted one after the other. Staff are trusted and not capped.
    """
    if getattr(owner, "is_staff", False):
        return
    get_user_model().objects.select_for_update(no_key=True).filter(pk=owner.pk).exists()
    hour_ago = timezone.now() - timedelta(hours=1)
    counts = Room.objects.filter(
        Q(created_at__gte=hour_ago) | Q(closed_at__isnull=True), owner=owner
    ).aggregate(
        recent=Count("pk", filter=Q(created_at__gte=hour_ago)),
        open=Count("pk", filter=Q(closed_at__isnull=True)),
    )
    if counts["open"] >= settings.OPEN_ROOMS_PER_USER:
        raise p.ClientError(
            p.RATE_LIMITED,
            f"You have {counts['open']} open rooms; end one before creating another.",
        )
    if counts["recent"] >= settings.ROOMS_CREATED_PER_HOUR:
        raise p.ClientError(
            p.RATE_LIMITED, "You have created too many rooms in the last hour; try again later."
        )


def _new_room(
    *, owner: AbstractBaseUser, name: str | None, capacity: int | None, pin: str | None
) -> Room:
    """A validated, unsaved room without a number."""
    name = (name or "").strip() or f"{owner.get_username()}'s room"
    room = Room(owner=owner, name=name[: p.NAME_MAX], capacity=capacity or CAPACITY_DEFAULT)
    room.set_pin(pin)
    # Field validators cover the capacity range; the number constraints are the
    # save's (validating them here would cost queries per room).
    room.full_clean(exclude=["number"], validate_constraints=False)
    return room


def room_create(
    *,
    owner: AbstractBaseUser,
    name: str | None = None,
    capacity: int | None = None,
    pin: str | None = None,
) -> Room:
    room = _new_room(owner=owner, name=name, capacity=capacity, pin=pin)
    with transaction.atomic():
        _check_create_caps(owner=owner)
        for _ in range(NUMBER_ATTEMPTS):
            room.number = new_room_number()
            try:
                with transaction.atomic():
                    room.save()
            except IntegrityError:
                room.pk = None
                continue
            return room
    raise p.ClientError(p.SERVER_BUSY, "Could not find a free room number; try again.")


def room_create_and_join(
    *,
    number: str,
    owner: AbstractBaseUser,
    channel_name: str,
    name: str | None = None,
    capacity: int | None = None,
    pin: str | None = None,
) -> JoinResult | None:
    """Open room `number` with its owner already in it; None when the number is taken.

    One transaction: nobody can see the room before its owner is in it, and
    none of a join's checks (lock, PIN, capacity, chat history) has anything to
    look at yet. The caller picks the number so that it can subscribe to the
    room's group before anyone else can join.
    """
    room = _new_room(owner=owner, name=name, capacity=capacity, pin=pin)
    room.number = number
    with transaction.atomic():
        _check_create_caps(owner=owner)
        try:
            with transaction.atomic():
                room.save()
                participant = Participant.objects.create(
                    room=room,
                    user=owner,
                    peer_id=secrets.token_urlsafe(12),
                    channel_name=channel_name,
                )
        except IntegrityError:
            return None
    return _join_result(room=room, participant=participant, present=[], user=owner, history=[])


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
) -> JoinResult:
    """Admit `user` to the open room `number`, or refuse with the reason.

    The room is checked first without a lock (closed, locked, PIN), so a
    refused attempt never waits for or holds the room's lock. Then capacity
    is checked and the participant created under a lock on the room row, so
    joins racing on different workers can never overfill it. The lock is
    PostgreSQL's FOR NO KEY UPDATE: it serializes joins, but not the rows that
    merely point at the room (a chat line's foreign key takes FOR KEY SHARE,
    which FOR UPDATE would make wait behind every queued join). One seat per
    account: a seat the same user already holds in the room (another tab or
    device) is taken over, and is not counted against the capacity.
    """
    room = (
        Room.objects.select_related("owner").filter(number=number, closed_at__isnull=True).first()
    )
    if room is None:
        if Room.objects.filter(number=number).exists():
            raise p.ClientError(p.ROOM_CLOSED_CODE, "This room has been closed.")
        raise p.ClientError(p.ROOM_NOT_FOUND, "There is no room with that number.")
    moderator = can_moderate(room=room, user=user)
    if room.locked and not moderator:
        raise p.ClientError(p.ROOM_LOCKED, "This room is locked; nobody new can join.")
    if not moderator and not room.check_pin(pin):
        raise p.ClientError(
            p.BAD_PIN, "This room needs a PIN." if not pin else "That PIN is not right."
        )
    with transaction.atomic():
        # Locked, closed and capacity may have changed since the read above.
        current = (
            Room.objects.select_for_update(no_key=True)
            .filter(pk=room.pk)
            .values("closed_at", "locked", "capacity")
            .get()
        )
        if current["closed_at"] is not None:
            raise p.ClientError(p.ROOM_CLOSED_CODE, "This room has been closed.")
        room.locked, room.capacity = current["locked"], current["capacity"]
        if room.locked and not moderator:
            raise p.ClientError(p.ROOM_LOCKED, "This room is locked; nobody new can join.")
        present = list(room.participants.filter(left_at__isnull=True).select_related("user"))
        mine = [other for other in present if other.user_id == user.pk]
        present = [other for other in present if other.user_id != user.pk]
        if len(present) >= room.capacity:
            raise p.ClientError(p.ROOM_FULL, f"This room is full ({room.capacity} people).")
        if mine:
            Participant.objects.filter(pk__in=[seat.pk for seat in mine]).update(
                left_at=timezone.now(), left_reason=Participant.LeftReason.REPLACED
            )
        participant = Participant.objects.create(
            room=room, user=user, peer_id=secrets.token_urlsafe(12), channel_name=channel_name
        )
    return _join_result(
        room=room,
        participant=participant,
        present=present,
        user=user,
        replaced=tuple((seat.peer_id, seat.channel_name) for seat in mine),
    )


def _join_result(
    *,
    room: Room,
    participant: Participant,
    present: list[Participant],
    user: AbstractBaseUser,
    previous_channel: str | None = None,
    history: list[dict[str, Any]] | None = None,
    replaced: tuple[tuple[str, str], ...] = (),
) -> JoinResult:
    return JoinResult(
        room=room,
        participant=participant,
        peers=[(peer_to_dict(other), other.channel_name) for other in present],
        room_dict=room_to_dict(room, participants=len(present) + 1),
        peer_dict=peer_to_dict(participant),
        resume_token=_resume_token(participant=participant),
        is_moderator=can_moderate(room=room, user=user),
        history=room_chat_history(room=room) if history is None else history,
        previous_channel=previous_channel,
        replaced=replaced,
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
) -> JoinResult | None:
    """Reattach a peer that is still present to a new socket, keeping its peer id.

    The caller has already taken the peer's presence (so no sweeper can expire
    it meanwhile); None when the peer is no longer in that room.
    """
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update()
            .select_related("room__owner", "user")
            .filter(
                peer_id=peer_id,
                user=user,
                left_at__isnull=True,
                room__number=number,
                room__closed_at__isnull=True,
            )
            .first()
        )
        if participant is None:
            return None
        previous = participant.channel_name
        participant.channel_name = channel_name
        participant.save(update_fields=["channel_name"])
        room = participant.room
        present = list(
            room.participants.filter(left_at__isnull=True)
            .exclude(pk=participant.pk)
            .select_related("user")
        )
    return _join_result(
        room=room, participant=participant, present=present, user=user, previous_channel=previous
    )


def participant_was_replaced(*, peer_id: str, user: AbstractBaseUser) -> bool:
    """True when this user's peer gave its seat to a later join of the same account."""
    return Participant.objects.filter(
        peer_id=peer_id, user=user, left_reason=Participant.LeftReason.REPLACED
    ).exists()


def participant_expire(*, peer_id: str) -> tuple[int, str, str] | None:
    """Record that a peer's presence ran out: (room id, room group, its channel), once."""
    participant = (
        Participant.objects.filter(peer_id=peer_id, left_at__isnull=True)
        .select_related("room")
        .first()
    )
    if participant is None or not participant_leave(
        peer_id=peer_id, reason=Participant.LeftReason.TIMEOUT
    ):
        return None
    return participant.room_id, participant.room.group_name, participant.channel_name


def participants_active_before(*, seconds: float) -> list[str]:
    """Peer ids present for more than `seconds` (for reconciling with presence)."""
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return list(
        Participant.objects.filter(left_at__isnull=True, joined_at__lt=cutoff).values_list(
            "peer_id", flat=True
        )
    )


def participant_leave(*, peer_id: str, reason: str) -> bool:
    """Mark the peer as gone; False when it had already left (kicked, closed)."""
    return bool(
        Participant.objects.filter(peer_id=peer_id, left_at__isnull=True).update(
            left_at=timezone.now(), left_reason=reason
        )
    )


def participant_kick(*, room_id: int, actor: AbstractBaseUser, peer_id: str) -> Participant:
    room = Room.objects.select_related("owner").get(pk=room_id)
    if not can_moderate(room=room, user=actor):
        raise p.ClientError(p.FORBIDDEN, "Only the room's owner can remove people.")
    target = (
        Participant.objects.filter(room=room, peer_id=peer_id, left_at__isnull=True)
        .select_related("user")
        .first()
    )
    if target is None:
        raise p.ClientError(p.UNKNOWN_PEER, "That person is not in this room.")
    if target.user_id == actor.pk:
        raise p.ClientError(p.FORBIDDEN, "Use leave to leave the room yourself.")
    participant_leave(peer_id=peer_id, reason=Participant.LeftReason.KICKED)
    events.on_commit_send(target.channel_name, events.kicked(room_id=room.pk))
    events.on_commit_group_send(
        room.group_name,
        events.peer_left(room_id=room.pk, peer_id=peer_id, reason=Participant.LeftReason.KICKED),
    )
    return target


def participant_set_media(
    *, peer_id: str, audio: bool | None, video: bool | None, screen: bool | None
) -> Participant | None:
    participant = (
        Participant.objects.filter(peer_id=peer_id, left_at__isnull=True)
        .select_related("user")
        .first()
    )
    if participant is None:
        return None
    changed = []
    for field, value in (("audio", audio), ("video", video), ("screen", screen)):
        if value is not None and getattr(participant, field) != value:
            setattr(participant, field, value)
            changed.append(field)
    if changed:
        participant.save(update_fields=changed)
    return participant


def room_announce_update(*, room: Room) -> None:
    """Tell everyone in the room its new state (`room-updated`), once committed."""
    events.on_commit_group_send(
        room.group_name, events.room_updated(room_id=room.pk, room=room_to_dict(room))
    )


def room_set_locked(*, room: Room, locked: bool) -> Room:
    """Lock or unlock a room and tell everyone in it."""
    with transaction.atomic():
        Room.objects.filter(pk=room.pk).update(locked=locked)
        room.locked = locked
        room_announce_update(room=room)
    return room


def room_close(*, room: Room, reason: str) -> bool:
    """Close a room for good: everyone connected gets `room-closed` and is disconnected."""
    now = timezone.now()
    with transaction.atomic():
        if not Room.objects.filter(pk=room.pk, closed_at__isnull=True).update(closed_at=now):
            return False
        room.closed_at = now
        room.participants.filter(left_at__isnull=True).update(
            left_at=now, left_reason=Participant.LeftReason.CLOSED
        )
        events.on_commit_group_send(
            room.group_name, events.room_closed(room_id=room.pk, reason=reason)
        )
    return True


def room_close_if_idle(*, room: Room, before: datetime) -> bool:
    """Close `room` if nobody is in it and nobody has been since `before` (housekeeping)."""
    with transaction.atomic():
        locked = (
            Room.objects.select_for_update(no_key=True)
            .filter(pk=room.pk, closed_at__isnull=True)
            .first()
        )
        if (
            locked is None
            or locked.participants.filter(Q(left_at__isnull=True) | Q(left_at__gte=before)).exists()
        ):
            return False
        return room_close(room=locked, reason="admin")


def chat_message_create(
    *, room_id: int, user: AbstractBaseUser, peer_id: str, text: str
) -> ChatMessage:
    return ChatMessage.objects.create(room_id=room_id, user=user, peer_id=peer_id, text=text)
