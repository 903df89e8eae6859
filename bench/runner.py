"""The coordinator: starts each system, drives the client shards through the workloads."""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field

from bench.systems import RedisProbe, System, proc_cpu_seconds, proc_rss_kib

OK_P99_MS = 50.0


@dataclass
class Plan:
    """Sizes and durations of one run; `quick`, `full` and `tiny` are the presets."""

    mode: str
    reps: int = 1
    shards: int = 2
    fwd_rates: list[int] = field(default_factory=lambda: [100, 1000, 5000])
    fwd_duration: float = 1.5
    fwd_rooms: int = 50
    offer_every: int = 10  # one ~5 KB offer per 10 messages per sender, the rest candidates
    tput_rates: list[int] = field(default_factory=lambda: [1000, 2000, 4000, 8000])
    tput_duration: float = 1.5
    tput_rooms6: int = 10
    join_seq: int = 30
    join_seq_seconds: float = 10.0  # stop the sequential joins early on a slow system
    burst_rooms: int = 50
    burst_per_room: int = 4
    idle_pairs: int = 250
    # Room storm (bench/storm.py): [rooms, people per room] per step, candidates
    # each side of a pair trickles, and how long a step may take.
    storm: list[list[int]] = field(default_factory=lambda: [[10, 12], [25, 4]])
    storm_candidates: int = 4
    storm_within: float = 30.0
    drain: float = 3.0  # longest wait for stragglers after a step's last send
    workloads: list[str] = field(
        default_factory=lambda: ["forward", "rooms6", "join", "idle", "storm"]
    )

    @classmethod
    def preset(cls, mode: str) -> Plan:
        if mode == "full":
            return cls(
                mode="full",
                reps=3,
                fwd_duration=5.0,
                fwd_rooms=100,
                tput_rates=[
                    500,
                    1000,
                    1500,
                    2000,
                    3000,
                    4000,
                    5000,
                    6000,
                    8000,
                    12000,
                    16000,
                    24000,
                ],
                tput_duration=4.0,
                tput_rooms6=30,
                join_seq=200,
                join_seq_seconds=120.0,
                burst_rooms=250,
                idle_pairs=5000,
                storm=[[50, 12], [150, 4]],
                storm_within=60.0,
                drain=10.0,
            )
        if mode == "tiny":
            return cls(
                mode="tiny",
                shards=1,
                fwd_rates=[100, 300],
                fwd_duration=1.0,
                fwd_rooms=4,
                tput_rates=[300],
                tput_duration=1.0,
                tput_rooms6=2,
                join_seq=5,
                burst_rooms=5,
                burst_per_room=2,
                idle_pairs=20,
                storm=[[1, 12], [2, 4]],
            )
        return cls(mode="quick")

    def users_needed(self) -> int:
        return sum(self.slices().values()) + 10

    def slices(self) -> dict[str, int]:
        """Connections (hence users) each workload opens; each gets its own users."""
        return {
            "first": 4,
            "fwd": 2 * self.fwd_rooms,
            "rooms6": 6 * self.tput_rooms6,
            "seq": 2 * self.join_seq,
            "burst": self.burst_rooms * (1 + self.burst_per_room),
            "idle": 2 * self.idle_pairs,
            "storm": sum(rooms * size for rooms, size in self.storm),
        }


# The longest wait for the servers to be idle after a workload.
SETTLE_MAX = 180.0


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


class Shards:
    """The client processes (spawned once, reused for every system)."""

    def __init__(self, n: int) -> None:
        from bench.client import shard_main

        ctx = mp.get_context("spawn")
        self.pipes, self.procs = [], []
        for i in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=shard_main, args=(i, child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def __len__(self) -> int:
        return len(self.pipes)

    def call(self, name: str, per_shard: list[dict], timeout: float = 600) -> list[dict]:
        for pipe, kwargs in zip(self.pipes, per_shard, strict=True):
            pipe.send((name, kwargs))
        results, errors = [], []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise TimeoutError(f"client shard gave no answer to {name} in {timeout}s")
            status, result = pipe.recv()
            if status != "ok":
                errors.append(result)
            results.append(result)
        if errors:
            raise RuntimeError(f"{name}: {errors[0]}")
        return results

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("stop", {}))
                pipe.poll(5)
            except (OSError, EOFError):
                pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()


