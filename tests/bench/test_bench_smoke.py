"""Smoke test of bench/: a tiny run against real systems reports numbers (no timed assertion)."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def systems() -> list[str]:
    names = ["ours-pubsub", "relay"]
    if shutil.which("node") and shutil.which("npm"):
        names.append("socketio")
    return names


def test_tiny_run_reports_numbers_for_every_system(tmp_path):
    """A tiny bench run forwards, joins, holds sockets and storms rooms on each system."""
    names = systems()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--tiny",
            "--no-docs",
            "--out",
            str(tmp_path),
            "--systems",
            ",".join(names),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "forward 100/s p50 ms" in proc.stdout
    (raw,) = tmp_path.glob("results-tiny-*.json")
    results = json.loads(raw.read_text())
    assert sorted(results["systems"]) == sorted(names)
    for name, reps in results["systems"].items():
        (rep,) = reps
        assert rep["errors"] == [], (name, rep["errors"])
        for step in rep["forward"]["rates"]:
            assert step["sent"] > 0 and step["received"] == step["sent"], (name, step)
            assert step["lost"] == 0 and step["closed"] == 0, (name, step)
            assert math.isfinite(step["p50"]) and step["p50"] > 0, (name, step)
            assert step["server_cpu_us"] >= 0, (name, step)
        assert rep["forward"]["tput2"]["steps"], name
        assert rep["rooms6"]["tput6"]["steps"], name
        assert rep["join"]["seq_n"] > 0 and rep["join"]["seq_p50"] > 0, (name, rep["join"])
        assert rep["join"]["burst_failed"] == 0, (name, rep["join"])
        assert rep["idle"]["open"] == rep["idle"]["target"], (name, rep["idle"])
        for key, step in rep["storm"].items():
            assert step["negotiated"] == step["rooms"], (name, key, step)


def test_tiny_room_storm_negotiates_every_room_on_every_system(tmp_path):
    """A tiny room storm (rooms of 12 and of 4) negotiates every pair of every room, everywhere."""
    names = systems()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--tiny",
            "--no-docs",
            "--workloads",
            "storm",
            "--out",
            str(tmp_path),
            "--systems",
            ",".join(names),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "storm 1 rooms of 12: room p99 ms" in proc.stdout
    (raw,) = tmp_path.glob("results-tiny-*.json")
    results = json.loads(raw.read_text())
    assert sorted(results["systems"]) == sorted(names)
    for name, reps in results["systems"].items():
        (rep,) = reps
        assert rep["errors"] == [], (name, rep["errors"])
        assert sorted(rep["storm"]) == ["1x12", "2x4"], name
        for key, step in rep["storm"].items():
            assert step["negotiated"] == step["rooms"], (name, key, step)
            assert step["failed_joins"] == 0 and step["server_errors"] == {}, (name, key, step)
            assert math.isfinite(step["room_p99"]) and step["room_p99"] > 0, (name, key, step)
            assert step["server_cpu_s"] >= 0, (name, key, step)
