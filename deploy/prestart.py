"""Prepare the database before a web worker starts (run by deploy/entrypoint).

1. Wait until the database answers (compose starts it first, but "healthy"
   is not "accepting this user's connections" on every restart).
2. Migrate, holding a PostgreSQL advisory lock: replicas that start together
   queue on the lock; the first applies the migrations, the others then find
   nothing to do. `MIGRATE_ON_START=false` skips this (for deployments that
   migrate in a release step of their own).
3. Create the admin account from DJANGO_SUPERUSER_USERNAME / _PASSWORD
   (/ _EMAIL) when both are set and no such user exists yet. An existing
   user is never changed, so a password changed in the admin stays changed.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections  # noqa: E402

log = logging.getLogger("deploy.prestart")

# Any constant works as long as nothing else in the database uses it: the
# bytes of "vroommig".
MIGRATION_LOCK_ID = int.from_bytes(b"vroommig", "big") & 0x7FFF_FFFF_FFFF_FFFF


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in {"1", "true", "yes", "on"}


def wait_for_database(timeout: float) -> None:
    """Return once a query succeeds; exit non-zero after `timeout` seconds."""
    connection = connections[DEFAULT_DB_ALIAS]
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return
        except OperationalError as exc:
            connection.close()
            if time.monotonic() >= deadline:
                log.error("database still unreachable after %.0fs: %s", timeout, exc)
                raise SystemExit(1) from exc
            if attempt == 1 or attempt % 10 == 0:
                log.info("waiting for the database: %s", str(exc).strip().splitlines()[0])
            time.sleep(1)


@contextmanager
def migration_lock() -> Iterator[None]:
    """Hold a cluster-wide lock while migrating (PostgreSQL; a no-op elsewhere).

    The lock lives on its own connection, so nothing Django does to its own
    connection during `migrate` can release it early, and it goes away with
    the connection if this process dies.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        yield
        return
    lock_conn = connection.get_new_connection(connection.get_connection_params())
    try:
        lock_conn.autocommit = True
        with lock_conn.cursor() as cursor:
            log.info("waiting for the migration lock")
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_ID])
        try:
            yield
        finally:
            with lock_conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_ID])
    finally:
        lock_conn.close()


def ensure_superuser() -> None:
    username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
    password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
    if not username or not password:
        return
    user_model = get_user_model()
    if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
        return
    email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip()
    user_model._default_manager.create_superuser(username=username, email=email, password=password)
    log.info("created the admin user %r", username)


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    wait_for_database(float(os.environ.get("DATABASE_WAIT_SECONDS", "60")))
    with migration_lock():
        if env_bool("MIGRATE_ON_START", True):
            call_command("migrate", interactive=False, verbosity=1)
        ensure_superuser()
    connections.close_all()


if __name__ == "__main__":
    main()
