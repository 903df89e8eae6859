"""Issue 15's targets table (bench/report.py) from a summary: each ratio and verdict exactly."""

from bench.report import performance_targets


def system(**parts) -> dict:
    base = {
        "rates": {1000: {"server_cpu_us": parts.pop("cpu", 400)}},
        "join": {
            "seq_p50": parts.pop("join_p50", 2.0),
            "burst_took": parts.pop("burst_took", 1.0),
            "burst_failed": parts.pop("burst_failed", 0),
            "burst_n": parts.pop("burst_n", 1000),
        },
        "idle": {
            "kib_per_conn": parts.pop("kib", 10.0),
            "open": parts.pop("held", 10_000),
            "target": 10_000,
        },
        "tput2": {"max_ok": parts.pop("tput", 6000), "capped": False},
        "storm": {
            "50x12": {
                "failed_rooms": parts.pop("storm_failed", 0),
                "negotiated": 50,
                "room_p99": parts.pop("storm_p99", 500.0),
            }
        },
    }
    if "first" in parts:
        base["first"] = parts.pop("first")
    assert not parts, parts
    return base


def summary(ours: dict, socketio: dict, mode: str = "full") -> dict:
    return {
        "plan": {"mode": mode, "storm": [[50, 12], [150, 4]]},
        "systems": {"ours-pubsub": ours, "socketio": socketio},
    }


def verdicts(rows) -> dict[str, tuple[str, str]]:
    return {target: (figure, met) for target, figure, met in rows}


def test_every_target_met_at_its_bound():
    ours = system(
        join_p50=3.0,
        burst_took=1.5,
        kib=15.0,
        cpu=400,
        tput=6000,
        storm_p99=500.0,
        first={"create_ms": 6.0, "join_ms": 5.0},
    )
    got = verdicts(performance_targets(summary(ours, system())))
    assert got == {
        "join p50 <= 1.5x socket.io's": ("3.0 vs 2.0 ms = 1.50x", "yes"),
        "the first create and join after ready within 2x the join p50": (
            "6.0 / 5.0 ms vs p50 3.0 ms = 2.00x",
            "yes",
        ),
        "1000 joins at once: <= 1.5x socket.io's time, none failed": (
            "1.50 vs 1.00 s = 1.50x, 0 failed",
            "yes",
        ),
        "idle joined socket <= 1.5x socket.io's memory; 10,000 held": (
            "15.0 vs 10.0 KiB = 1.50x; 10000 held",
            "yes",
        ),
        "server CPU per forwarded message at 1,000/s <= 1.0x socket.io's": (
            "400 vs 400 us = 1.00x",
            "yes",
        ),
        "throughput at p99 < 50 ms, rooms of 2, >= 1.0x socket.io's": (
            "6000 vs 6000 msgs/s = 1.00x",
            "yes",
        ),
        "storm: 50 rooms of 12 negotiated, p99 per room < 1 s, <= socket.io's": (
            "50/50 rooms, p99 500 vs 500 ms = 1.00x",
            "yes",
        ),
    }


def test_each_target_missed_just_past_its_bound():
    ours = system(
        join_p50=3.1,
        burst_took=1.0,
        burst_failed=1,
        kib=15.1,
        cpu=401,
        tput=5000,
        storm_p99=501.0,
        first={"create_ms": 6.3, "join_ms": 5.0},
    )
    got = verdicts(performance_targets(summary(ours, system())))
    assert {target: met for target, (_, met) in got.items()} == dict.fromkeys(got, "**no**")
    assert len(got) == 7


def test_a_quick_run_says_where_it_is_too_small_to_tell():
    """Quick sizes: the burst, the idle sockets and the storm are not judged."""
    ours = system(burst_n=200, held=500)
    ours["idle"]["target"] = 500
    got = verdicts(performance_targets(summary(ours, system(), mode="quick")))
    small = "not at this size (run --full)"
    assert got["200 joins at once: <= 1.5x socket.io's time, none failed"][1] == small
    assert got["idle joined socket <= 1.5x socket.io's memory; 10,000 held"][1] == small
    assert got["join p50 <= 1.5x socket.io's"][1] == "yes"


def test_without_socketio_in_the_run_there_is_nothing_to_compare():
    assert (
        performance_targets({"plan": {"mode": "full"}, "systems": {"ours-pubsub": system()}}) == []
    )
