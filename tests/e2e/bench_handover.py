"""The mesh-to-SFU handover, step by step, over repeated runs: where its seconds go.

Not part of the default browser suite (its name does not start with test_);
run it on purpose, inside the loopback-only namespace:

    HANDOVER_RUNS=10 tests/e2e/run tests/e2e/bench_handover.py

Each run: four people in an `auto` room call directly, a fifth presses Join.
Every page keeps a timeline of its socket's messages and its connections'
states (tests/e2e/instrument.js); the times below are from the fifth person's
press of Join, on one clock (each page's `performance.timeOrigin`). It prints
one FIGURE line per step with the median and the 95th percentile (nearest
rank) over the runs; docs/sfu.md ("The handover, step by step") quotes them.
"""

from __future__ import annotations

import math
import os
import statistics
import time

import pytest

from tests.e2e.conftest import Person
from tests.e2e.test_sfu_calls import enter_all, figure, sfu_connections_only

pytestmark = pytest.mark.e2e

RUNS = int(os.environ.get("HANDOVER_RUNS", "10"))


def timeline(person: Person) -> tuple[float, list[list]]:
    origin, events = person.page.evaluate("() => [performance.timeOrigin, window.__e2e.timeline()]")
    return origin, events


def first_at(person: Person, t0: float, match) -> float | None:
    """When (ms after t0, on the shared clock) the page's first event matching `match` happened."""
    origin, events = timeline(person)
    for event in events:
        if match(event):
            return origin + event[0] - t0
    return None


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def one_run(people, sfu, run: int) -> dict[str, float]:
    names = ["alice", "bob", "carol", "dave"]
    owner = people(names[0], base_url=sfu.main[0])
    number = owner.create_room(name=f"Handover {run}", capacity=8)
    owner.press_join()
    owner.wait_in_call()
    first = [owner] + [people(n, base_url=sfu.main[i % 2]) for i, n in enumerate(names[1:])]
    enter_all(number, first[1:])
    for person in first:
        person.wait_remote_videos(3, timeout=40)
    newcomer = people("erin", base_url=sfu.main[1])
    newcomer.open_room(number)
    newcomer.page.evaluate("() => window.__e2e.watchFirstFrames()")
    t0 = newcomer.page.evaluate("() => performance.timeOrigin + performance.now()")
    newcomer.press_join()
    newcomer.wait_in_call()
    everyone = [*first, newcomer]
    for person in everyone:
        person.wait_remote_videos(4, timeout=60)
    deadline = time.monotonic() + 60
    while not all(sfu_connections_only(p) for p in everyone):
        assert time.monotonic() < deadline, "direct links still open after 60 s"
        time.sleep(0.2)
    closed_at = time.time() * 1000 - t0

    def connected(role):
        return lambda e: e[1] == "connection" and e[3] == role and e[4] == "connected"

    steps: dict[str, float] = {}
    steps["decision: the others told (room-updated)"] = max(
        first_at(p, t0, lambda e: e[1] == "received" and e[2] == "room-updated") for p in first
    )
    steps["the others publishing (SFU publisher connected)"] = max(
        first_at(p, t0, connected("sfu-publisher")) for p in first
    )
    steps["newcomer's receiving connection up"] = first_at(
        newcomer, t0, connected("sfu-subscriber")
    )
    origin = newcomer.page.evaluate("() => performance.timeOrigin")
    frames = newcomer.page.evaluate("window.__e2e.firstFrames()")
    steps["newcomer: first frame of the first peer"] = origin + min(frames.values()) - t0
    steps["newcomer: first frame of every peer"] = origin + max(frames.values()) - t0
    steps["the others' receiving connections up"] = max(
        first_at(p, t0, connected("sfu-subscriber")) for p in first
    )
    steps["every direct link closed"] = closed_at
    if os.environ.get("HANDOVER_DUMP"):
        import json

        dump = {}
        for person in everyone:
            origin, events = timeline(person)
            dump[person.username] = [[round(origin + e[0] - t0), *e[1:]] for e in events]
        with open(f"{os.environ['HANDOVER_DUMP']}.{run}", "w") as f:
            json.dump(dump, f)
    for person in everyone:
        person.page.get_by_test_id("leave").click()
        person.context.close()
    return steps


def test_handover_step_timings(people, sfu, capsys):
    """Run the handover RUNS times; print each step's p50 and p95 (ms after the fifth's Join)."""
    runs = [one_run(people, sfu, run) for run in range(RUNS)]
    for step in runs[0]:
        values = [r[step] for r in runs]
        figure(
            capsys,
            f"FIGURE handover step, {step}: p50 {statistics.median(values):.0f} ms,"
            f" p95 {nearest_rank(values, 0.95):.0f} ms over {RUNS} runs"
            f" (all: {sorted(round(v) for v in values)})",
        )
