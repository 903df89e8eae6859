"""The workers' group (`events.WORKERS_GROUP`): what one worker asks of all.

- `user.revoke`: an account's sessions ended (signaling/revocation.py): its
  sockets here are told, through their own channel.
- `sfu.cleanup`: Janus follows Django (end such a person's parked seat, kick
  a kicked or expired person's feed, destroy a closed or emptied room).
- `sfu.seat_release`: let go of a parked seat another worker claimed
  (sfu/parking.py).
- `room.media_check`, `sfu.release`: timed room events (runtime/timers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.layers import get_channel_layer

from rooms import events
from sfu import parking
from signaling import observe
from signaling.runtime.registry import Registry
from signaling.runtime.timers import Timers

# The name the worker logged under before its jobs were split: what log filters know.
logger = logging.getLogger("signaling.worker")


class GroupListener:
    """This worker's ear on the WORKERS group; restarted when Redis comes back."""

    def __init__(self, registry: Registry, timers: Timers) -> None:
        self.registry = registry
        self.timers = timers
        self.task: asyncio.Task | None = None
        self.listening = asyncio.Event()
        # The channel this worker hears the WORKERS group on.
        self.channel: str | None = None
        # Janus cleanups under way (sfu/lifecycle.py), kept from the collector.
        self.cleanups: set[asyncio.Task] = set()

    def listen(self) -> None:
        """(Re)start listening on the WORKERS group."""
        if self.task is not None:
            self.task.cancel()
        self.listening.clear()
        self.task = asyncio.ensure_future(self._listen())

    async def ready(self) -> None:
        """Wait until this worker hears revocations (once per process, at its first socket).

        Bounded: with Redis down the socket is served anyway (it cannot do
        much), and the listener catches up once Redis is back.
        """
        if not self.listening.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await self.listening.wait()

    async def _listen(self) -> None:
        layer = get_channel_layer()
        while True:
            try:
                # The default prefix, like every other channel of the process:
                # channels_redis' core layer keeps a process's channels in one
                # Redis list per prefix and serves all its receive()s through one
                # blocking pop, on the list of whoever holds its lock, so a
                # channel named otherwise stalls the sockets' channels while it
                # waits (up to 5 s per turn: messages queued, then ChannelFull).
                self.channel = await layer.new_channel()
                await layer.group_add(events.WORKERS_GROUP, self.channel)
                self.listening.set()
                while True:
                    await self.heard(await layer.receive(self.channel))
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis away: the watch restarts this once it is back.
                observe.worker_failed()
                logger.warning("worker: lost the WORKERS group; listening again", exc_info=True)
                await asyncio.sleep(1)

    async def heard(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == events.USER_REVOKE:
            await self.revoke(event)
        elif kind == events.SFU_CLEANUP:
            # Not awaited: a slow Janus must not hold up revocations.
            self._aside(
                parking.cleanup(
                    room_id=event["room"], feeds=event["feeds"], destroy_room=event["destroy"]
                )
            )
        elif kind in (events.MEDIA_CHECK, events.SFU_RELEASE):
            self.timers.at(event)
        elif kind == events.SFU_SEAT_RELEASE:
            self._aside(
                parking.get_parking().released(
                    owner=event["owner"],
                    peer_id=event["peer_id"],
                    session_id=event["session"],
                    keep=event["keep"],
                )
            )

    def _aside(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.cleanups.add(task)
        task.add_done_callback(self.cleanups.discard)

    async def revoke(self, event: dict[str, Any]) -> None:
        """Close this worker's sockets of the account (of one session) that the event names."""
        layer = get_channel_layer()
        for socket in self.registry.of_user(event["user"], session=event["session"]):
            # Into the socket's own queue: handled in order with its frames.
            await layer.send(socket.channel_name, events.socket_revoked(reason=event["reason"]))
