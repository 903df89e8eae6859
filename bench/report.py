"""Summaries of a run: the printed table, docs/benchmarks.md and its plot."""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.runner import median_or_nan
from bench.systems import REDIS_DB

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "img" / "latency-vs-rate.png"
HISTORY = re.compile(r"<!-- history:start -->.*?<!-- history:end -->", re.S)
OURS = "ours-pubsub"


def _cmd(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine() -> dict:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    versions = {}
    for dist in (
        "Django",
        "channels",
        "channels-redis",
        "daphne",
        "redis",
        "websockets",
        "picows",
        "uvloop",
        "orjson",
    ):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:
            versions[dist] = "-"
    sio = ROOT / "bench" / "peers" / "socketio" / "node_modules"
    for pkg in ("socket.io", "@socket.io/redis-adapter", "redis"):
        path = sio / pkg / "package.json"
        if path.exists():
            import json

            versions[f"npm {pkg}"] = json.loads(path.read_text())["version"]
    from bench.systems import RedisProbe

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _cmd(["node", "--version"]),
        "redis": RedisProbe().version(),
        "postgres": _cmd(["psql", "--version"]).replace("psql (PostgreSQL) ", ""),
        "versions": versions,
        "loadavg_at_end": os.getloadavg(),
    }


# --- summary -------------------------------------------------------------------


def summarize(results: dict) -> dict:
    """Medians over repetitions of every figure, per system."""
    plan = results["plan"]
    out = {"plan": plan, "labels": results["labels"], "systems": {}}
    for name, reps in results["systems"].items():
        s: dict = {"errors": [e for r in reps for e in r.get("errors", [])], "reps": len(reps)}
        rates = {}
        for rate in plan["fwd_rates"]:
            rows = [
                x for r in reps for x in r.get("forward", {}).get("rates", []) if x["rate"] == rate
            ]
            if rows:
                rates[rate] = _median_rows(rows)
        s["rates"] = rates
        for key, part in (("tput2", "forward"), ("tput6", "rooms6")):
            ramps = [r[part][key] for r in reps if key in r.get(part, {})]
            if ramps:
                s[key] = {
                    "max_ok": median_or_nan([x["max_ok"] for x in ramps]),
                    "first": min((x["steps"][0]["rate"] for x in ramps if x["steps"]), default=0),
                    "capped": all(x["capped"] for x in ramps),
                    "why": "; ".join(
                        sorted(
                            {
                                f"{x['steps'][-1]['rate']}/s: {x['steps'][-1]['why']}"
                                for x in ramps
                                if x["steps"] and not x["steps"][-1]["ok"]
                            }
                        )
                    ),
                    "steps": _ramp_points([x["steps"] for x in ramps]),
                }
        joins = [r["join"] for r in reps if "join" in r]
        if joins:
            s["join"] = {
                k: median_or_nan([j[k] for j in joins])
                for k in (
                    "seq_p50",
                    "seq_p99",
                    "burst_p50",
                    "burst_p99",
                    "burst_took",
                    "burst_failed",
                    "seq_n",
                    "burst_n",
                )
            }
            s["join"]["errors"] = [e for j in joins for e in j["burst_errors"]][:3]
        firsts = [r["first"] for r in reps if "first" in r]
        if firsts:
            s["first"] = {
                k: median_or_nan([f[k] for f in firsts])
                for k in ("create_ms", "join_ms", "second_create_ms", "second_join_ms")
            }
        idles = [r["idle"] for r in reps if "idle" in r]
        if idles:
            s["idle"] = {
                k: median_or_nan([i[k] for i in idles])
                for k in (
                    "target",
                    "open",
                    "failed",
                    "kib_per_conn",
                    "redis_bytes_per_conn",
                    "open_took",
                    "rss_kib_after",
                )
            }
        storms = [r["storm"] for r in reps if "storm" in r]
        s["storm"] = {}
        for rooms, size in plan.get("storm", []):
            key = f"{rooms}x{size}"
            steps = [x[key] for x in storms if key in x]
            if steps:
                s["storm"][key] = {
                    k: median_or_nan([x[k] for x in steps])
                    for k in (
                        "rooms",
                        "negotiated",
                        "failed_rooms",
                        "failed_joins",
                        "room_p50",
                        "room_p99",
                        "room_max",
                        "join_p50",
                        "join_p99",
                        "took",
                        "server_cpu_s",
                    )
                }
        out["systems"][name] = s
    return out


