"""infra/loopscoped.py: one value per event loop, made once per loop."""

from __future__ import annotations

import asyncio

import pytest

from infra.loopscoped import LoopScoped


def test_each_loop_gets_its_own_value_made_once():
    """A loop asking twice gets the same value; another loop gets a new one; all are listed."""
    made = []

    def factory() -> list[int]:
        made.append(len(made))
        return [len(made)]

    scoped = LoopScoped(factory)

    async def twice() -> tuple[list[int], list[int]]:
        return scoped.get(), scoped.get()

    first, again = asyncio.run(twice())
    assert first is again
    other, _ = asyncio.run(twice())
    assert other is not first
    assert (made, scoped.values()) == ([0, 1], [[1], [2]])


async def test_peek_set_and_discard_touch_the_running_loop_only():
    """Without a factory nothing is made: peek is None until set, and None again once discarded."""
    scoped: LoopScoped[str] = LoopScoped()
    assert scoped.peek() is None
    with pytest.raises(LookupError):
        scoped.get()
    scoped.set("here")
    assert (scoped.peek(), scoped.get()) == ("here", "here")
    scoped.discard()
    assert scoped.peek() is None


def test_discard_outside_a_loop_does_nothing():
    """With no running loop there is nothing to forget (a sync caller after a failed request)."""
    LoopScoped().discard()
