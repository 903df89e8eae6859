"""What each server process does besides serving sockets.

- Renews the presence of the peers whose sockets it holds, in one round trip.
- Sweeps expired peers (of any worker, dead ones included) and tells their
  rooms (`peer-left`, reason `timeout`).
- Watches Redis: when Redis comes back after an outage, every socket of this
  worker is closed with 1012 so its client reconnects and resumes onto fresh
  subscriptions instead of staying silently deaf.
- On SIGTERM, closes every socket with 1012 before the process stops, so
  clients move to another worker and resume there.
- Renews its sockets' entries in the per-account socket registry
  (signaling/connections.py), with the presence.
- Listens on the WORKERS group for accounts whose sessions ended
  (signaling/revocation.py) and closes their sockets here.
- Makes Janus follow Django (`sfu.cleanup` on the WORKERS group: end such a
  person's parked seat, kick a kicked or expired person's feed, destroy a
  closed or emptied room), and lets go of a parked seat another worker
  claimed (`sfu.seat_release`, sfu/parking.py).
- Takes `auto` rooms back to the mesh when their delay has run
  (`room.media_check`), and lets go of their Janus room when the grace has
  (`sfu.release`): every worker keeps the timer, so any one surviving does
  it; the first decides under the room's lock, the others find it done.
- Runs the housekeeping (rooms/housekeeping.py) every `PRUNE_INTERVAL`, one
  worker at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer
from django.conf import settings

from infra.db import db_call
from infra.loopscoped import LoopScoped
from infra.redis import get_redis, ping_redis
from rooms import events, housekeeping, selectors, services
from rooms.protocol import CLOSE_RECONNECT, MEDIA_SFU
from sfu import lifecycle, parking
from signaling import observe
from signaling.connections import get_connections
from signaling.presence import get_presence

if TYPE_CHECKING:
    from signaling.consumer import SignalingConsumer

logger = logging.getLogger(__name__)

# How long a closed socket's consumer waits for its leave (`Worker.finish`),
# well inside daphne's --application-close-timeout (10 s).
FINISH_WAIT = 5.0


class Worker:
    """The per-process (per event loop) companion of the signaling consumers."""

    def __init__(self) -> None:
        self.sockets: set[SignalingConsumer] = set()
        self.by_user: dict[int, set[SignalingConsumer]] = {}
        self.tasks: list[asyncio.Task] = []
        self.listener: asyncio.Task | None = None
        self.listening = asyncio.Event()
        # The channel this worker hears the WORKERS group on.
        self.channel: str | None = None
        # Joins (create, join, resume) in flight here, per account.
        self.joining: dict[int, int] = {}
        self.redis_ok = True
        self.suspects: set[str] = set()
        self.draining = False
        self.all_closed = asyncio.Event()
        # Janus cleanups under way (sfu/lifecycle.py), kept from the collector.
        self.cleanups: set[asyncio.Task] = set()
        # Closed sockets' leaves under way (`finish`).
        self.closings: set[asyncio.Task] = set()
        # Timed room events (`room.media_check`, `sfu.release`), one per kind and room.
        self.timers: dict[tuple[str, int], asyncio.Task] = {}

    # --- Registry -------------------------------------------------------------

    def add(self, consumer: SignalingConsumer) -> None:
        self.sockets.add(consumer)
        self.by_user.setdefault(consumer.user.pk, set()).add(consumer)

    def discard(self, consumer: SignalingConsumer) -> None:
        self.sockets.discard(consumer)
        mine = self.by_user.get(consumer.user.pk)
        if mine is not None:
            mine.discard(consumer)
            if not mine:
                del self.by_user[consumer.user.pk]
        if not self.sockets:
            self.all_closed.set()

    async def finish(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a closed socket's leave to the end; wait for it at most `FINISH_WAIT` seconds.

        daphne cancels an application still running `--application-close-timeout`
        (10 s, transport/server.py) after its socket closed, and logs it. When
        thousands close at once their leaves queue for the database threads
        longer than that (5,000 on one worker: about 15 s), and a leave cut
        short kept its peer in the room, for the others, until the sweeper's
        timeout. So the worker holds the work; the consumer waits for it (in
        the tests and whenever the worker keeps up, a closed socket's steps
        are over when its consumer is), but not past daphne's patience, and
        its cancellation does not reach the work.
        """
        task = asyncio.ensure_future(work)
        self.closings.add(task)
        task.add_done_callback(self.closings.discard)
        await asyncio.wait({task}, timeout=FINISH_WAIT)

    def join_slot(self, user_id: int) -> contextlib.AbstractContextManager[None] | None:
        """Hold one of `user_id`'s JOINS_IN_FLIGHT_PER_USER join slots; None when all are taken."""
        if self.joining.get(user_id, 0) >= settings.JOINS_IN_FLIGHT_PER_USER:
            return None
        self.joining[user_id] = self.joining.get(user_id, 0) + 1
        return self._hold_join_slot(user_id)

    @contextlib.contextmanager
    def _hold_join_slot(self, user_id: int) -> Iterator[None]:
        try:
            yield
        finally:
            left = self.joining[user_id] - 1
            if left:
                self.joining[user_id] = left
            else:
                del self.joining[user_id]

    async def ready(self) -> None:
        """Wait until this worker hears revocations (once per process, at its first socket).

        Bounded: with Redis down the socket is served anyway (it cannot do
        much), and the listener catches up once Redis is back.
        """
        if not self.listening.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await self.listening.wait()

    def local_peer_ids(self) -> list[str]:
        return [c.peer_id for c in self.sockets if c.peer_id is not None]

    # --- Background loops --------------------------------------------------------

    def start(self) -> None:
        self.tasks = [
            asyncio.ensure_future(self._every("PRESENCE_RENEW_INTERVAL", self.renew)),
            asyncio.ensure_future(self._every("PRESENCE_SWEEP_INTERVAL", self.sweep)),
            asyncio.ensure_future(self._every("PRESENCE_TTL", self.reconcile)),
            asyncio.ensure_future(self._every("PRUNE_INTERVAL", self.housekeeping)),
        ]
        self.listen()
        if settings.REDIS_URL:
            self.tasks.append(
                asyncio.ensure_future(self._every("REDIS_CHECK_INTERVAL", self.watch_redis))
            )
        self._install_sigterm()

    async def _every(self, setting: str, step: Any) -> None:
        while True:
            # Read each time round, so a changed setting takes effect (tests shorten them).
            await asyncio.sleep(getattr(settings, setting))
            try:
                await step()
            except Exception:
                observe.worker_failed()
                logger.warning("worker: %s failed", step.__name__, exc_info=True)

    async def renew(self) -> None:
        await get_presence().renew(self.local_peer_ids(), seconds=settings.PRESENCE_TTL)
        await get_connections().renew(
            {user_id: [c.channel_name for c in mine] for user_id, mine in self.by_user.items()}
        )

    # --- Revocations ------------------------------------------------------------------

    def listen(self) -> None:
        """(Re)start listening on the WORKERS group."""
        if self.listener is not None:
            self.listener.cancel()
        self.listening.clear()
        self.listener = asyncio.ensure_future(self._listen())

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
                    event = await layer.receive(self.channel)
                    if event.get("type") == events.USER_REVOKE:
                        await self.revoke(event)
                    elif event.get("type") == events.SFU_CLEANUP:
                        # Not awaited: a slow Janus must not hold up revocations.
                        self.cleanups.add(
                            task := asyncio.ensure_future(
                                parking.cleanup(
                                    room_id=event["room"],
                                    feeds=event["feeds"],
                                    destroy_room=event["destroy"],
                                )
                            )
                        )
                        task.add_done_callback(self.cleanups.discard)
                    elif event.get("type") in (events.MEDIA_CHECK, events.SFU_RELEASE):
                        self.at(event)
                    elif event.get("type") == events.SFU_SEAT_RELEASE:
                        self.cleanups.add(
                            task := asyncio.ensure_future(
                                parking.get_parking().released(
                                    owner=event["owner"],
                                    peer_id=event["peer_id"],
                                    session_id=event["session"],
                                    keep=event["keep"],
                                )
                            )
                        )
                        task.add_done_callback(self.cleanups.discard)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis away: the watch below restarts this once it is back.
                observe.worker_failed()
                logger.warning("worker: lost the WORKERS group; listening again", exc_info=True)
                await asyncio.sleep(1)

    async def revoke(self, event: dict[str, Any]) -> None:
        """Close this worker's sockets of the account (of one session) that the event names."""
        layer = get_channel_layer()
        for consumer in list(self.by_user.get(event["user"], ())):
            if event["session"] is None or consumer.account.session == event["session"]:
                # Into the socket's own queue: handled in order with its frames.
                await layer.send(
                    consumer.channel_name, events.socket_revoked(reason=event["reason"])
                )

    # --- Timed room events -------------------------------------------------------------

    def at(self, event: dict[str, Any]) -> None:
        """Run a timed room event when its time (`at`, UNIX time) comes; a newer one replaces it."""
        key = (event["type"], event["room"])
        previous = self.timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        task = self.timers[key] = asyncio.ensure_future(self._at(event))

        def done(finished: asyncio.Task, key: tuple[str, int] = key) -> None:
            if self.timers.get(key) is finished:
                del self.timers[key]

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
        for consumer in list(self.sockets):
            membership = consumer.membership
            if membership is not None and membership.room_id == room_id and membership.sfu:
                # Into the socket's own queue: handled in order with its frames.
                await layer.send(consumer.channel_name, events.sfu_released(room_id=room_id))
        await lifecycle.cleanup(room_id=room_id, feeds=(), destroy_room=True)

    # --- Housekeeping -----------------------------------------------------------------------

    async def housekeeping(self) -> None:
        redis = get_redis()
        if redis is not None:
            # One worker per interval does it; the others find the key taken.
            key = f"{settings.CHANNEL_LAYER_PREFIX}:housekeeping"
            if not await redis.set(key, "1", nx=True, ex=max(1, settings.PRUNE_INTERVAL - 1)):
                return
        report = await db_call(housekeeping.prune)()
        await events.publish(report.outbox)
        if report.changed:
            logger.info("worker: housekeeping %s", report)

    async def sweep(self) -> None:
        for peer_id in await get_presence().claim_expired():
            await expire_peer(peer_id)

    async def reconcile(self) -> None:
        """Expire peers the database thinks present but presence has never heard of.

        That happens only when Redis lost its data (a restart) while their
        worker was dead. A peer must be missing on two passes in a row: live
        workers re-add theirs within one renew interval.
        """
        active = await db_call(selectors.participants_active_before)(seconds=settings.PRESENCE_TTL)
        local = set(self.local_peer_ids())
        missing = {p for p in await get_presence().missing(active) if p not in local}
        for peer_id in missing & self.suspects:
            await expire_peer(peer_id)
        self.suspects = missing - self.suspects

    async def watch_redis(self) -> None:
        try:
            await ping_redis()
        except Exception:
            observe.redis_unreachable()
            if self.redis_ok:
                logger.error("worker: Redis is unreachable; signaling is down until it returns")
            self.redis_ok = False
            return
        if not self.redis_ok:
            self.redis_ok = True
            logger.warning("worker: Redis is back; reconnecting %d sockets", len(self.sockets))
            await self.close_all()
            # Fresh connections and subscriptions for everyone who comes back.
            await get_channel_layer().flush()
            self.listen()
            await self.renew()

    # --- Closing everything ---------------------------------------------------------

    async def close_all(self) -> None:
        sockets = list(self.sockets)
        for consumer in sockets:
            consumer.detach_on_close = True
            with contextlib.suppress(Exception):
                await consumer.close(code=CLOSE_RECONNECT)

    def _install_sigterm(self) -> None:
        previous = signal.getsignal(signal.SIGTERM)
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: Any) -> None:
            if self.draining:
                return
            self.draining = True
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._drain(previous)))

        if not settings.SIGTERM_DRAIN:
            return
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGTERM, on_sigterm)

    async def _drain(self, previous: Any) -> None:
        logger.warning("worker: SIGTERM, moving %d sockets to other workers", len(self.sockets))
        await self.close_all()
        # Let the close frames leave and the disconnects record the grace period.
        if self.sockets:
            self.all_closed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await self.all_closed.wait()
        if self.closings:
            await asyncio.wait(self.closings, timeout=3)
        if callable(previous):
            previous(signal.SIGTERM, None)
        else:
            signal.raise_signal(signal.SIGINT)


async def expire_peer(peer_id: str) -> None:
    """Announce a peer whose deadline passed, once, wherever its worker was."""
    outbox = await db_call(services.participant_expire)(peer_id=peer_id)
    observe.peer_expired(peer_id, outbox)
    await events.publish(outbox)


def _start_worker() -> Worker:
    worker = Worker()
    worker.start()
    return worker


_workers: LoopScoped[Worker] = LoopScoped(_start_worker)


def all_workers() -> list[Worker]:
    """This process's workers (one per event loop; daphne runs one loop)."""
    return _workers.values()


def get_worker() -> Worker:
    """The running loop's worker, started on first use."""
    return _workers.get()
