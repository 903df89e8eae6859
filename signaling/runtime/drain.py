"""Moving every socket elsewhere: on SIGTERM, and when Redis comes back after an outage.

Each socket is closed with 1012 and its seat kept for the grace period, so
its client reconnects (to another worker, or here with fresh
subscriptions) and resumes as the same peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from django.conf import settings

from signaling.runtime.registry import Registry

# The name the worker logged under before its jobs were split: what log filters know.
logger = logging.getLogger("signaling.worker")


async def close_all(registry: Registry) -> None:
    for socket in list(registry.sockets):
        with contextlib.suppress(Exception):
            await socket.reconnect()


class Drain:
    """On SIGTERM, close every socket with 1012 first; then let the process stop."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.draining = False

    def install(self) -> None:
        if not settings.SIGTERM_DRAIN:
            return
        previous = signal.getsignal(signal.SIGTERM)
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: Any) -> None:
            if self.draining:
                return
            self.draining = True
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.drain(previous)))

        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGTERM, on_sigterm)

    async def drain(self, previous: Any) -> None:
        registry = self.registry
        logger.warning("worker: SIGTERM, moving %d sockets to other workers", len(registry.sockets))
        await close_all(registry)
        # Let the close frames leave and the disconnects record the grace period.
        if registry.sockets:
            registry.all_closed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await registry.all_closed.wait()
        if registry.closings:
            await asyncio.wait(registry.closings, timeout=3)
        if callable(previous):
            previous(signal.SIGTERM, None)
        else:
            signal.raise_signal(signal.SIGINT)
