"""The worker: the runtime's jobs (signaling/runtime/) started together, one per event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings

from infra.loopscoped import LoopScoped
from infra.metrics import gauge_from
from signaling import metrics, observe
from signaling.membership import Membership
from signaling.runtime.drain import Drain
from signaling.runtime.group import GroupListener
from signaling.runtime.joins import JoinSlots
from signaling.runtime.redis_watch import RedisWatch
from signaling.runtime.registry import Registry
from signaling.runtime.sweeper import Reconciler, housekeeping, renew, sweep
from signaling.runtime.timers import Timers
from signaling.socket import Socket

# The name the worker logged under before its jobs were split: what log filters know.
logger = logging.getLogger("signaling.worker")


class Worker:
    """The per-process (per event loop) companion of the signaling sockets."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.join_slots = JoinSlots()
        self.timers = Timers(self.registry)
        self.group = GroupListener(self.registry, self.timers)
        self.reconciler = Reconciler(self.registry)
        self.redis = RedisWatch(self.registry, listen=self.group.listen, renew=self.renew)
        self.drain = Drain(self.registry)
        self.tasks: list[asyncio.Task] = []

    # What the sockets and the tests use, in one place.

    @property
    def sockets(self) -> set[Socket]:
        return self.registry.sockets

    def add(self, socket: Socket) -> None:
        self.registry.add(socket)

    def discard(self, socket: Socket) -> None:
        self.registry.discard(socket)

    async def ready(self) -> None:
        await self.group.ready()

    async def renew(self) -> None:
        await renew(self.registry)

    async def release_sfu(self, room_id: int) -> None:
        await self.timers.release_sfu(room_id)

    def start(self) -> None:
        self.tasks = [
            self._every("PRESENCE_RENEW_INTERVAL", self.renew),
            self._every("PRESENCE_SWEEP_INTERVAL", sweep),
            self._every("PRESENCE_TTL", self.reconciler.reconcile),
            self._every("PRUNE_INTERVAL", housekeeping),
        ]
        self.group.listen()
        if settings.REDIS_URL:
            self.tasks.append(self._every("REDIS_CHECK_INTERVAL", self.redis.check))
        self.drain.install()

    def _every(self, setting: str, step: Callable[[], Awaitable[None]]) -> asyncio.Task:
        return asyncio.ensure_future(self._loop(setting, step))

    async def _loop(self, setting: str, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            # Read each time round, so a changed setting takes effect (tests shorten them).
            await asyncio.sleep(getattr(settings, setting))
            try:
                await step()
            except Exception:
                observe.worker_failed()
                logger.warning("worker: %s failed", step.__name__, exc_info=True)


def _start_worker() -> Worker:
    worker = Worker()
    worker.start()
    return worker


_workers: LoopScoped[Worker] = LoopScoped(_start_worker)


def all_workers() -> list[Worker]:
    """This process's workers (one per event loop; daphne runs one loop)."""
    return _workers.values()


def get_worker() -> Worker:
    """The running loop's worker, started at its first use."""
    return _workers.get()


# --- The per-worker gauges (signaling/metrics.py), read at scrape time from the registries -----


def _memberships() -> list[Membership]:
    return [
        s.membership for w in all_workers() for s in list(w.sockets) if s.membership is not None
    ]


def _sockets_open() -> float:
    return sum(len(w.sockets) for w in all_workers())


def _peers() -> float:
    return len(_memberships())


def _rooms_counted_here() -> float:
    # Each room is counted by the worker holding its lowest peer id (every
    # membership knows all its room's peers), so sum() over workers counts it
    # once. While that peer's socket is away (its resume grace) nobody counts it.
    return sum(1 for m in _memberships() if not m.peers or m.peer_id < min(m.peers))


gauge_from(metrics.SOCKETS_OPEN, _sockets_open)
gauge_from(metrics.PEERS, _peers)
gauge_from(metrics.ROOMS_OCCUPIED, _rooms_counted_here)
