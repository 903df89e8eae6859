"""The project's own shared infrastructure, used by every app: not a Django app.

- `infra.db`: database calls from async code, on a fixed set of threads.
- `infra.redis`: the Redis clients (one asyncio client per event loop, one
  synchronous pool per process).
- `infra.cache`: the one connection pool Django's cache shares.
- `infra.counters`: windowed counters shared by every worker (rate caps).
- `infra.process`: this process's name among the workers.

What touches a dependency's private names is not here but in `transport/`.
"""
