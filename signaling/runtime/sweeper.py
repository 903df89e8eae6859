"""Presence kept honest: renew this worker's peers, expire everyone's dead ones, housekeeping.

- `renew`: the presence of the peers whose sockets this worker holds, and
  their entries in the per-account socket registry (signaling/connections.py),
  in one round trip each.
- `sweep`: peers whose deadline passed (of any worker, dead ones included)
  are expired and their rooms told (`peer-left`, reason `timeout`).
- `Reconciler`: peers the database thinks present but presence never heard of.
- `housekeeping` (rooms/services/housekeeping.py) every `PRUNE_INTERVAL`, one worker at a time.
"""

from __future__ import annotations

import logging

from django.conf import settings

from infra.db import db_call
from infra.redis import get_redis
from rooms import events, selectors, services
from rooms.services import housekeeping as rooms_housekeeping
from signaling import observe
from signaling.connections import get_connections
from signaling.presence import get_presence
from signaling.runtime.registry import Registry

# The name the worker logged under before its jobs were split: what log filters know.
logger = logging.getLogger("signaling.worker")


async def renew(registry: Registry) -> None:
    await get_presence().renew(registry.local_peer_ids(), seconds=settings.PRESENCE_TTL)
    await get_connections().renew(registry.channels_by_user())


async def sweep() -> None:
    for peer_id in await get_presence().claim_expired():
        await expire_peer(peer_id)


async def expire_peer(peer_id: str) -> None:
    """Announce a peer whose deadline passed, once, wherever its worker was."""
    outbox = await db_call(services.participant_expire)(peer_id=peer_id)
    observe.peer_expired(peer_id, outbox)
    await events.publish(outbox)


class Reconciler:
    """Expire peers the database thinks present but presence has never heard of.

    That happens only when Redis lost its data (a restart) while their
    worker was dead. A peer must be missing on two passes in a row: live
    workers re-add theirs within one renew interval.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.suspects: set[str] = set()

    async def reconcile(self) -> None:
        active = await db_call(selectors.participants_active_before)(seconds=settings.PRESENCE_TTL)
        local = set(self.registry.local_peer_ids())
        missing = {p for p in await get_presence().missing(active) if p not in local}
        for peer_id in missing & self.suspects:
            await expire_peer(peer_id)
        self.suspects = missing - self.suspects


async def housekeeping() -> None:
    redis = get_redis()
    if redis is not None:
        # One worker per interval does it; the others find the key taken.
        key = f"{settings.CHANNEL_LAYER_PREFIX}:housekeeping"
        if not await redis.set(key, "1", nx=True, ex=max(1, settings.PRUNE_INTERVAL - 1)):
            return
    report = await db_call(rooms_housekeeping.prune)()
    await events.publish(report.outbox)
    if report.changed:
        logger.info("worker: housekeeping %s", report)