def _median_rows(rows: list[dict]) -> dict:
    keys = [k for k, v in rows[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    row = {k: median_or_nan([r[k] for r in rows]) for k in keys}
    row["ok"] = all(r["ok"] for r in rows)
    row["why"] = "; ".join(sorted({r["why"] for r in rows if r["why"]}))
    return row


def _ramp_points(ramps: list[list[dict]]) -> list[dict]:
    by_rate: dict[int, list[dict]] = {}
    for steps in ramps:
        for step in steps:
            by_rate.setdefault(step["rate"], []).append(step)
    return [_median_rows(rows) for _, rows in sorted(by_rate.items())]


# --- formatting ----------------------------------------------------------------


def _f(value, fmt: str = "{:.2f}", none: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return none
    return fmt.format(value)


def rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """The comparison as (header, rows): one column per system."""
    names = list(summary["systems"])
    systems = summary["systems"]
    header = ["figure", *names]
    table: list[list[str]] = []

    def add(label, fn):
        table.append([label, *(fn(systems[n]) for n in names)])

    for rate in summary["plan"]["fwd_rates"]:
        add(f"forward {rate}/s p50 ms", lambda s, r=rate: _f(s["rates"].get(r, {}).get("p50")))
        add(f"forward {rate}/s p99 ms", lambda s, r=rate: _f(s["rates"].get(r, {}).get("p99")))
        add(f"forward {rate}/s p99.9 ms", lambda s, r=rate: _f(s["rates"].get(r, {}).get("p999")))
        add(
            f"forward {rate}/s lost/reord.",
            lambda s, r=rate: _loss(s["rates"].get(r)),
        )
    add(
        "server CPU us/msg @1k/s",
        lambda s: _f(s["rates"].get(1000, {}).get("server_cpu_us"), "{:.0f}"),
    )
    add(
        "Redis CPU us/msg @1k/s",
        lambda s: _f(s["rates"].get(1000, {}).get("redis_cpu_us"), "{:.0f}"),
    )
    top = max(summary["plan"]["fwd_rates"])
    add(
        f"load client CPU % @{top}/s",
        lambda s: _f(s["rates"].get(top, {}).get("client_cpu_pct"), "{:.0f}"),
    )
    add("max OK msgs/s, rooms of 2", lambda s: _tput(s.get("tput2")))
    add("max OK msgs/s, rooms of 6", lambda s: _tput(s.get("tput6")))
    add(
        "first create / join after ready ms",
        lambda s: _pair(s.get("first"), "create_ms", "join_ms"),
    )
    add("join idle p50 ms", lambda s: _f(s.get("join", {}).get("seq_p50")))
    add("join idle p99 ms", lambda s: _f(s.get("join", {}).get("seq_p99")))
    add("join in burst p50 ms", lambda s: _f(s.get("join", {}).get("burst_p50"), "{:.0f}"))
    add("join in burst p99 ms", lambda s: _f(s.get("join", {}).get("burst_p99"), "{:.0f}"))
    add("burst took s (failed)", lambda s: _burst(s.get("join")))
    for rooms, size in summary["plan"].get("storm", []):
        key = f"{rooms}x{size}"
        add(
            f"storm {rooms} rooms of {size}: room p50 ms",
            lambda s, k=key: _f(s.get("storm", {}).get(k, {}).get("room_p50"), "{:.0f}"),
        )
        add(
            f"storm {rooms} rooms of {size}: room p99 ms",
            lambda s, k=key: _f(s.get("storm", {}).get(k, {}).get("room_p99"), "{:.0f}"),
        )
        add(
            f"storm {rooms} rooms of {size}: failed rooms/joins",
            lambda s, k=key: _storm_failed(s.get("storm", {}).get(k)),
        )
        add(
            f"storm {rooms} rooms of {size}: server CPU s",
            lambda s, k=key: _f(s.get("storm", {}).get(k, {}).get("server_cpu_s")),
        )
    add("idle conns held/asked", lambda s: _idle(s.get("idle")))
    add("server KiB per idle conn", lambda s: _f(s.get("idle", {}).get("kib_per_conn"), "{:.1f}"))
    add(
        "Redis B per idle conn",
        lambda s: _f(s.get("idle", {}).get("redis_bytes_per_conn"), "{:.0f}"),
    )
    if "socketio" in systems:
        ref = systems["socketio"]
        add("throughput / socket.io", lambda s: _ratio(_max(s, "tput2"), _max(ref, "tput2")))
        for rooms, size in summary["plan"].get("storm", []):
            add(
                f"storm {rooms}x{size} room p99 / socket.io",
                lambda s, k=f"{rooms}x{size}": _ratio(_storm_p99(s, k), _storm_p99(ref, k)),
            )
    if "relay" in systems:
        ref = systems["relay"]
        add("p50 @1k/s / relay", lambda s: _ratio(_p50(s), _p50(ref)))
    return header, table


def _pair(row, a, b) -> str:
    if not row:
        return "-"
    return f"{_f(row.get(a), '{:.1f}')} / {_f(row.get(b), '{:.1f}')}"


def _storm_p99(s, key):
    return s.get("storm", {}).get(key, {}).get("room_p99")


def _storm_failed(step) -> str:
    if not step:
        return "-"
    return f"{step['failed_rooms']:.0f}/{step['failed_joins']:.0f}"


def _max(s, key):
    return s.get(key, {}).get("max_ok")


def _p50(s):
    return s["rates"].get(1000, {}).get("p50")


def _ratio(a, b) -> str:
    if not a or not b or any(isinstance(x, float) and math.isnan(x) for x in (a, b)):
        return "-"
    return f"{a / b:.2f}x" if a / b >= 0.1 else f"{a / b:.3f}x"


def _loss(row) -> str:
    if not row:
        return "-"
    text = f"{row['lost']:.0f}/{row['reordered']:.0f}"
    if row.get("lost_senders"):
        text += f" ({row['lost_senders']:.0f} of {row['senders']:.0f} senders lost)"
    if row.get("closed"):
        text += f" ({row['closed']:.0f} closed)"
    return text


def _tput(t) -> str:
    if not t:
        return "-"
    if not t["max_ok"] and t.get("first"):
        return f"<{t['first']:.0f}"
    return f"{'>=' if t['capped'] else ''}{t['max_ok']:.0f}"


def _burst(j) -> str:
    if not j:
        return "-"
    return f"{j['burst_took']:.2f} ({j['burst_failed']:.0f})"


def _idle(i) -> str:
    if not i:
        return "-"
    return f"{i['open']:.0f}/{i['target']:.0f}"


def table(summary: dict) -> str:
    header, body = rows(summary)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    errors = [(n, e) for n, s in summary["systems"].items() for e in s["errors"]]
    lines += [f"! {n}: {e}" for n, e in errors]
    return "\n".join(lines)


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


# --- docs ----------------------------------------------------------------------


def plot(summary: dict, path: Path = PLOT) -> Path | None:
    """Latency percentiles against offered rate (rooms of two), one colour per system."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib missing, no plot", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for k, (name, s) in enumerate(summary["systems"].items()):
        points = {r: row for r, row in s["rates"].items()}
        for step in s.get("tput2", {}).get("steps", []):
            points.setdefault(int(step["rate"]), step)
        xs = sorted(points)
        if not xs:
            continue
        colour = f"C{k}"
        label = summary["labels"].get(name, name)
        ax.plot(xs, [points[x]["p50"] for x in xs], "o-", color=colour, label=f"{label} p50")
        ax.plot(
            xs, [points[x]["p99"] for x in xs], "s--", color=colour, label=f"{label} p99", alpha=0.8
        )
        bad = [x for x in xs if not points[x]["ok"]]
        ax.plot(bad, [points[x]["p99"] for x in bad], "x", color="black", markersize=10)
    ax.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate, messages/s in total (rooms of 2, peers on different workers)")
    ax.set_ylabel("one-way forward latency, ms")
    ax.set_title("Signaling forward latency vs offered rate (x: loss or p99 > 50 ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def targets(summary: dict) -> list[tuple[str, str, str]]:
    """Issue 6's targets for our server (the default pub/sub layer): (target, figure, met)."""
    systems = summary["systems"]
    s = systems.get(OURS)
    if not s:
        return []
    out = []
    r = s["rates"].get(1000)
    if r:
        met = r["p50"] < 2 and r["p99"] < 10 and r["lost"] == 0
        out.append(
            (
                "forward @1k/s: p50 < 2 ms, p99 < 10 ms, no loss",
                f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, lost {r['lost']:.0f}",
                _yes(met),
            )
        )
    if "socketio" in systems and s.get("tput2") and systems["socketio"].get("tput2"):
        a, b = s["tput2"]["max_ok"], systems["socketio"]["tput2"]["max_ok"]
        note = (
            " (socket.io was not pushed to its limit)"
            if systems["socketio"]["tput2"]["capped"]
            else ""
        )
        out.append(
            (
                "throughput at p99 < 50 ms, no loss >= socket.io",
                f"{a:.0f} vs {b:.0f} msgs/s = {_ratio(a, b)}{note}",
                _yes(bool(b) and a >= b),
            )
        )
    if "relay" in systems and r and systems["relay"]["rates"].get(1000):
        rp = systems["relay"]["rates"][1000]["p50"]
        out.append(
            (
                "forward p50 within 1.5x of the bare relay",
                f"{r['p50']:.2f} vs {rp:.2f} ms = {_ratio(r['p50'], rp)}",
                _yes(r["p50"] <= 1.5 * rp),
            )
        )
    idle = s.get("idle")
    if idle:
        full = idle["target"] >= 10_000
        met = idle["open"] >= 10_000 and idle["kib_per_conn"] < 40
        out.append(
            (
                "10,000 idle connections, < 40 KiB each",
                f"{idle['open']:.0f} held, {idle['kib_per_conn']:.1f} KiB each",
                _yes(met) if full else "not at this size (run --full)",
            )
        )
    j = s.get("join")
    if j:
        out.append(("join p99 < 25 ms idle", f"{j['seq_p99']:.1f} ms", _yes(j["seq_p99"] < 25)))
        out.append(
            (
                f"join p99 < 250 ms in a burst of {j['burst_n']:.0f}",
                f"{j['burst_p99']:.0f} ms, {j['burst_failed']:.0f} failed",
                _yes(j["burst_p99"] < 250 and not j["burst_failed"]),
            )
        )
    return out


def performance_targets(summary: dict) -> list[tuple[str, str, str]]:
    """Issue 15's targets: our server against socket.io in the same run (target, figure, met)."""
    systems = summary["systems"]
    s, ref = systems.get(OURS), systems.get("socketio")
    if not s or not ref:
        return []
    out = []
    full = summary["plan"]["mode"] == "full"

    def at_size(ok: bool, big_enough: bool) -> str:
        return _yes(ok) if big_enough else "not at this size (run --full)"

    j, rj = s.get("join"), ref.get("join")
    if j and rj:
        a, b = j["seq_p50"], rj["seq_p50"]
        out.append(
            (
                "join p50 <= 1.5x socket.io's",
                f"{a:.1f} vs {b:.1f} ms = {_ratio(a, b)}",
                _yes(a <= 1.5 * b),
            )
        )
    first = s.get("first")
    if j and first:
        worst = max(first["create_ms"], first["join_ms"])
        out.append(
            (
                "the first create and join after ready within 2x the join p50",
                f"{first['create_ms']:.1f} / {first['join_ms']:.1f} ms vs p50 "
                f"{j['seq_p50']:.1f} ms = {_ratio(worst, j['seq_p50'])}",
                _yes(worst <= 2 * j["seq_p50"]),
            )
        )
    if j and rj:
        a, b = j["burst_took"], rj["burst_took"]
        out.append(
            (
                f"{j['burst_n']:.0f} joins at once: <= 1.5x socket.io's time, none failed",
                f"{a:.2f} vs {b:.2f} s = {_ratio(a, b)}, {j['burst_failed']:.0f} failed",
                at_size(a <= 1.5 * b and not j["burst_failed"], j["burst_n"] >= 1000),
            )
        )
    idle, ridle = s.get("idle"), ref.get("idle")
    if idle and ridle:
        a, b = idle["kib_per_conn"], ridle["kib_per_conn"]
        out.append(
            (
                "idle joined socket <= 1.5x socket.io's memory; 10,000 held",
                f"{a:.1f} vs {b:.1f} KiB = {_ratio(a, b)}; {idle['open']:.0f} held",
                at_size(a <= 1.5 * b and idle["open"] >= 10_000, idle["target"] >= 10_000),
            )
        )
    r, rr = s["rates"].get(1000), ref["rates"].get(1000)
    if r and rr and r.get("server_cpu_us") and rr.get("server_cpu_us"):
        a, b = r["server_cpu_us"], rr["server_cpu_us"]
        out.append(
            (
                "server CPU per forwarded message at 1,000/s <= 1.0x socket.io's",
                f"{a:.0f} vs {b:.0f} us = {_ratio(a, b)}",
                _yes(a <= b),
            )
        )
    if s.get("tput2") and ref.get("tput2"):
        a, b = s["tput2"]["max_ok"], ref["tput2"]["max_ok"]
        note = " (socket.io was not pushed to its limit)" if ref["tput2"]["capped"] else ""
        out.append(
            (
                "throughput at p99 < 50 ms, rooms of 2, >= 1.0x socket.io's",
                f"{a:.0f} vs {b:.0f} msgs/s = {_ratio(a, b)}{note}",
                _yes(bool(b) and a >= b),
            )
        )
    for rooms, size in summary["plan"].get("storm", []):
        key = f"{rooms}x{size}"
        step, rstep = s.get("storm", {}).get(key), ref.get("storm", {}).get(key)
        if not step or not rstep or size != 12:
            continue
        met = (
            step["failed_rooms"] == 0
            and step["room_p99"] < 1000
            and step["room_p99"] <= rstep["room_p99"]
        )
        out.append(
            (
                f"storm: {rooms} rooms of 12 negotiated, p99 per room < 1 s, <= socket.io's",
                f"{step['negotiated']:.0f}/{rooms} rooms, p99 {step['room_p99']:.0f} vs "
                f"{rstep['room_p99']:.0f} ms = {_ratio(step['room_p99'], rstep['room_p99'])}",
                at_size(met, rooms >= 50 or full),
            )
        )
    return out


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def layer_section(summary: dict) -> str:
    systems = summary["systems"]
    if "ours-pubsub" not in systems or "ours-core" not in systems:
        return ""
    pub, core = systems["ours-pubsub"], systems["ours-core"]
    header = [
        "figure",
        "core (RedisChannelLayer)",
        "pubsub (RedisPubSubChannelLayer)",
        "core/pubsub",
    ]
    body = []
    for rate in summary["plan"]["fwd_rates"]:
        for key, label in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            a = core["rates"].get(rate, {}).get(key)
            b = pub["rates"].get(rate, {}).get(key)
            body.append([f"forward {rate}/s {label} ms", _f(a), _f(b), _ratio(a, b)])
        body.append(
            [
                f"forward {rate}/s lost/reordered",
                _loss(core["rates"].get(rate)),
                _loss(pub["rates"].get(rate)),
                "",
            ]
        )
    for key, label in (
        ("server_cpu_us", "server CPU us/msg @1k/s"),
        ("redis_cpu_us", "Redis CPU us/msg @1k/s"),
    ):
        a = core["rates"].get(1000, {}).get(key)
        b = pub["rates"].get(1000, {}).get(key)
        body.append([label, _f(a, "{:.0f}"), _f(b, "{:.0f}"), _ratio(a, b)])
    a, b = _max(core, "tput2"), _max(pub, "tput2")
    body.append(
        [
            "max OK msgs/s, rooms of 2",
            _tput(core.get("tput2")),
            _tput(pub.get("tput2")),
            _ratio(a, b),
        ]
    )
    for key, label in (
        ("seq_p50", "join idle p50 ms"),
        ("seq_p99", "join idle p99 ms"),
        ("burst_p50", "join in burst p50 ms"),
        ("burst_p99", "join in burst p99 ms"),
    ):
        a, b = core.get("join", {}).get(key), pub.get("join", {}).get(key)
        body.append([label, _f(a), _f(b), _ratio(a, b)])
    fails = [
        f"{n}: {s['tput2']['why']}"
        for n, s in (("core", core), ("pubsub", pub))
        if s.get("tput2", {}).get("why")
    ]
    text = [
        "## Channel layer: core vs pub/sub",
        "",
        "Our server, same code, same run, `CHANNEL_LAYER=core` (channels_redis.core."
        "RedisChannelLayer: per-process channel lists polled with BZPOPMIN) against "
        "`CHANNEL_LAYER=pubsub` (channels_redis.pubsub.RedisPubSubChannelLayer: one "
        "SUBSCRIBE per channel, PUBLISH per send). Workload: rooms of two with the peers on "
        "different workers, targeted `offer`/`candidate` sends, and the joins below.",
        "",
        markdown_table(header, body),
        "",
    ]
    if fails:
        text += ["Where the ramp stopped: " + "; ".join(fails) + ".", ""]
    return "\n".join(text)


def _client_note(summary: dict) -> str:
    hot = [
        f"`{n}` at {r}/s ({row['client_cpu_pct']:.0f} %)"
        for n, s in summary["systems"].items()
        for r, row in s["rates"].items()
        if row.get("client_cpu_pct", 0) > 90
    ]
    if hot:
        return "**The load client saturated a core** in: " + ", ".join(hot) + "."
    return "The load client did not saturate a core in any fixed-rate step."


def write_docs(results: dict, summary: dict) -> Path:
    m = results["machine"]
    plan = summary["plan"]
    header, body = rows(summary)
    history = ""
    if DOCS.exists():
        found = HISTORY.search(DOCS.read_text())
        history = found.group(0) if found else ""
    if not history:
        history = "<!-- history:start -->\n_(none recorded yet)_\n<!-- history:end -->"
    plotted = plot(summary)
    lines = [
        "# Signaling benchmark",
        "",
        "_Regenerated by the benchmark (`make bench` / `make bench-full`, i.e. "
        '`python -m bench --quick|--full`), not typed by hand. The section "Tuning history" is '
        "the only hand-written part: it is carried over between runs._",
        "",
        "## Machine and run",
        "",
        f"- {m['date']}; {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM; "
        f"Linux {m['kernel']}",
        f"- Python {m['python']}, Node {m['node']}, Redis {m['redis']}, PostgreSQL {m['postgres']}",
        "- " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- mode `{plan['mode']}`, {plan['reps']} repetition(s) (figures are medians over them), "
        f"{plan['shards']} load-client process(es), run took {results['elapsed_s']:.0f} s, "
        f"load average at the end {', '.join(f'{x:.1f}' for x in m['loadavg_at_end'])}",
        "",
        *(
            [f"- our server's environment overridden: `{results['server_env']}`", ""]
            if results.get("server_env")
            else []
        ),
        *(
            [
                f"**The machine was busy**: load average {m['loadavg_at_start'][0]:.1f} before "
                "the run (other processes shared the two cores); treat these figures as noisy "
                "and compare systems only within this run.",
                "",
            ]
            if m.get("loadavg_at_start", (0,))[0] > 0.75 * (m.get("cores") or 1)
            else []
        ),
        "Everything runs on this one machine over 127.0.0.1: each system's two server "
        "processes, the one Redis they share, PostgreSQL (our server only) and the load client. "
        "The client is the same code for every system (picows on uvloop; bench/client.py); "
        "it speaks socket.io's wire format to the Node peer over the same raw WebSocket.",
        "",
        "Systems (each two processes + the same Redis):",
        "",
    ]
    lines += [f"- `{n}`: {summary['labels'].get(n, n)}" for n in summary["systems"]]
    lines += [
        "",
        "## Workloads",
        "",
        f"- **forward**: {plan['fwd_rooms']} rooms of two, the peers of each room on different "
        "workers, both peers sending to each other open-loop at a fixed total rate "
        f"({', '.join(str(r) for r in plan['fwd_rates'])} msgs/s, {plan['fwd_duration']:g} s "
        f"each); one message in {plan['offer_every']} is a ~5 KB Chromium offer, the "
        "rest ~250 B candidates. One-way latency from the send to the recipient's receive "
        "(same client process, CLOCK_MONOTONIC); loss counted per sender, reordering per "
        "sender and recipient "
        "(sequence numbers in the payload); lost = not delivered within "
        f"{plan.get('drain', 5):g} s after the step's last send. With few samples p99.9 is "
        "the maximum. An `error` frame from the server during a step fails the step.",
        "- **throughput**: the same workload with rates "
        f"{', '.join(str(r) for r in plan['tput_rates'])} msgs/s ({plan['tput_duration']:g} s "
        "each), stopping at the first step with p99 > 50 ms, any loss, a closed socket, or a "
        f"client that could not send at the rate; the same in {plan['tput_rooms6']} rooms of "
        "six (every peer sends to the others in turn). `>=` means the last step passed, `<` "
        "that the first failed.",
        "- **first joins**: right after every worker's `/readyz` answered 200 (as a proxy "
        "would wait), one create on the first worker and one join on the second.\n"
        f"- **join**: {plan['join_seq']} sequential create+join pairs (socket open to "
        "`joined`; every socket signs in with a session of its own, which our server finds "
        "in Redis as right after a login: cached_db writes through, and the bench puts the "
        "sessions back after the flush before each system's turn); then "
        f"{plan['burst_rooms']} rooms created and "
        f"{plan['burst_rooms'] * plan['burst_per_room']} joins started at once.",
        "- **storm**: "
        + "; ".join(f"{r} rooms of {n}" for r, n in plan.get("storm", []))
        + ". Each room's owner creates it; then all other members of all rooms open their "
        "sockets and join at once (spread over both workers). Each newcomer sends every "
        "peer `joined` listed a ~5 KB offer and "
        f"{plan.get('storm_candidates', 4)} candidates; each peer that gets an offer answers "
        "(as large) with as many candidates. A room is negotiated when every pair has both "
        "SDPs and all candidates; the figure is the time from the start to that, per room "
        "(bench/storm.py). Failed: rooms not negotiated within "
        f"{plan.get('storm_within', 30):g} s; CPU: the two server processes over the step.",
        f"- **idle**: {2 * plan['idle_pairs']} sockets joined in rooms of two across both "
        "workers and held; server memory is the growth of the two processes' RSS "
        "(/proc/PID/status), Redis the growth of INFO used_memory, divided by the sockets "
        "(Redis is shared with anything else on the machine, so small or negative values are "
        "noise).",
        "- **CPU**: utime+stime of the two server processes (/proc/PID/stat) and Redis "
        "(INFO cpu) over the 1,000 msgs/s step, divided by the messages delivered.",
        "",
        "## Results",
        "",
        markdown_table(header, body),
        "",
    ]
    errors = [(n, e) for n, s in summary["systems"].items() for e in s["errors"]]
    if errors:
        lines += ["Errors during the run:", ""] + [f"- `{n}`: {e}" for n, e in errors] + [""]
    stops = [
        (n, k, s[k]["why"])
        for n, s in summary["systems"].items()
        for k in ("tput2", "tput6")
        if s.get(k, {}).get("why")
    ]
    if stops:
        lines += ["Where each throughput ramp stopped:", ""]
        lines += [
            f"- `{n}` {'rooms of 2' if k == 'tput2' else 'rooms of 6'}: {w}" for n, k, w in stops
        ]
        lines += [""]
    if plotted:
        lines += ["![latency vs offered rate](img/latency-vs-rate.png)", ""]
    tgt = targets(summary)
    if tgt:
        lines += [
            "## Issue 6 targets (our server, pub/sub layer)",
            "",
            markdown_table(["target", "this run", "met"], [list(t) for t in tgt]),
            "",
        ]
    perf = performance_targets(summary)
    if perf:
        lines += [
            "## Issue 15 targets (our server against socket.io, this run)",
            "",
            markdown_table(["target", "this run", "met"], [list(t) for t in perf]),
            "",
            "Where a target is not met, the tuning history below says what is left and why.",
            "",
        ]
    section = layer_section(summary)
    if section:
        lines += [section]
    lines += [
        "## Client load",
        "",
        markdown_table(
            ["system", *(f"client CPU % @{r}/s" for r in plan["fwd_rates"])],
            [
                [
                    n,
                    *(
                        _f(s["rates"].get(r, {}).get("client_cpu_pct"), "{:.0f}")
                        for r in plan["fwd_rates"]
                    ),
                ]
                for n, s in summary["systems"].items()
            ],
        ),
        "",
        _client_note(summary),
        "",
        "CPU of the busiest load-client process over the sending time (100 = one core). "
        "Near 100 the client, not the server, limits the rate; add client processes "
        "(`--shards`), knowing they share the same two cores with the servers.",
        "",
        "## How to run",
        "",
        "- `make bench` (`python -m bench --quick`): all systems, small sizes, one repetition; "
        "prints the table, keeps raw JSON and server logs in `var/bench/`; add `--docs` to "
        "rewrite this page from it.",
        "- `make bench-full` (`python -m bench --full`): the whole matrix, three repetitions, "
        "rewrites this page and the plot.",
        "- `--systems ours-pubsub,relay` picks systems; `--server-env KEY=VALUE` runs our "
        "server with a setting changed (A/B without editing); `--profile ours-pubsub "
        "[--profile-workload join]` records both workers with py-spy under load and prints "
        "where the time goes.",
        "- `--variant off:SERVER_UVLOOP=false` (repeatable) adds our server with those "
        "settings as system `ours-off`, run in every repetition next to the others (A/B/A/B "
        "in the same minutes); `--workloads forward,join`, `--rates`, `--duration` and "
        "`--ramp` narrow the run to what the A/B is about. Every speed-up of transport/ has "
        'such a switch (docs/architecture.md, "Transport").',
        "- A code change is A/B-ed the same way with `--ref REV` (repeatable): our server as of "
        "that git revision, as system `ours-at-REV`, interleaved with the others.",
        "- `python -m bench.memory [--sockets 1000]`: one worker under tracemalloc, what an "
        "idle joined socket holds by package, source file and object type.",
        "- Needs Redis at 127.0.0.1:6379 (database "
        f"{REDIS_DB} is flushed), PostgreSQL at 127.0.0.1:5432 (a throwaway database is "
        "created and dropped), Node + npm (the socket.io peer is `npm ci`-ed on first use); "
        "`bench/requirements.txt` is pip-installed into the venv when missing.",
        "",
        "## Tuning history",
        "",
        history,
        "",
    ]
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text("\n".join(lines))
    return DOCS
