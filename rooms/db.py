"""Database work from async code (the consumer, the worker loops)."""

from channels.db import database_sync_to_async

# Thread-sensitive, as Channels defaults: every call runs on the worker's one
# thread for synchronous code, with connections from psycopg's pool on
# PostgreSQL. Running them on free pool threads (for parallel joins) was tried
# and left pooled connections checked out when calls were cut short, until the
# pool ran dry; see docs/benchmarks.md for what joins cost as it is.
db_call = database_sync_to_async
