"""Janus rooms as Django's rooms see them: is Janus there, create, clean up, who is in one.

Each process (event loop) keeps one room-management handle (`VideoRoomAdmin`)
on a session of its own, made on first use and again once Janus lost it (a
restart). A Janus room is named by the Django room's primary key, and its
secret and PIN derive from JANUS_ADMIN_KEY (`room_credentials`), so every
worker can create, kick in and destroy any room without storing anything.
A participant's feed id is their `Participant` primary key: unique, known to
every worker, so a worker that takes over a seat (a resume after the first
worker died) can kick the stale feed by id before joining with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from infra.loopscoped import LoopScoped
from sfu.janus import JanusError, PluginError
from sfu.videoroom import (
    ERROR_NO_SUCH_FEED,
    ERROR_NO_SUCH_ROOM,
    ERROR_ROOM_EXISTS,
    VideoRoomAdmin,
    room_credentials,
)

logger = logging.getLogger(__name__)

# How long one answer to "is Janus there?" is believed (a join asks it).
AVAILABLE_CACHE_SECONDS = 2.0
# How long the question may take before the answer is "no" (a Janus that is down
# refuses the connection at once; this bounds a hung one, and a starved worker).
AVAILABLE_TIMEOUT_SECONDS = 5.0

_admins: LoopScoped[VideoRoomAdmin] = LoopScoped()
_admin_locks: LoopScoped[asyncio.Lock] = LoopScoped(asyncio.Lock)
# (when asked, whether Janus answered)
_available: LoopScoped[tuple[float, bool]] = LoopScoped()


def configured() -> bool:
    """Whether this site has an SFU at all (JANUS_URL set)."""
    return bool(settings.JANUS_URL)


async def admin() -> VideoRoomAdmin:
    """This loop's room-management handle, (re)made when missing or lost."""
    from sfu import get_janus

    client = get_janus()
    if client is None:
        raise JanusError(None, "no SFU configured (JANUS_URL)")
    async with _admin_locks.get():
        current = _admins.peek()
        if current is not None and current.handle.session.state in ("active", "reclaiming"):
            return current
        session = await client.create_session()
        current = await VideoRoomAdmin.attach(session, admin_key=settings.JANUS_ADMIN_KEY)
        _admins.set(current)
        return current


async def available() -> bool:
    """Whether Janus answers now (cached for a moment): decides `sfu` joins and `auto` switches."""
    if not configured():
        return False
    cached = _available.peek()
    now = time.monotonic()
    if cached is not None and now - cached[0] < AVAILABLE_CACHE_SECONDS:
        return cached[1]
    from sfu import get_janus

    try:
        async with asyncio.timeout(AVAILABLE_TIMEOUT_SECONDS):
            # A request on the connection, not a session's state: a session
            # may still be trying to reclaim itself from a Janus that is gone.
            await get_janus().info()
        ok = True
    except (JanusError, TimeoutError):
        ok = False
    _available.set((time.monotonic(), ok))
    return ok


def forget_availability() -> None:
    """Ask Janus again next time (after a request to it failed)."""
    _available.discard()


async def ensure_room(*, room_id: int, capacity: int) -> None:
    """Create Janus room `room_id` unless it exists (427 is success: a race, or a retry)."""
    creds = room_credentials(key=settings.JANUS_ADMIN_KEY, room=room_id)
    handle = await admin()
    try:
        await handle.create_room(
            room=room_id, secret=creds.secret, pin=creds.pin, publishers=capacity
        )
    except PluginError as err:
        if err.code != ERROR_ROOM_EXISTS:
            raise


async def kick(*, room_id: int, feed_id: int) -> bool:
    """Remove feed `feed_id` from the room if it is there; whether it was."""
    creds = room_credentials(key=settings.JANUS_ADMIN_KEY, room=room_id)
    handle = await admin()
    try:
        await handle.kick(room=room_id, secret=creds.secret, feed_id=feed_id)
    except PluginError as err:
        if err.code in (ERROR_NO_SUCH_FEED, ERROR_NO_SUCH_ROOM):
            return False
        raise
    return True


async def destroy(*, room_id: int) -> bool:
    """Destroy Janus room `room_id` (everyone in it hears `destroyed`); whether it existed."""
    creds = room_credentials(key=settings.JANUS_ADMIN_KEY, room=room_id)
    handle = await admin()
    try:
        await handle.destroy_room(room=room_id, secret=creds.secret)
    except PluginError as err:
        if err.code == ERROR_NO_SUCH_ROOM:
            return False
        raise
    return True


async def participants(*, room_id: int) -> list[dict[str, Any]]:
    """Janus' own list of who is in the room (`id`, `display`, `publisher`); [] without the room."""
    handle = await admin()
    try:
        return await handle.list_participants(room=room_id)
    except PluginError as err:
        if err.code == ERROR_NO_SUCH_ROOM:
            return []
        raise


async def cleanup(*, room_id: int, feeds: Iterable[int], destroy_room: bool) -> None:
    """What Django decided happens in Janus too (kick, expiry, close, empty room); never raises.

    Every worker gets the event that calls this; the first does the work,
    the others find the feed or room gone already.
    """
    if not configured():
        return
    try:
        if destroy_room:
            await destroy(room_id=room_id)
            return
        for feed_id in feeds:
            await kick(room_id=room_id, feed_id=feed_id)
    except (JanusError, TimeoutError):
        # Janus down or restarted: it holds nothing of the room any more.
        logger.info("sfu: cleanup of room %s not done (Janus unreachable)", room_id)
