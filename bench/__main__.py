"""Command line: `python -m bench --quick | --full | --tiny [--systems a,b] [--docs]`.

`--full` rewrites docs/benchmarks.md and docs/img/latency-vs-rate.png; `--quick`
only prints (and keeps raw JSON in var/bench/) unless given `--docs`, so that a
quick look never overwrites the full matrix in the docs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALL_SYSTEMS = ["ours-pubsub", "ours-core", "socketio", "relay"]


def ensure_requirements() -> None:
    """Install bench/requirements.txt into this environment if something is missing."""
    missing = [m for m in ("picows", "uvloop", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"bench: installing {', '.join(missing)} from bench/requirements.txt", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "-r",
                str(ROOT / "bench" / "requirements.txt"),
            ],
            check=True,
        )


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """`nouvloop:SERVER_UVLOOP=false,X=1` -> ("nouvloop", {"SERVER_UVLOOP": "false", "X": "1"})."""
    name, _, settings = text.partition(":")
    if not name or not settings:
        raise SystemExit(f"--variant {text!r}: give NAME:KEY=VALUE[,KEY=VALUE]")
    return name, dict(kv.split("=", 1) for kv in settings.split(","))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_const",
        dest="mode",
        const="quick",
        help="short version, under 3 minutes (default)",
    )
    mode.add_argument(
        "--full",
        action="store_const",
        dest="mode",
        const="full",
        help="the whole matrix, 3 repetitions",
    )
    mode.add_argument(
        "--tiny",
        action="store_const",
        dest="mode",
        const="tiny",
        help="seconds-long smoke run (tests/bench)",
    )
    parser.add_argument(
        "--systems", default=None, help=f"comma-separated subset of {','.join(ALL_SYSTEMS)}"
    )
    parser.add_argument("--reps", type=int, default=None, help="override the repetitions")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="also run our server (pubsub layer) as system ours-NAME with these settings; "
        "repeatable, interleaved with the others in every repetition (A/B/A/B)",
    )
    parser.add_argument(
        "--ref",
        action="append",
        default=[],
        metavar="REV",
        help="also run our server as of git revision REV (e.g. HEAD~1) as system ours-at-REV, "
        "interleaved with the others in every repetition: a change against the one before it",
    )
    parser.add_argument(
        "--workloads",
        default=None,
        help="comma-separated subset of forward,rooms6,join,idle,storm (default: all)",
    )
    parser.add_argument(
        "--rates", default=None, help="comma-separated fixed forward rates (msgs/s)"
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds per fixed rate")
    parser.add_argument("--ramp", default=None, help="comma-separated throughput-ramp rates")
    parser.add_argument("--shards", type=int, default=None, help="client processes")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument(
        "--docs",
        action="store_true",
        default=None,
        help="rewrite docs/benchmarks.md and its plot (the default with --full only)",
    )
    docs.add_argument("--no-docs", action="store_false", dest="docs")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "var" / "bench",
        help="where raw results (JSON) and server logs go",
    )
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for our server's processes (repeatable)",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="re-render the table (and with --docs the page) from raw results",
    )
    parser.add_argument("--profile", metavar="SYSTEM", help="py-spy both workers of SYSTEM")
    parser.add_argument("--profile-rate", type=int, default=1000, help="msgs/s while profiling")
    parser.add_argument("--profile-workload", choices=["forward", "join"], default="forward")
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="sample only the thread holding the GIL (Python CPU, not threads waiting on I/O)",
    )
    args = parser.parse_args(argv)
    mode = args.mode or "quick"

    if args.from_json:
        from bench import report

        results = json.loads(args.from_json.read_text())
        summary = report.summarize(results)
        print(report.table(summary))
        if args.docs:
            print(f"wrote {report.write_docs(results, summary).relative_to(ROOT)}")
        return 0
    # A TERM (a timeout, Ctrl-C from make) still stops the servers in `finally` blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ensure_requirements()
    from bench import report
    from bench.runner import Plan, run
    from bench.systems import OurServer, make_systems, server_is_ready

    OurServer.extra_env = dict(kv.split("=", 1) for kv in args.server_env)

    variants = dict(parse_variant(v) for v in args.variant)
    refs = {f"ours-at-{rev}": rev for rev in args.ref}
    if args.systems:
        names = args.systems.split(",")
    else:
        names = ["ours-pubsub"] if variants else list(ALL_SYSTEMS)
    names += [f"ours-{name}" for name in variants]
    names += list(refs)
    if any(n.startswith("ours") for n in names) and not server_is_ready():
        print(
            "bench: `manage.py check` fails; skipping our server",
            file=sys.stderr,
        )
        names = [n for n in names if not n.startswith("ours")]
    plan = Plan.preset(mode)
    if args.reps:
        plan.reps = args.reps
    if args.shards:
        plan.shards = args.shards
    if args.workloads:
        plan.workloads = args.workloads.split(",")
    if args.rates:
        plan.fwd_rates = [int(r) for r in args.rates.split(",")]
    if args.duration:
        plan.fwd_duration = args.duration
    if args.ramp:
        plan.tput_rates = [int(r) for r in args.ramp.split(",")]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = args.out / f"logs-{stamp}"
    if args.profile:
        from bench.profile import profile

        (system,) = make_systems([args.profile], logdir, variants, refs)
        profile(
            system,
            plan,
            args.profile_rate,
            10.0,
            args.profile_workload,
            args.out / f"profile-{stamp}",
            gil=args.profile_gil,
        )
        return 0
    load_at_start = os.getloadavg()
    if load_at_start[0] > 0.75 * (os.cpu_count() or 1):
        print(
            f"bench: warning: load average {load_at_start[0]:.1f} before the run; other "
            "processes share the cores and the figures will be noisy",
            flush=True,
        )
    t0 = time.monotonic()
    results = run(
        plan, make_systems(names, logdir, variants, refs), log=lambda m: print(m, flush=True)
    )
    results["elapsed_s"] = time.monotonic() - t0
    results["machine"] = report.machine()
    results["machine"]["loadavg_at_start"] = load_at_start
    results["server_env"] = OurServer.extra_env
    results["variants"] = variants
    results["refs"] = refs
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"results-{mode}-{stamp}.json"
    raw.write_text(json.dumps(results, indent=1, default=str))
    summary = report.summarize(results)
    print(report.table(summary))
    print(f"\nraw results: {raw.relative_to(ROOT) if raw.is_relative_to(ROOT) else raw}")
    if args.docs if args.docs is not None else mode == "full":
        path = report.write_docs(results, summary)
        print(f"wrote {path.relative_to(ROOT)}")
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    failed = [n for n, reps in results["systems"].items() if any(r.get("errors") for r in reps)]
    return 1 if failed and mode == "tiny" else 0


if __name__ == "__main__":
    sys.exit(main())
