"""Timed room events: `auto` rooms back to the mesh, their Janus room let go after the grace.

`room.media_check` takes an `auto` room back to the mesh when its delay has
run; `sfu.release` lets go of its Janus room when the grace has. Every
worker keeps the timer, so any one surviving does it; the first decides
under the room's lock, the others find it done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.layers import get_channel_layer

from infra.db import db_call
from rooms import events, selectors, services
from rooms.protocol import MEDIA_SFU
from sfu import lifecycle
from signaling import observe
from signaling.runtime.registry import Registry

# The name the worker logged under before its jobs were split: what log filters know.
logger = logging.getLogger("signaling.worker")


class Timers:
    """One pending timed event per kind and room; a newer one replaces it."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.pending: dict[tuple[str, int], asyncio.Task] = {}

    def at(self, event: dict[str, Any]) -> None:
        """Run a timed room event when its time (`at`, UNIX time) comes; a newer one replaces it."""
        key = (event["type"], event["room"])
        previous = self.pending.pop(key, None)
        if previous is not None:
            previous.cancel()
        task = self.pending[key] = asyncio.ensure_future(self._at(event))

        def done(finished: asyncio.Task, key: tuple[str, int] = key) -> None:
            if self.pending.get(key) is finished:
                del self.pending[key]

        task.add_done_callback(done)

    async def _at(self, event: dict[str, Any]) -> None:
        await asyncio.sleep(max(0.0, event["at"] - time.time()))
        try:
            if event["type"] == events.MEDIA_CHECK:
                outbox = await db_call(services.room_media_return)(room_id=event["room"])
                await events.publish(outbox)
            else:
                await self.release_sfu(event["room"])
        except Exception:
            observe.worker_failed()
            logger.warning(
                "worker: %s of room %s failed", event["type"], event["room"], exc_info=True
            )

    async def release_sfu(self, room_id: int) -> None:
        """The grace of a room back on the mesh is over: its seats here close, its Janus room goes.

        Not when it is on the SFU again (grown past MESH_MAX_PEERS, or pinned):
        its Janus room is in use.
        """
        if await db_call(selectors.room_media)(room_id=room_id) == MEDIA_SFU:
            return
        layer = get_channel_layer()
        for socket in self.registry.in_room(room_id):
            if socket.membership.sfu:
                # Into the socket's own queue: handled in order with its frames.
                await layer.send(socket.channel_name, events.sfu_released(room_id=room_id))
        await lifecycle.cleanup(room_id=room_id, feeds=(), destroy_room=True)
