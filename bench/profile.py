"""Profile a system's two workers with py-spy while the forward workload runs.

    python -m bench --profile ours-pubsub [--profile-rate 1000] [--profile-workload join]

Writes collapsed stacks (flamegraph.pl / speedscope input) per worker to
var/bench/profile-*/ and prints the functions with the most samples, self and
inclusive, over both workers.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.runner import Plan, Runner
from bench.systems import System


def _top(paths: list[Path], n: int = 25) -> str:
    self_count: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            c = int(count)
            total += c
            frames = stack.split(";")
            if frames:
                self_count[frames[-1]] += c
            for frame in set(frames):
                incl[frame] += c
    out = [f"samples: {total}", "", "self (where the CPU is):"]
    out += [f"  {c / max(total, 1) * 100:5.1f}%  {f}" for f, c in self_count.most_common(n)]
    out += ["", "inclusive (what it is spent under):"]
    out += [f"  {c / max(total, 1) * 100:5.1f}%  {f}" for f, c in incl.most_common(n * 2)]
    return "\n".join(out)


def profile(
    system: System,
    plan: Plan,
    rate: int,
    duration: float,
    workload: str,
    outdir: Path,
    *,
    gil: bool = False,
) -> Path:
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    outdir.mkdir(parents=True, exist_ok=True)
    runner = Runner(plan)
    system.prepare(plan.users_needed())
    runner.redis.flush()
    system.start()
    paths = [outdir / f"{system.name}-{i + 1}.collapsed" for i in range(len(system.pids))]
    try:
        if workload == "forward":
            runner.setup_rooms(system, "fwd", plan.fwd_rooms, 2)
            runner.forward_phase(system, 1, min(rate, 500), 1.0)  # warm up
        spies = [
            subprocess.Popen(
                [
                    pyspy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(duration) + 1),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--nonblocking",
                    *(["--gil"] if gil else []),
                    "--output",
                    str(path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, path in zip(system.pids, paths, strict=True)
        ]
        time.sleep(1.0)
        if workload == "forward":
            result = runner.forward_phase(system, 2, rate, duration)
            print(
                f"{system.name} @ {rate}/s: p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} "
                f"ms, lost {result['lost']}, server CPU {result['server_cpu_us']:.0f} us/msg"
            )
        else:
            done = threading.Event()
            result = runner.w_join(system, 0)
            done.set()
            print(f"{system.name} join: {result}")
        for spy in spies:
            spy.wait(duration + 60)
    finally:
        runner.shards.call("teardown", [{}] * len(runner.shards))
        runner.close()
        system.stop()
        system.cleanup()
    report = _top([p for p in paths if p.exists()])
    (outdir / f"{system.name}-top.txt").write_text(report)
    print(report)
    return outdir
