from django.core.management.base import BaseCommand

from rooms.events import publish_on_commit
from rooms.services.housekeeping import prune


class Command(BaseCommand):
    help = (
        "Close rooms empty for EMPTY_ROOM_CLOSE_AFTER, delete chat older than "
        "CHAT_RETENTION_DAYS, delete the call history older than CALL_HISTORY_RETENTION_DAYS "
        "and clear expired sessions (the workers also do this "
        "every PRUNE_INTERVAL)."
    )

    def handle(self, *args, **options) -> None:
        report = prune()
        publish_on_commit(report.outbox)
        self.stdout.write(
            f"closed {report.rooms_closed} idle rooms, deleted {report.chat_deleted} chat lines, "
            f"{report.participants_deleted} participants of the call history "
            f"and {report.sessions_deleted} expired sessions"
        )
