"""Print a long-lived TURN credential for Janus itself (JANUS_TURN_USER, JANUS_TURN_PWD).

coturn runs with use-auth-secret, so it only accepts TURN REST credentials:
"<unix expiry>:<name>" signed with TURN_SECRET (accounts/ice.py signs the
browsers' the same way). Janus reads one static credential when it starts
and keeps using it, also to refresh its allocations, so the credential must
outlive Janus' uptime: restart Janus with a fresh one before it expires
(docs/sfu.md, "TURN for Janus"). The secret stays in this process; only the
derived password is printed.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.ice import turn_password


class Command(BaseCommand):
    help = "Print JANUS_TURN_USER and JANUS_TURN_PWD lines for .env, signed with TURN_SECRET."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="validity (default 30)")
        parser.add_argument("--name", default="janus", help="name after the expiry (default janus)")

    def handle(self, *args: object, days: int, name: str, **options: object) -> None:
        if not settings.TURN_SECRET:
            raise CommandError("TURN_SECRET is not set")
        if days < 1 or not name.isalnum():
            raise CommandError("--days must be at least 1 and --name letters and digits only")
        username = f"{int(time.time()) + days * 86400}:{name}"
        password = turn_password(secret=settings.TURN_SECRET, username=username)
        self.stdout.write(f"JANUS_TURN_USER={username}\nJANUS_TURN_PWD={password}\n")