class Runner:
    def __init__(self, plan: Plan, log=print) -> None:
        self.plan = plan
        self.redis = RedisProbe()
        self.redis_pid = self.redis.pid()
        self.shards = Shards(plan.shards)
        self.log = log
        self.warnings: list[str] = []

    def close(self) -> None:
        self.shards.close()

    # --- helpers -----------------------------------------------------------------
    def cookie_slices(
        self, system: System, workload: str, per_shard: list[int], skip: int = 0
    ) -> list[list]:
        """Disjoint cookies for each shard: `per_shard[i]` connections in shard i.

        `skip` passes over the first cookies of the workload's slice (another step's).
        """
        sizes = self.plan.slices()
        offset = 1 + skip  # cookie 0 is the one the login API issued; keep it for sanity checks
        for name, size in sizes.items():
            if name == workload:
                break
            offset += size
        cookies = system.cookies(offset + sum(per_shard))[offset:]
        out, i = [], 0
        for n in per_shard:
            out.append(cookies[i : i + n])
            i += n
        return out

    def setup_rooms(self, system: System, workload: str, n_rooms: int, size: int) -> None:
        rooms = split(n_rooms, len(self.shards))
        cookies = self.cookie_slices(system, workload, [r * size for r in rooms])
        results = self.shards.call(
            "setup_rooms",
            [
                {"target": system.target, "cookies": c, "n_rooms": r, "size": size}
                for c, r in zip(cookies, rooms, strict=True)
            ],
        )
        failed = sum(r["failed"] for r in results)
        if failed:
            first = next(e for r in results for e in r["error"])
            self.warnings.append(
                f"{workload}: {failed} of {n_rooms} rooms of {size} could not be set up "
                f"({first}); measured on the rest"
            )

    def settle(self, system: System, limit: float = 30.0) -> float:
        """Wait until the servers are idle (a previous overload may still be draining):
        under 15 % of a core in two 0.3 s windows in a row, both processes together.
        Seconds waited (`limit`: gave up)."""
        t0 = time.monotonic()
        quiet = 0
        while time.monotonic() - t0 < limit and quiet < 2:
            cpu0 = proc_cpu_seconds(system.pids)
            time.sleep(0.3)
            # Two quiet windows in a row: sockets waiting on a pool can leave one lull.
            quiet = quiet + 1 if proc_cpu_seconds(system.pids) - cpu0 < 0.3 * 0.15 else 0
        return time.monotonic() - t0

    def forward_phase(self, system: System, phase: int, rate: int, duration: float) -> dict:
        n = len(self.shards)
        self.settle(system)
        cpu0, rcpu0 = proc_cpu_seconds(system.pids), self.redis.cpu_seconds()
        results = self.shards.call(
            "forward",
            [
                {
                    "phase": phase,
                    "rate": rate / n,
                    "duration": duration,
                    "offer_every": self.plan.offer_every,
                    "drain": self.plan.drain,
                }
                for _ in range(n)
            ],
            timeout=duration + 120,
        )
        cpu1, rcpu1 = proc_cpu_seconds(system.pids), self.redis.cpu_seconds()
        lat = sorted(x for r in results for x in r["lat_us"])
        server_errors: dict[str, int] = {}
        for r in results:
            for code, count in r["server_errors"].items():
                server_errors[code] = server_errors.get(code, 0) + count
        sent = sum(r["sent"] for r in results)
        received = sum(r["received"] for r in results)
        wall = max(r["send_wall"] for r in results)
        client_pct = max(r["client_cpu"] / max(r["send_wall"], 1e-9) for r in results) * 100
        out = {
            "rate": rate,
            "p50": percentile(lat, 0.50) / 1000,
            "p99": percentile(lat, 0.99) / 1000,
            "p999": percentile(lat, 0.999) / 1000,
            "max": (lat[-1] / 1000) if lat else float("nan"),
            "sent": sent,
            "received": received,
            "lost": sum(r["lost"] for r in results),
            "lost_senders": sum(r["lost_senders"] for r in results),
            "senders": sum(r["senders"] for r in results),
            "reordered": sum(r["reordered"] for r in results),
            "closed": sum(r["closed"] for r in results),
            "server_errors": server_errors,
            "achieved": sent / wall if wall else 0.0,
            "server_cpu_us": (cpu1 - cpu0) / max(received, 1) * 1e6,
            "redis_cpu_us": (rcpu1 - rcpu0) / max(received, 1) * 1e6,
            "server_cpu_pct": (cpu1 - cpu0) / wall * 100 if wall else 0.0,
            "client_cpu_pct": client_pct,
            "client_lag_p99_ms": max(r["lag_p99_ms"] for r in results),
        }
        out["ok"] = (
            out["lost"] == 0
            and not server_errors
            and out["closed"] == 0
            and out["p99"] <= OK_P99_MS
            and out["achieved"] >= 0.95 * rate
        )
        out["why"] = _why(out)
        return out

    # --- workloads ---------------------------------------------------------------
    def run_system(self, system: System) -> dict:
        plan = self.plan
        res: dict = {"errors": []}
        self.warnings = res["errors"]
        phase = int(time.time()) % 100_000 * 100
        if "join" in plan.workloads:
            try:
                res["first"] = self.first_joins(system)
            except Exception as exc:
                res["errors"].append(f"first joins: {type(exc).__name__}: {exc}")
        steps = [
            ("forward", self.w_forward),
            ("rooms6", self.w_rooms6),
            ("join", self.w_join),
            ("idle", self.w_idle),
            ("storm", self.w_storm),
        ]
        for name, fn in steps:
            if name not in plan.workloads:
                continue
            if not system.alive():
                res["errors"].append(f"{name}: server process died; restarting")
                system.stop()
                system.start()
            self.log(f"  {system.name}: {name}")
            t0 = time.monotonic()
            try:
                phase += 10
                res[name] = fn(system, phase)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                res["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            finally:
                try:
                    self.shards.call("teardown", [{}] * len(self.shards), timeout=60)
                except Exception as exc:
                    res["errors"].append(f"{name} teardown: {exc}")
                # What a workload leaves (10,000 idle sockets' leaves take the servers tens
                # of seconds) must be done before the next one measures anything.
                settled = self.settle(system, limit=SETTLE_MAX)
                res.setdefault("settle_s", {})[name] = round(settled, 1)
                if settled >= SETTLE_MAX:
                    res["errors"].append(
                        f"{name}: the servers were still busy {SETTLE_MAX:g} s after"
                    )
            self.log(f"    {time.monotonic() - t0:.1f}s")
        return res

    def w_forward(self, system: System, phase: int) -> dict:
        """Forward latency at fixed rates, then the throughput ramp, in rooms of two."""
        plan = self.plan
        self.setup_rooms(system, "fwd", plan.fwd_rooms, 2)
        rates = []
        for k, rate in enumerate(plan.fwd_rates):
            rates.append(self.forward_phase(system, phase + k, rate, plan.fwd_duration))
            time.sleep(0.3)
        ramp = self.ramp(system, phase + 5, plan.tput_rates)
        return {"rates": rates, "tput2": ramp}

    def w_rooms6(self, system: System, phase: int) -> dict:
        self.setup_rooms(system, "rooms6", self.plan.tput_rooms6, 6)
        return {"tput6": self.ramp(system, phase, self.plan.tput_rates)}

    def ramp(self, system: System, phase: int, rates: list[int]) -> dict:
        steps, best = [], 0
        for k, rate in enumerate(rates):
            step = self.forward_phase(system, phase * 10 + k, rate, self.plan.tput_duration)
            step.pop("lat_us", None)
            steps.append(step)
            if not step["ok"]:
                break
            best = rate
            time.sleep(0.3)
        capped = bool(steps) and steps[-1]["ok"]
        return {"max_ok": best, "capped": capped, "steps": steps}

    def first_joins(self, system: System) -> dict:
        """The first two create+join pairs after the workers said ready (create on 1, join on 2)."""
        (cookies,) = self.cookie_slices(system, "first", [4])
        first = [{"target": system.target, "cookies": cookies, "n": 2}]
        rest = [{"target": system.target, "cookies": [], "n": 0}] * (len(self.shards) - 1)
        ms = self.shards.call("join_seq", first + rest)[0]["ms"]
        return {
            "create_ms": ms[0],
            "join_ms": ms[1],
            "second_create_ms": ms[2],
            "second_join_ms": ms[3],
            "ready_wait_s": getattr(system, "ready_wait_s", float("nan")),
        }

    def w_join(self, system: System, phase: int) -> dict:
        plan = self.plan
        (cookies,) = self.cookie_slices(system, "seq", [2 * plan.join_seq])
        first = [
            {
                "target": system.target,
                "cookies": cookies,
                "n": plan.join_seq,
                "max_seconds": plan.join_seq_seconds,
            }
        ]
        rest = [{"target": system.target, "cookies": [], "n": 0}] * (len(self.shards) - 1)
        seq = sorted(self.shards.call("join_seq", first + rest)[0]["ms"])
        per = plan.burst_rooms * (1 + plan.burst_per_room)
        (cookies,) = self.cookie_slices(system, "burst", [per])
        first = [
            {
                "target": system.target,
                "cookies": cookies,
                "n_rooms": plan.burst_rooms,
                "per_room": plan.burst_per_room,
            }
        ]
        rest = [{"target": system.target, "cookies": [], "n_rooms": 0, "per_room": 0}] * (
            len(self.shards) - 1
        )
        burst = self.shards.call("join_burst", first + rest)[0] if plan.burst_rooms else {}
        ms = sorted(burst.get("ms", []))
        return {
            "seq_n": len(seq),
            "seq_p50": percentile(seq, 0.5),
            "seq_p99": percentile(seq, 0.99),
            "burst_n": plan.burst_rooms * plan.burst_per_room,
            "burst_p50": percentile(ms, 0.5),
            "burst_p99": percentile(ms, 0.99),
            "burst_took": burst.get("took", float("nan")),
            "burst_failed": burst.get("failed", 0),
            "burst_errors": burst.get("errors", []),
        }

    def w_storm(self, system: System, phase: int) -> dict:
        """Room storms: all members of N rooms join at once and negotiate a full mesh."""
        plan = self.plan
        out, skip = {}, 0
        for k, (n_rooms, size) in enumerate(plan.storm):
            if k:
                self.shards.call("teardown", [{}] * len(self.shards), timeout=60)
                time.sleep(0.5 if plan.mode != "full" else 2.0)
            rooms = split(n_rooms, len(self.shards))
            cookies = self.cookie_slices(system, "storm", [r * size for r in rooms], skip=skip)
            skip += n_rooms * size
            prepared = self.shards.call(
                "storm_prepare",
                [
                    {
                        "target": system.target,
                        "cookies": c,
                        "n_rooms": r,
                        "size": size,
                        "candidates": plan.storm_candidates,
                        "phase": phase + k,
                    }
                    for c, r in zip(cookies, rooms, strict=True)
                ],
            )
            self.settle(system)
            cpu0, rcpu0 = proc_cpu_seconds(system.pids), self.redis.cpu_seconds()
            results = self.shards.call(
                "storm_go",
                [{"within": plan.storm_within}] * len(self.shards),
                timeout=plan.storm_within + 120,
            )
            cpu1, rcpu1 = proc_cpu_seconds(system.pids), self.redis.cpu_seconds()
            room_ms = sorted(x for r in results for x in r["room_ms"])
            join_ms = sorted(x for r in results for x in r["join_ms"])
            server_errors: dict[str, int] = {}
            for r in results:
                for code, count in r["server_errors"].items():
                    server_errors[code] = server_errors.get(code, 0) + count
            setup_failed = sum(p["failed"] for p in prepared)
            step = {
                "rooms": n_rooms,
                "size": size,
                "negotiated": len(room_ms),
                "failed_rooms": n_rooms - len(room_ms),
                "setup_failed": setup_failed,
                "failed_joins": sum(r["failed_joins"] for r in results),
                "server_errors": server_errors,
                "room_p50": percentile(room_ms, 0.5),
                "room_p99": percentile(room_ms, 0.99),
                "room_max": room_ms[-1] if room_ms else float("nan"),
                "join_p50": percentile(join_ms, 0.5),
                "join_p99": percentile(join_ms, 0.99),
                "took": max(r["took"] for r in results),
                "server_cpu_s": cpu1 - cpu0,
                "redis_cpu_s": rcpu1 - rcpu0,
                "errors": [e for r in results for e in r["errors"]][:3],
            }
            if step["failed_rooms"]:
                self.warnings.append(
                    f"storm {n_rooms}x{size}: {step['failed_rooms']} rooms not negotiated "
                    f"within {plan.storm_within:g} s ({step['failed_joins']} joins failed, "
                    f"server errors {server_errors}, {step['errors'][:1]})"
                )
            out[f"{n_rooms}x{size}"] = step
        return out

    def w_idle(self, system: System, phase: int) -> dict:
        plan = self.plan
        time.sleep(1.0)
        rss0, mem0 = proc_rss_kib(system.pids), self.redis.used_memory()
        pairs = split(plan.idle_pairs, len(self.shards))
        cookies = self.cookie_slices(system, "idle", [2 * p for p in pairs])
        t0 = time.monotonic()
        opened = self.shards.call(
            "hold_idle",
            [
                {"target": system.target, "cookies": c, "n_pairs": p}
                for c, p in zip(cookies, pairs, strict=True)
            ],
            timeout=900,
        )
        took = time.monotonic() - t0
        time.sleep(3.0)
        still = sum(r["open"] for r in self.shards.call("count_idle", [{}] * len(self.shards)))
        rss1, mem1 = proc_rss_kib(system.pids), self.redis.used_memory()
        n = max(still, 1)
        return {
            "target": 2 * plan.idle_pairs,
            "open": still,
            "failed": sum(r["failed"] for r in opened),
            "error": next((r["error"] for r in opened if r["error"]), ""),
            "open_took": took,
            "rss_kib_before": rss0,
            "rss_kib_after": rss1,
            "kib_per_conn": (rss1 - rss0) / n,
            "redis_bytes_per_conn": (mem1 - mem0) / n,
        }


def _why(step: dict) -> str:
    reasons = []
    if step["lost"]:
        reasons.append(f"lost {step['lost']}")
    for code, count in sorted(step.get("server_errors", {}).items()):
        reasons.append(f"{count} error {code}")
    if step["closed"]:
        reasons.append(f"{step['closed']} sockets closed")
    if step["p99"] > OK_P99_MS:
        reasons.append(f"p99 {step['p99']:.0f} ms")
    if step["achieved"] < 0.95 * step["rate"]:
        reasons.append(f"client sent {step['achieved']:.0f}/s")
    return ", ".join(reasons)


def run(plan: Plan, systems: list[System], log=print) -> dict:
    """Run every system `plan.reps` times, interleaved so drift hits all alike."""
    runner = Runner(plan, log=log)
    out: dict = {"plan": asdict(plan), "systems": {s.name: [] for s in systems}, "labels": {}}
    try:
        for system in systems:
            out["labels"][system.name] = system.label
            log(f"bench: preparing {system.name}")
            system.prepare(plan.users_needed())
        for rep in range(plan.reps):
            for system in systems:
                log(f"bench: rep {rep + 1}/{plan.reps} {system.name}")
                runner.redis.flush()
                system.start()
                try:
                    out["systems"][system.name].append(runner.run_system(system))
                finally:
                    system.stop()
    finally:
        runner.close()
        for system in systems:
            system.cleanup()
    return out


def median_or_nan(values: list[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")
