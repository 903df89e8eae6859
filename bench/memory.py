"""What an idle joined socket holds in one worker, by package (tracemalloc) and by type (gc).

    python -m bench.memory [--sockets 1000] [--top 25]

Starts one worker of our server (`config.serve`, the pub/sub layer, PostgreSQL,
Redis, as bench/systems.py does) with tracemalloc on, takes a snapshot once it
is ready and one after `--sockets` sockets have joined rooms of two and sat idle
for a few seconds, and prints the growth per socket: by the package whose code
allocated it (ours, channels, daphne, autobahn, Twisted, redis, Django, the
standard library) and by the type of the objects the garbage collector tracks.
tracemalloc slows the worker and adds its own bookkeeping, so the figures are
for comparing parts, not for the RSS per socket (the main benchmark's `idle`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the worker: tracemalloc from the start, a census on SIGUSR1, then the launcher.
_WORKER = """
import gc, json, os, signal, sys, tracemalloc
from collections import Counter
tracemalloc.start(1)
out = sys.argv.pop(1)
count = [0]
def census(*_):
    count[0] += 1
    gc.collect()
    tracemalloc.take_snapshot().dump(f"{out}-{count[0]}.snap")
    types, sizes = Counter(), Counter()
    for o in gc.get_objects():
        t = type(o)
        name = f"{t.__module__}.{t.__qualname__}"
        types[name] += 1
        sizes[name] += sys.getsizeof(o)
    with open(f"{out}-{count[0]}.types.json", "w") as f:
        json.dump({"count": types, "bytes": sizes}, f)
    with open(f"{out}-{count[0]}.done", "w"):
        pass
signal.signal(signal.SIGUSR1, census)
from config.serve import serve
serve()
"""

OURS = ("rooms", "signaling", "sfu", "transport", "infra", "accounts", "config", "api")


def package(filename: str) -> str:
    """The package a source file belongs to: ours by app, others by distribution."""
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    try:
        rel = path.relative_to(ROOT)
    except ValueError:
        return "python stdlib" if "python3" in filename else filename
    return f"ours: {rel.parts[0]}" if rel.parts[0] in OURS else f"bench/other: {rel.parts[0]}"


def _short(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    return filename[len(str(ROOT)) + 1 :] if filename.startswith(str(ROOT)) else filename


def census(proc, out: str, n: int) -> None:
    os.kill(proc.pid, signal.SIGUSR1)
    done = Path(f"{out}-{n}.done")
    deadline = time.monotonic() + 120
    while not done.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the worker wrote no census")
        time.sleep(0.2)


def report(out: str, sockets: int, top: int) -> str:
    import tracemalloc

    a = tracemalloc.Snapshot.load(f"{out}-1.snap")
    b = tracemalloc.Snapshot.load(f"{out}-2.snap")
    by_pkg: collections.Counter = collections.Counter()
    by_file: collections.Counter = collections.Counter()
    for stat in b.compare_to(a, "filename"):
        name = stat.traceback[0].filename
        by_pkg[package(name)] += stat.size_diff
        by_file[name] += stat.size_diff
    total = sum(by_pkg.values())
    lines = [
        f"{sockets} idle joined sockets; traced growth {total / 1024:.0f} KiB, "
        f"{total / sockets / 1024:.2f} KiB per socket",
        "",
        "by package (KiB per socket):",
    ]
    lines += [f"  {v / sockets / 1024:7.2f}  {k}" for k, v in by_pkg.most_common(top)]
    lines += ["", "by source file (KiB per socket):"]
    lines += [f"  {v / sockets / 1024:7.2f}  {_short(k)}" for k, v in by_file.most_common(top)]
    ta = json.loads(Path(f"{out}-1.types.json").read_text())
    tb = json.loads(Path(f"{out}-2.types.json").read_text())
    growth = {
        k: (tb["count"][k] - ta["count"].get(k, 0), tb["bytes"][k] - ta["bytes"].get(k, 0))
        for k in tb["count"]
    }
    lines += ["", "by type, gc-tracked objects (per socket: count, shallow bytes):"]
    for name, (count, size) in sorted(growth.items(), key=lambda kv: -kv[1][1])[:top]:
        lines.append(f"  {count / sockets:6.2f}  {size / sockets:8.0f} B  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args(argv)
    from bench.systems import OurServer, RedisProbe

    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = args.out / f"memory-{stamp}"
    outdir.mkdir(parents=True, exist_ok=True)
    prefix = str(outdir / "worker")

    class TracedServer(OurServer):
        def commands(self, port: int) -> list[str]:
            return [sys.executable, "-c", _WORKER, prefix, "-b", "127.0.0.1", "-p", str(port)]

        def start(self) -> None:  # one worker, not two
            import subprocess

            from bench.systems import free_port, wait_port

            port = free_port()
            log = open(outdir / "worker.log", "ab")  # noqa: SIM115
            proc = subprocess.Popen(
                self.commands(port), cwd=self.root, env=self.env(), stdout=log, stderr=log
            )
            self.procs, self.ports = [proc], [port]
            wait_port(port, proc)
            self.ready()

    system = TracedServer("ours-traced", "ours, tracemalloc", outdir, db=f"bench_mem_{os.getpid()}")
    system.prepare(args.sockets + 2)
    RedisProbe().flush()
    system.start()
    try:
        time.sleep(2.0)
        census(system.procs[0], prefix, 1)
        cookies = system.cookies(args.sockets + 1)[1:]
        opened = asyncio.run(_hold(system, cookies, args.sockets // 2, prefix))
        print(f"held {opened['open']} sockets ({opened['failed']} pairs failed)")
        print(report(prefix, opened["open"] or 1, args.top))
    finally:
        system.stop()
        system.cleanup()
    return 0


async def _hold(system, cookies, pairs, prefix):
    """Open the sockets, let them sit, take the second census while they are held."""
    from bench.client import Shard

    shard = Shard(0)
    result = await shard.cmd_hold_idle(system.target, cookies, pairs)
    await asyncio.sleep(3.0)
    await asyncio.get_running_loop().run_in_executor(None, census, system.procs[0], prefix, 2)
    await shard.cmd_teardown()
    return result


if __name__ == "__main__":
    sys.exit(main())
