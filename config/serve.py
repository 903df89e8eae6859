"""The launcher: `python -m config.serve -b HOST -p PORT [daphne options]`, one daphne worker.

This is how every server of the project starts: `make run`, deploy/entrypoint,
the tests (browser tests included), the benchmark. It checks the releases
transport/ was written for, installs transport/'s server patches, runs
Django's system checks (the SFU's settings among them: sfu/checks.py), arms
the warm-up and hands over to daphne with the project's flags. So these hold
everywhere:

- WebSocket messages over twice SIGNALING_MAX_MESSAGE_BYTES are cut off by
  daphne itself (close 1009) before they are buffered whole; between the two
  limits the consumer answers `too-large` and the socket stays open.
- WebSocket pings every 20 s, and a socket that does not answer within 30 s is
  closed, so a dead client is noticed and gets its resume grace period.
- A socket that stops reading is closed with the protocol's 4408 once
  SOCKET_SEND_BUFFER_MAX bytes wait for it (transport/patches.py).
- `--proxy-headers` when BEHIND_PROXY is set: the client address comes from
  the proxy's X-Forwarded-For (only the proxy can reach the workers).
- A setting that system checks refuse stops the worker before it serves.
- The worker warms up (config/warmup.py) as soon as the loop runs, and
  `/readyz` says ready only once it has.
"""

from __future__ import annotations

import os
import sys

from transport import patches
from transport.versions import check_all


def daphne_args(argv: list[str]) -> list[str]:
    """Return daphne's command line: the project's flags, then `argv`, then the ASGI app."""
    from django.conf import settings

    args = [
        "--websocket-max-message-size",
        str(2 * settings.SIGNALING_MAX_MESSAGE_BYTES),
        "--ping-interval",
        "20",
        "--ping-timeout",
        "30",
        "--application-close-timeout",
        "10",
    ]
    if settings.BEHIND_PROXY:
        args.append("--proxy-headers")
    return [*args, *argv, "config.asgi:application"]


def run_system_checks() -> None:
    """Set Django up and run its system checks; exit naming every error, as `manage.py check` does.

    daphne's own command line runs none, and a worker must not serve with a
    setting the checks refuse (an SFU without its secrets, say).
    """
    import django
    from django.core.management.base import BaseCommand, SystemCheckError

    django.setup()
    try:
        BaseCommand().check()
    except SystemCheckError as error:
        sys.exit(str(error).rstrip())


def start_warm_up() -> None:
    """Arm config.warmup and start it on the loop once the reactor runs (after daphne's setup)."""
    from twisted.internet import reactor

    from config import warmup

    warmup.arm()
    # callLater from the startup trigger: the warm-up starts inside the running loop.
    reactor.callWhenRunning(reactor.callLater, 0, warmup.start)


def serve(argv: list[str] | None = None) -> None:
    """Check the releases, install the patches, run the checks, then daphne with our flags."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    from rooms.protocol import CLOSE_NOT_READING

    check_all()
    # Before daphne is imported: importing it installs the reactor on a new loop.
    patches.use_uvloop()
    patches.patch_daphne(
        send_buffer_max=settings.SOCKET_SEND_BUFFER_MAX, not_reading_close=CLOSE_NOT_READING
    )
    patches.patch_twisted_writes()
    run_system_checks()
    start_warm_up()
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(daphne_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    serve()
