"""The signaling side's registry of client message types: each type of the protocol, one handler.

The protocol (rooms/protocol.py) lists the client types with their
validators (`VALIDATORS`) and which need a room (`IN_ROOM_TYPES`); this
module gives each its handler. Adding a client message type is one entry
in `VALIDATORS` and one `@handles(...)` handler in the consumer: `table()`
refuses to build the consumer's dispatch table, and so the process to
start, while a type has no handler (or a handler no type).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from rooms import protocol as p

# The types relayed as they are to one peer of the room (the forwarding hot
# path); the forwarded-messages metric is labelled with them.
RELAYED = (p.OFFER, p.ANSWER, p.CANDIDATE, p.HANDOVER)

Handler = Callable[[Any, dict[str, Any], str | None], Awaitable[None]]


class Registry:
    """Handlers by client message type, collected with `@handles(type, ...)`."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def __call__(self, *types: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for kind in types:
                if kind in self.handlers:
                    raise ImproperlyConfigured(f"two handlers for the {kind!r} message")
                self.handlers[kind] = handler
            return handler

        return register

    def table(self) -> dict[str, Handler]:
        """The dispatch table: exactly the protocol's client types, each with its handler."""
        unhandled = p.VALIDATORS.keys() - self.handlers.keys()
        unknown = self.handlers.keys() - p.VALIDATORS.keys()
        if unhandled or unknown:
            raise ImproperlyConfigured(
                f"client message types without a handler: {sorted(unhandled)};"
                f" handlers without a type in the protocol: {sorted(unknown)}"
            )
        return dict(self.handlers)
