"""Call quality from real browsers: each Chromium reports its pair, the server stores it.

The tests read the workers' SQLite database (read-only) and poll it until the
reports are there: a barrier with a timeout, never a sleep.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import FORCE_RELAY, Person, Stack, wait_until

pytestmark = pytest.mark.e2e

COLUMNS = (
    "final",
    "state",
    "local_candidate_type",
    "remote_candidate_type",
    "protocol",
    "relay_protocol",
    "rtt_ms",
    "first_frame_ms",
    "bitrate_in_kbps",
    "bitrate_out_kbps",
    "packets_in",
    "packets_lost_in",
    "packets_out",
    "packets_lost_out",
    "frames_decoded",
    "frames_dropped",
    "ice_restarts",
    "ice_failed",
    "ice_disconnected_timeouts",
)
CANDIDATE_TYPES = {"host", "srflx", "prflx", "relay"}


def stored_reports(stack: Stack, reporter: str, remote: str) -> dict[bool, dict[str, Any]]:
    """The reports `reporter` stored about `remote`, by kind (False: live, True: final)."""
    columns = ", ".join(f"q.{name}" for name in COLUMNS)
    with sqlite3.connect(f"file:{stack.db}?mode=ro", uri=True, timeout=2) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            f"SELECT {columns}, q.remote_id IS NOT NULL AS remote_known"  # noqa: S608 - constants
            " FROM rooms_callquality q JOIN rooms_participant p ON p.id = q.participant_id"
            " WHERE p.peer_id = ? AND q.remote_peer_id = ?",
            (reporter, remote),
        ).fetchall()
    return {bool(row["final"]): {**dict(row), "final": bool(row["final"])} for row in rows}


def wait_report(stack: Stack, me: Person, other: Person, *, final: bool, timeout: float = 40):
    """Poll the database until `me`'s report about `other` shows a working pair with video.

    With bitrates, so not the first report (sent at the first frame, with no
    interval before it to measure them over) but the one 10 s after.
    """
    reporter, remote = me.peer_id(), other.peer_id()

    def ready() -> dict[str, Any] | None:
        row = stored_reports(stack, reporter, remote).get(final)
        if (
            row
            and row["rtt_ms"] is not None
            and (row["frames_decoded"] or 0) > 0
            and row["bitrate_in_kbps"] is not None
            and row["bitrate_out_kbps"] is not None
        ):
            return row
        return None

    row = wait_until(
        ready, timeout=timeout, what=f"{me.username}'s {'final' if final else 'live'} report"
    )
    print(f"{me.username} -> {other.username} ({'final' if final else 'live'}): {row}")
    return row


def two_in_a_call(people, base_url: str | None = None) -> tuple[Person, Person]:
    alice, bob = people("alice", base_url=base_url), people("bob", base_url=base_url)
    number = alice.create_room(name="Quality")
    alice.press_join()
    alice.wait_in_call()
    bob.enter(number)
    for me in (alice, bob):
        me.wait_remote_videos(1)
    return alice, bob


def assert_working(row: dict[str, Any], *, final: bool) -> None:
    assert row["final"] is final
    assert row["state"] == "connected", row
    assert row["local_candidate_type"] in CANDIDATE_TYPES, row
    assert row["remote_candidate_type"] in CANDIDATE_TYPES, row
    assert row["protocol"] == "udp", row
    assert row["rtt_ms"] >= 0
    assert row["frames_decoded"] > 0
    assert 0 <= row["first_frame_ms"] < 30_000, row
    assert row["packets_in"] > 0
    assert row["packets_out"] > 0
    # Fake camera and microphone, on loopback: at least some tens of kbit/s each way.
    assert row["bitrate_in_kbps"] > 20, row
    assert row["bitrate_out_kbps"] > 20, row
    assert row["remote_known"] == 1


def test_both_browsers_report_their_pair_during_and_at_the_end_of_the_call(people, stack: Stack):
    """Each side's live report is stored (pair, RTT, frames); leaving stores both final ones."""
    alice, bob = two_in_a_call(people)
    live = {}
    for me, other in ((alice, bob), (bob, alice)):
        row = live[me.username] = wait_report(stack, me, other, final=False)
        assert_working(row, final=False)
        expected = "relay" if FORCE_RELAY else "host"
        assert (row["local_candidate_type"], row["remote_candidate_type"]) == (expected, expected)
        assert row["relay_protocol"] == ("udp" if FORCE_RELAY else "")
        assert row["ice_restarts"] == 0
    alice_id, bob_id = alice.peer_id(), bob.peer_id()

    # Bob leaves: his final report goes before his `leave`; Alice's as his tile goes.
    bob.page.get_by_test_id("leave").click()
    expect(alice.tiles()).to_have_count(0)
    for me, reporter, remote in ((bob, bob_id, alice_id), (alice, alice_id, bob_id)):
        final = wait_until(
            lambda reporter=reporter, remote=remote: stored_reports(stack, reporter, remote).get(
                True
            ),
            timeout=20,
            what=f"{me.username}'s final report",
        )
        print(f"{me.username} (final): {final}")
        assert_working(final, final=True)
        # Counters only grow: the final report is at least as far on as the live one was.
        assert final["frames_decoded"] >= live[me.username]["frames_decoded"]
        assert final["packets_in"] >= live[me.username]["packets_in"]
        # One live and one final row per pair, no more.
        assert set(stored_reports(stack, reporter, remote)) == {False, True}


def test_a_relay_only_call_is_reported_as_relayed(people, stack: Stack):
    """Through coturn (ICE policy relay), both stored reports say relay at both ends, over udp."""
    alice, bob = two_in_a_call(people, base_url=stack.relay)
    for me, other in ((alice, bob), (bob, alice)):
        row = wait_report(stack, me, other, final=False)
        assert_working(row, final=False)
        assert row["local_candidate_type"] == "relay", row
        assert row["remote_candidate_type"] == "relay", row
        # The relay worker hands out turn:...?transport=udp: the relay is reached over UDP.
        assert row["relay_protocol"] == "udp", row
