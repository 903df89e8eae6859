"""Writes about a room itself: its number, caps and media path; locking, announcing, closing.

Like every service (rooms/services/__init__.py): synchronous, keyword-only,
refusals as `rooms.errors`, and what others must hear as an outbox the
caller publishes once the write is committed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from rooms import errors, events, protocol, wire
from rooms.events import Outbox
from rooms.models import Participant, Room, present
from rooms.services import _sql

NUMBER_ATTEMPTS = 20


def can_moderate(*, room: Room, user: AbstractBaseUser) -> bool:
    return user.pk == room.owner_id or bool(getattr(user, "is_staff", False))


def room_numbers() -> Iterator[str]:
    """Numbers to try for a new room, `NUMBER_ATTEMPTS` of them, then `NoFreeNumber` raised.

    Uniform over all 9-digit numbers without a leading zero: nothing about one
    room's number tells anything about another's. Every create (the socket's,
    the API's) tries them in turn, going on at `NumberTaken`; giving up is
    decided here, so no caller can loop for ever or give up differently.
    """
    for _ in range(NUMBER_ATTEMPTS):
        yield str(100_000_000 + secrets.randbelow(900_000_000))
    raise errors.NoFreeNumber()


def check_create_caps(*, owner: AbstractBaseUser) -> None:
    """Refuse a new room when the owner is at a per-account cap; call inside the transaction.

    The owner's row is locked first, so two creates racing on two workers are
    counted one after the other. Staff are trusted and not capped.
    """
    if getattr(owner, "is_staff", False):
        return
    _sql.lock_user(user_id=owner.pk)
    recent, open_ = _sql.owner_room_counts(
        owner_id=owner.pk, since=timezone.now() - timedelta(hours=1)
    )
    if open_ >= settings.OPEN_ROOMS_PER_USER:
        raise errors.CapReached(f"You have {open_} open rooms; end one before creating another.")
    if recent >= settings.ROOMS_CREATED_PER_HOUR:
        raise errors.CapReached(
            "You have created too many rooms in the last hour; try again later."
        )


def capacity_max(media: str) -> int:
    """The largest capacity a room of media mode `media` may have."""
    if media == Room.MediaMode.MESH:
        return protocol.CAPACITY_MAX
    return settings.SFU_CAPACITY_MAX


def new_room(
    *,
    owner: AbstractBaseUser,
    name: str | None,
    capacity: int | None,
    pin: str | None,
    media: str | None = None,
) -> Room:
    """A validated, unsaved room without a number."""
    name = (name or "").strip() or f"{owner.get_username()}'s room"
    mode = media or protocol.MEDIA_MODE_DEFAULT
    if mode not in Room.MediaMode.values:
        raise errors.InvalidRoom(f"media must be one of {', '.join(Room.MediaMode.values)}")
    capacity = capacity or protocol.CAPACITY_DEFAULT
    if capacity > capacity_max(mode):
        raise errors.InvalidRoom(
            f"A room with media '{mode}' holds at most {capacity_max(mode)} people."
        )
    room = Room(
        owner=owner,
        name=name[: protocol.NAME_MAX],
        capacity=capacity,
        media_mode=mode,
        media=protocol.MEDIA_SFU if mode == Room.MediaMode.SFU else protocol.MEDIA_MESH,
    )
    room.set_pin(pin)
    # Field validators cover the capacity range; the number constraints are the
    # save's, and the owner is the signed-in account (validating either here
    # would cost a query per room).
    try:
        room.full_clean(exclude=["number", "owner"], validate_constraints=False)
    except ValidationError as err:
        raise errors.InvalidRoom("; ".join(err.messages)) from None
    return room


def locked_room(*, room_id: int, **conditions: object) -> Room | None:
    """The open room `room_id` under its row lock (as a join takes it), if it meets `conditions`."""
    return (
        Room.objects.select_for_update(no_key=True)
        .filter(pk=room_id, closed_at__isnull=True, **conditions)
        .first()
    )


def room_announce_update(*, room: Room, participants: int | None = None) -> Outbox:
    """What tells everyone in the room its new state (`room-updated`)."""
    if participants is None:
        participants = room.participants.present().count()
    return (
        events.room_updated(
            room_id=room.pk,
            group=room.group_name,
            room_object=wire.room(room, participants=participants),
        ),
    )


def room_set_locked(*, room_id: int, locked: bool) -> Outbox:
    """Lock or unlock a room; everyone in it hears."""
    room = Room.objects.select_related("owner").get(pk=room_id)
    Room.objects.filter(pk=room.pk).update(locked=locked)
    room.locked = locked
    return room_announce_update(room=room)


def room_close(*, room_id: int, reason: str) -> Outbox:
    """Close a room for good; everyone connected hears `room-closed` and is disconnected.

    Nothing (an empty outbox) when it was closed already.
    """
    now = timezone.now()
    with transaction.atomic():
        if not Room.objects.filter(pk=room_id, closed_at__isnull=True).update(closed_at=now):
            return ()
        Participant.objects.present().filter(room_id=room_id).update(
            left_at=now, left_reason=Participant.LeftReason.CLOSED
        )
        number, media = Room.objects.values_list("number", "media").get(pk=room_id)
    closed = events.room_closed(room_id=room_id, group=Room.group_name_for(number), reason=reason)
    if media == protocol.MEDIA_SFU:
        # Janus drops everyone still in its room (`destroyed`).
        return (closed, events.sfu_cleanup(room_id=room_id, destroy=True))
    return (closed,)


def room_close_if_idle(*, room_id: int, before: datetime) -> Outbox:
    """Close the room if nobody is in it and nobody has been since `before` (housekeeping)."""
    with transaction.atomic():
        locked = (
            Room.objects.select_for_update(no_key=True)
            .filter(pk=room_id, closed_at__isnull=True)
            .first()
        )
        if (
            locked is None
            or locked.participants.filter(present() | Q(left_at__gte=before)).exists()
        ):
            return ()
        return room_close(room_id=room_id, reason="admin")


def media_return_clock(*, room_id: int) -> Outbox:
    """An `auto` room on the SFU that shrank to MESH_MAX_PEERS: start its way back to the mesh.

    Under the room's lock, like the join that would take it past the limit
    again (and stop the clock): whichever comes second sees the other's
    doing, on any worker. Every worker is asked to check it when the delay
    has run (`room.media_check`); the housekeeping checks whatever that lost.
    """
    now = timezone.now()
    with transaction.atomic():
        room = locked_room(
            room_id=room_id,
            media_mode=Room.MediaMode.AUTO,
            media=protocol.MEDIA_SFU,
            media_small_since__isnull=True,
        )
        if room is None or not (0 < room.participants.present().count() <= settings.MESH_MAX_PEERS):
            return ()
        Room.objects.filter(pk=room_id).update(media_small_since=now)
    return (events.media_check(room_id=room_id, at=now.timestamp() + settings.MESH_RETURN_AFTER),)


def room_media_return(*, room_id: int, now: datetime | None = None) -> Outbox:
    """Take an `auto` room back to the mesh if it has stayed small for MESH_RETURN_AFTER seconds.

    Every worker calls this when the check it was asked for is due (and the
    housekeeping for checks that were lost): under the room's lock the first
    finds the room due and moves it, the others find nothing to do, as does
    a check whose room grew again meanwhile. Everyone in the room hears
    `room-updated` with media mesh; Janus keeps serving them for
    SFU_RETURN_GRACE seconds (`sfu.release`), while their browsers set up
    their direct links.
    """
    now = now or timezone.now()
    due = now - timedelta(seconds=settings.MESH_RETURN_AFTER)
    with transaction.atomic():
        room = locked_room(
            room_id=room_id,
            media_mode=Room.MediaMode.AUTO,
            media=protocol.MEDIA_SFU,
            media_small_since__lte=due,
        )
        if room is None:
            return ()
        present = room.participants.present().count()
        if present > settings.MESH_MAX_PEERS:
            return ()  # a join past the limit stops the clock, so this is never due
        Room.objects.filter(pk=room_id).update(media=protocol.MEDIA_MESH, media_small_since=None)
        room.media, room.media_small_since = protocol.MEDIA_MESH, None
    return (
        *room_announce_update(room=room, participants=present),
        events.sfu_release(room_id=room_id, at=now.timestamp() + settings.SFU_RETURN_GRACE),
    )


def rooms_media_return_due(*, now: datetime) -> list[int]:
    """Rooms whose way back to the mesh is due (the housekeeping's safety net)."""
    due = now - timedelta(seconds=settings.MESH_RETURN_AFTER)
    return list(
        Room.objects.open()
        .filter(media=protocol.MEDIA_SFU, media_small_since__lte=due)
        .values_list("pk", flat=True)
    )


def room_set_mode(
    *, room_id: int, mode: str, sfu_available: bool, now: datetime | None = None
) -> Outbox:
    """The owner pins the room's media to `mesh` or `sfu`, or lets it follow its size (`auto`).

    Capacity rules as at creation: a room may be pinned to the mesh only if
    its capacity is a mesh room's (at most CAPACITY_MAX, 12), whoever is in
    it now (`InvalidRoom`); moving to the SFU needs Janus (`SfuUnavailable`).
    `auto` takes a room on the mesh with more than MESH_MAX_PEERS people to
    the SFU (when Janus answers), and starts a small one on the SFU on its
    way back. Everyone hears `room-updated`; a room that leaves the SFU lets
    go of Janus after SFU_RETURN_GRACE, as in `room_media_return`. The
    caller checked that the actor may moderate. Nothing when unchanged.
    """
    if mode not in Room.MediaMode.values:
        raise errors.InvalidRoom(f"mode must be one of {', '.join(Room.MediaMode.values)}")
    now = now or timezone.now()
    with transaction.atomic():
        room = locked_room(room_id=room_id)
        if room is None or room.media_mode == mode:
            return ()
        if room.capacity > capacity_max(mode):
            raise errors.InvalidRoom(
                f"A room with media '{mode}' holds at most {capacity_max(mode)} people."
            )
        present = room.participants.present().count()
        was = room.media
        media = {
            Room.MediaMode.MESH: protocol.MEDIA_MESH,
            Room.MediaMode.SFU: protocol.MEDIA_SFU,
        }.get(mode, was)
        if mode == Room.MediaMode.AUTO and was == protocol.MEDIA_MESH and sfu_available:
            media = protocol.MEDIA_SFU if present > settings.MESH_MAX_PEERS else was
        if media == protocol.MEDIA_SFU and was != protocol.MEDIA_SFU and not sfu_available:
            raise errors.SfuUnavailable()
        small = mode == Room.MediaMode.AUTO and media == protocol.MEDIA_SFU
        since = now if small and 0 < present <= settings.MESH_MAX_PEERS else None
        Room.objects.filter(pk=room_id).update(
            media_mode=mode, media=media, media_small_since=since
        )
        room.media_mode, room.media, room.media_small_since = mode, media, since
    outbox = list(room_announce_update(room=room, participants=present))
    if was == protocol.MEDIA_SFU and media == protocol.MEDIA_MESH:
        outbox.append(
            events.sfu_release(room_id=room_id, at=now.timestamp() + settings.SFU_RETURN_GRACE)
        )
    if since is not None:
        outbox.append(
            events.media_check(room_id=room_id, at=now.timestamp() + settings.MESH_RETURN_AFTER)
        )
    return tuple(outbox)
