"""One value per running event loop: the registry behind every per-loop singleton.

Redis and Janus clients, the presence store, the socket registry, the worker
and the SFU's seats all belong to one event loop: an asyncio connection or
task cannot be used from another loop, and the test suite runs a new loop for
every test, while daphne runs one loop per process. Each of them is a
`LoopScoped`: made on first use by the running loop, found again by it.

Values are held for as long as the process lives, as the hand-made dicts
before were: a loop's connections are closed by whoever owns them, not here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LoopScoped(Generic[T]):
    """A value per event loop, made by `factory` the first time a loop asks for it."""

    def __init__(self, factory: Callable[[], T] | None = None) -> None:
        self._factory = factory
        self._values: dict[asyncio.AbstractEventLoop, T] = {}

    def get(self) -> T:
        """Return the running loop's value, made by the factory when the loop has none yet."""
        loop = asyncio.get_running_loop()
        try:
            return self._values[loop]
        except KeyError:
            if self._factory is None:
                raise LookupError("no value for this loop and no factory to make one") from None
        # The factory is synchronous, so no other task of the loop can make a second one.
        value = self._values[loop] = self._factory()
        return value

    def peek(self) -> T | None:
        """Return the running loop's value, or None when it has none (nothing is made)."""
        return self._values.get(asyncio.get_running_loop())

    def set(self, value: T) -> None:
        """Make `value` the running loop's value."""
        self._values[asyncio.get_running_loop()] = value

    def discard(self) -> None:
        """Forget the running loop's value, if any; outside a loop there is none to forget."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._values.pop(loop, None)

    def values(self) -> list[T]:
        """Return every loop's value (this process's, one per loop that asked)."""
        return list(self._values.values())
