"""Side-by-side A/B of our server: the product against one variant, under the same load at once.

    python -m bench.ab nowrites:SERVER_DIRECT_WRITES=false asyncio:SERVER_UVLOOP=false ...

On a machine shared with other work, a run of A and then B (`python -m bench
--variant`) compares two different minutes: with the load average moving
between 1 and 18 within a quarter of an hour, the same code measured 217 and
662 us of server CPU per message in two repetitions. Here the two systems run
side by side instead: both pairs of workers are up together, each driven by
its own client process, and every window is measured on both at the same time,
so whatever else the machine does hits both alike.

Before each round it waits for the machine's load average to drop below
`--max-load` (this run's own four workers and two clients count too), and for
both systems to be idle. Per round and rate: an idle window (no sends) and a
loaded window of the same length, both systems at `rate` msgs/s in rooms of
two (peers on different workers, one 5 KB offer in ten). The figure is the
server CPU a message adds: (CPU loaded - CPU idle, scaled to the same time) /
messages received, so the presence renewals and pings every worker does
anyway are not counted. Latency (send to receive, one client process) is
reported too, but under the other system's load. Throughput ceilings are not
measured here (two systems racing for the same cores cannot each find
theirs): use `python -m bench --variant`.

Each pairing's figures are medians over the rounds of the per-round ratio
variant / product, with how many rounds had the variant higher. The JSON (and
what else was running, by CPU, at the start, middle and end) goes to
var/bench-ab/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from bench.__main__ import parse_variant
from bench.runner import Shards, percentile, split
from bench.systems import OurServer, RedisProbe, proc_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent


def busiest(n: int = 8) -> list[str]:
    """The `n` processes using most CPU right now (ps), for the record of what else ran."""
    out = subprocess.run(
        ["ps", "-eo", "pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True
    ).stdout.splitlines()[1 : n + 1]
    return [line.strip()[:160] for line in out]


class Side:
    """One system of a pairing: its two workers and its own client process."""

    def __init__(self, name: str, env: dict[str, str], db: str, logdir: Path) -> None:
        env = {"CHANNEL_LAYER_PREFIX": f"ab{os.getpid()}{name}", **env}
        layer = env.get("CHANNEL_LAYER", "pubsub")
        self.name = name
        self.server = OurServer(name, name, logdir, layer=layer, db=db, env=env)
        self.shards = Shards(1)

    def send(self, command: str, **kwargs) -> None:
        self.shards.pipes[0].send((command, kwargs))

    def result(self, timeout: float = 300) -> dict:
        pipe = self.shards.pipes[0]
        if not pipe.poll(timeout):
            raise TimeoutError(f"{self.name}: client gave no answer in {timeout}s")
        status, result = pipe.recv()
        if status != "ok":
            raise RuntimeError(f"{self.name}: {result}")
        return result

    def cpu(self) -> float:
        return proc_cpu_seconds(self.server.pids)

    def close(self) -> None:
        self.shards.close()
        self.server.stop()


def quiet(max_load: float, longest: float = 600) -> None:
    """Wait (up to `longest` s) until the 1-minute load average is below `max_load`."""
    deadline = time.monotonic() + longest
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        time.sleep(5)


def settle(sides: list[Side], longest: float = 30) -> None:
    """Wait until every server is idle (a backlog from the last window may still drain)."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        before = sum(s.cpu() for s in sides)
        time.sleep(0.3)
        if sum(s.cpu() for s in sides) - before < 0.3 * 0.15 * len(sides):
            return


def both(sides: list[Side], command: str, **kwargs) -> list[dict]:
    for side in sides:
        side.send(command, **kwargs)
    return [side.result() for side in sides]


