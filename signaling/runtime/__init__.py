"""What each server process does besides serving sockets: its worker, one per event loop.

The jobs, one module each:

- registry.py: the worker's sockets, by account, and the leaves of closed
  ones still under way;
- joins.py: joins in flight per account;
- sweeper.py: presence renewed, expired peers swept, lost ones reconciled,
  the housekeeping;
- group.py: the workers' group (revocations, Janus cleanups, parked seats
  claimed elsewhere, timed room events);
- timers.py: those timed room events;
- redis_watch.py: every socket starts afresh when Redis comes back;
- drain.py: on SIGTERM every socket moves to another worker.

`worker.py` puts them together and keeps the per-loop instance:
`get_worker()` and `all_workers()` are imported from here.
"""

from signaling.runtime.worker import Worker, all_workers, get_worker

__all__ = ["Worker", "all_workers", "get_worker"]
