"""Mesh vs SFU in a room of six: each browser's upload, encoded frames and CPU.

Not part of the default browser suite (its name does not start with test_:
six people in a mesh need more CPU than a shared CI machine reliably has);
run it on purpose, inside the loopback-only namespace:

    tests/e2e/run tests/e2e/bench_sfu.py

It prints FIGURE lines; docs/benchmarks.md ("Tuning history") quotes them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Person
from tests.e2e.test_sfu_calls import enter_all, figure

pytestmark = pytest.mark.e2e


def descendant_cpu_seconds(name_prefix: str = "chrom") -> float:
    """CPU time (user + system, s) of this process' descendants named like Chromium's."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    stats: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        stats[int(entry)] = (comm, (int(fields[11]) + int(fields[12])) / ticks)
    me = os.getpid()

    def mine(pid: int) -> bool:
        while pid > 1:
            if pid == me:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(
        cpu for pid, (comm, cpu) in stats.items() if comm.startswith(name_prefix) and mine(pid)
    )


def bytes_sent(person: Person) -> int:
    return person.page.evaluate(
        """async () => {
            let total = 0;
            for (const pc of window.__e2e.connections()) {
                (await pc.getStats()).forEach((s) => {
                    if (s.type === 'outbound-rtp') total += s.bytesSent || 0;
                });
            }
            return total;
        }"""
    )


def encoding(person: Person) -> dict:
    """The page's outbound video now: frames encoded so far, and each stream's width and limit."""
    return person.page.evaluate(
        """async () => {
            let frames = 0;
            const streams = [];
            for (const pc of window.__e2e.connections()) {
                (await pc.getStats()).forEach((s) => {
                    if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
                    frames += s.framesEncoded || 0;
                    if (s.frameWidth) streams.push([s.frameWidth, s.qualityLimitationReason]);
                });
            }
            return { frames, streams };
        }"""
    )


def measure(everyone: list[Person], seconds: float = 15) -> dict:
    """Per browser over `seconds`: upload (kbit/s), video frames encoded per second, the
    streams it sends (width, what limits them); Chromium's CPU per browser (% of a core)."""
    sent = [bytes_sent(p) for p in everyone]
    encoded = [encoding(p)["frames"] for p in everyone]
    cpu, began = descendant_cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - began
    cpu_used = descendant_cpu_seconds() - cpu
    after = [encoding(p) for p in everyone]
    return {
        "kbps": [
            (bytes_sent(p) - s) * 8 / elapsed / 1000 for p, s in zip(everyone, sent, strict=True)
        ],
        "fps": [(a["frames"] - e) / elapsed for a, e in zip(after, encoded, strict=True)],
        "streams": [a["streams"] for a in after],
        "cpu": 100 * cpu_used / elapsed / len(everyone),
    }


@pytest.mark.parametrize("media", ["mesh", "sfu"])
def test_upload_and_cpu_per_browser_in_a_room_of_six(people, sfu, media, capsys):
    """Six people, mesh vs SFU: each browser's upload bitrate and CPU (docs/benchmarks.md)."""
    names = ["alice", "bob", "carol", "dave", "erin", "frank"]
    owner = people(names[0], base_url=sfu.main[0])
    number = owner.create_room(name=f"Bench {media}", capacity=6, media=media)
    owner.press_join()
    owner.wait_in_call()
    others = [people(name, base_url=sfu.main[i % 2]) for i, name in enumerate(names[1:])]
    enter_all(number, others)
    everyone = [owner, *others]
    for person in everyone:
        person.wait_remote_videos(5, timeout=90)
    # Let bandwidth estimation and simulcast settle before measuring.
    time.sleep(10)
    m = measure(everyone)
    kbps, fps = sorted(m["kbps"]), sorted(m["fps"])
    figure(
        capsys,
        f"FIGURE bench {media}: room of 6, per browser: upload median {kbps[3]:.0f} kbit/s"
        f" (min {kbps[0]:.0f}, max {kbps[-1]:.0f}); video frames encoded median"
        f" {fps[3]:.0f}/s; streams sent (width, limited by) {m['streams'][0]};"
        f" Chromium CPU {m['cpu']:.0f} % of a core (load average {os.getloadavg()[0]:.1f},"
        " 2 cores shared)",
    )
    assert kbps[0] > 0