def pairing(
    base: dict[str, str],
    name: str,
    env: dict[str, str],
    args: argparse.Namespace,
    db: str,
    logdir: Path,
) -> dict:
    """Run the product and `name` side by side for `args.rounds` rounds at each rate."""
    sides = [Side("product", base, db, logdir), Side(name, {**base, **env}, db, logdir)]
    users = 2 * args.rooms * len(sides) + 10
    rounds: list[dict] = []
    try:
        for side in sides:
            side.server.prepare(users)
        for side in sides:
            side.server.start()
        cookies = sides[0].server.cookies(users)[1:]
        per_side = split(len(cookies), len(sides))
        offset = 0
        for side, n in zip(sides, per_side, strict=True):
            side.send(
                "setup_rooms",
                target=side.server.target,
                cookies=cookies[offset : offset + n],
                n_rooms=args.rooms,
                size=2,
            )
            offset += n
        setup = [side.result() for side in sides]
        if any(s["failed"] for s in setup):
            raise RuntimeError(f"room setup failed: {setup}")
        phase = int(time.time()) % 100_000 * 100
        for r in range(args.rounds):
            for rate in args.rates:
                phase += 1
                quiet(args.max_load)
                settle(sides)
                idle0 = [s.cpu() for s in sides]
                t0 = time.monotonic()
                time.sleep(args.window)
                idle_wall = time.monotonic() - t0
                idle = [s.cpu() - c for s, c in zip(sides, idle0, strict=True)]
                load0 = [s.cpu() for s in sides]
                t0 = time.monotonic()
                results = both(
                    sides,
                    "forward",
                    phase=phase,
                    rate=rate,
                    duration=args.window,
                    offer_every=10,
                    drain=5.0,
                )
                load_wall = time.monotonic() - t0
                load = [s.cpu() - c for s, c in zip(sides, load0, strict=True)]
                row: dict = {"round": r, "rate": rate, "loadavg": os.getloadavg()[0]}
                for side, res, i_cpu, l_cpu in zip(sides, results, idle, load, strict=True):
                    lat = sorted(res["lat_us"])
                    added = l_cpu - i_cpu * load_wall / max(idle_wall, 1e-9)
                    row[side.name] = {
                        "cpu_us": added / max(res["received"], 1) * 1e6,
                        "cpu_total_us": l_cpu / max(res["received"], 1) * 1e6,
                        "p50": percentile(lat, 0.5) / 1000,
                        "p99": percentile(lat, 0.99) / 1000,
                        "lost": res["lost"],
                        "reordered": res["reordered"],
                        "received": res["received"],
                    }
                rounds.append(row)
                p, v = row["product"], row[name]
                print(
                    f"  {name} round {r + 1} {rate}/s: product {p['cpu_us']:.0f} us "
                    f"p50 {p['p50']:.2f} p99 {p['p99']:.1f} | {name} {v['cpu_us']:.0f} us "
                    f"p50 {v['p50']:.2f} p99 {v['p99']:.1f} | load {row['loadavg']:.1f}",
                    flush=True,
                )
    finally:
        for side in sides:
            side.close()
    return {"variant": name, "env": env, "rounds": rounds, "summary": summarize(name, rounds)}


def summarize(name: str, rounds: list[dict]) -> dict:
    out = {}
    for rate in sorted({r["rate"] for r in rounds}):
        rows = [r for r in rounds if r["rate"] == rate]
        figure = {}
        for key in ("cpu_us", "p50", "p99"):
            ratios = [r[name][key] / r["product"][key] for r in rows if r["product"][key]]
            figure[key] = {
                "product": statistics.median(r["product"][key] for r in rows),
                name: statistics.median(r[name][key] for r in rows),
                "ratio": statistics.median(ratios) if ratios else float("nan"),
                "higher": sum(x > 1 for x in ratios),
                "n": len(ratios),
            }
        figure["lost"] = {s: sum(r[s]["lost"] for r in rows) for s in ("product", name)}
        out[rate] = figure
    return out


def table(results: list[dict]) -> str:
    lines = [
        "| variant | rate | CPU us/msg product / variant (ratio, rounds higher) "
        "| p50 ms product / variant | p99 ms product / variant | lost |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for res in results:
        name = res["variant"]
        for rate, f in res["summary"].items():
            c, p50, p99 = f["cpu_us"], f["p50"], f["p99"]
            lines.append(
                f"| {name} | {rate}/s | {c['product']:.0f} / {c[name]:.0f} "
                f"({c['ratio']:.2f}x, {c['higher']} of {c['n']}) "
                f"| {p50['product']:.2f} / {p50[name]:.2f} ({p50['ratio']:.2f}x) "
                f"| {p99['product']:.1f} / {p99[name]:.1f} ({p99['ratio']:.2f}x) "
                f"| {f['lost']['product']} / {f['lost'][name]} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("variants", nargs="+", metavar="NAME:KEY=VALUE[,KEY=VALUE]")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rates", default="500,1500", help="msgs/s per system")
    parser.add_argument("--window", type=float, default=4.0, help="seconds per window")
    parser.add_argument("--rooms", type=int, default=40, help="rooms of two per system")
    parser.add_argument(
        "--max-load",
        type=float,
        default=6.0,
        help="before each window wait (up to 10 min) for the 1-minute load average to drop below",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench-ab")
    args = parser.parse_args(argv)
    args.rates = [int(r) for r in args.rates.split(",")]
    variants = [parse_variant(v) for v in args.variants]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = args.out / f"ab-logs-{stamp}"
    db = f"bench_{os.getpid()}"
    record: dict = {
        "started": stamp,
        "loadavg_at_start": os.getloadavg(),
        "busiest_at_start": busiest(),
        "plan": {k: v for k, v in vars(args).items() if k != "out"},
        "results": [],
    }
    RedisProbe().flush()
    try:
        for k, (name, env) in enumerate(variants):
            print(f"bench.ab: product vs {name} ({env})", flush=True)
            record["results"].append(pairing({}, name, env, args, db, logdir))
            if k == len(variants) // 2:
                record["busiest_midway"] = busiest()
    finally:
        OurServer("cleanup", "", logdir, db=db).cleanup()
    record["loadavg_at_end"] = os.getloadavg()
    record["busiest_at_end"] = busiest()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ab-{stamp}.json"
    path.write_text(json.dumps(record, indent=1, default=str))
    print(table(record["results"]))
    print(f"load average at start {record['loadavg_at_start']}, end {record['loadavg_at_end']}")
    print(f"raw results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
