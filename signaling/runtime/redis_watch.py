"""The watch on Redis: after an outage every socket of this worker starts afresh.

When Redis comes back, every socket here is closed with 1012 so its client
reconnects and resumes onto fresh subscriptions instead of staying silently
deaf; the workers' group is joined again and presence renewed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer

from infra.redis import ping_redis
from signaling import observe
from signaling.runtime.drain import close_all
from signaling.runtime.registry import Registry

# The name the worker logged under before its jobs were split: what log filters know.
logger = logging.getLogger("signaling.worker")


class RedisWatch:
    """Whether Redis answered the last check; what to redo when it answers again."""

    def __init__(
        self,
        registry: Registry,
        *,
        listen: Callable[[], None],
        renew: Callable[[], Awaitable[None]],
    ) -> None:
        self.registry = registry
        self.listen = listen
        self.renew = renew
        self.ok = True

    async def check(self) -> None:
        try:
            await ping_redis()
        except Exception:
            observe.redis_unreachable()
            if self.ok:
                logger.error("worker: Redis is unreachable; signaling is down until it returns")
            self.ok = False
            return
        if not self.ok:
            self.ok = True
            logger.warning(
                "worker: Redis is back; reconnecting %d sockets", len(self.registry.sockets)
            )
            await close_all(self.registry)
            # Fresh connections and subscriptions for everyone who comes back.
            await get_channel_layer().flush()
            self.listen()
            await self.renew()
