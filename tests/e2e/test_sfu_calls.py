"""Calls through Janus on the real site: SFU rooms, the mesh-to-SFU handover, failures.

Real Chromium pages on workers configured with a real Janus (the `sfu`
fixture in conftest.py), all inside tests/e2e/run's loopback-only network
namespace. Figures the docs quote are printed as FIGURE lines.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Person, wait_until

pytestmark = pytest.mark.e2e

SERVER = "Through the server (SFU): encrypted to the server, not end to end"
DIRECT = "Direct: peer to peer, end-to-end encrypted"


def figure(capsys, text: str) -> None:
    """A figure the docs quote: printed even when the test passes."""
    with capsys.disabled():
        print(f"\n{text}")


def enter_all(number: str, people: list[Person]) -> None:
    for person in people:
        person.enter(number)


def outbound_video(person: Person) -> list[dict]:
    return person.page.evaluate("() => window.__e2e.outboundVideo()")


def sfu_connections_only(person: Person) -> bool:
    """Only the SFU's two connections are left (the direct ones closed)."""
    return person.page.evaluate("() => window.__e2e.connectionCount()") == 2


def test_six_people_in_an_sfu_room_see_everyone_and_each_send_one_stream(people, sfu):
    """Six in an `sfu` room: all videos play everywhere; each browser sends one simulcast stream."""
    alice = people("alice", base_url=sfu.main[0])
    number = alice.create_room(name="Big call", capacity=12, media="sfu")
    alice.press_join()
    alice.wait_in_call()
    names = ["bob", "carol", "dave", "erin", "frank"]
    others = [people(name, base_url=sfu.main[(i + 1) % 2]) for i, name in enumerate(names)]
    enter_all(number, others)
    everyone = [alice, *others]
    for person in everyone:
        expect(person.page.get_by_test_id("media-path")).to_have_text(SERVER)
    for person in everyone:
        person.wait_remote_videos(5, timeout=60)
    for person in everyone:
        sent = wait_until(
            lambda p=person: (
                (s := outbound_video(p)) and sum(1 for o in s if o["framesSent"] > 0) >= 2 and s
            ),
            timeout=20,
            what=f"{person.username} sending two simulcast layers",
        )
        # One connection, one m-line: the same stream, in at most three layers.
        assert len({(o["pc"], o["mid"]) for o in sent}) == 1, sent
        assert len(sent) <= 3 and len({o["rid"] for o in sent}) == len(sent), sent
    # Janus has all six, each publishing, named by their peer ids.
    listed = sfu.participants(sfu.room_pk(number))
    assert sorted(p["display"] for p in listed) == sorted(p.peer_id() for p in everyone)
    assert all(p["publisher"] for p in listed)


def one_camera(person: Person) -> bool:
    """The page sends one camera: its simulcast layers on one m-line of one connection."""
    sent = [o for o in outbound_video(person) if o["framesSent"] > 0]
    return bool(sent) and len({(o["pc"], o["mid"]) for o in sent}) == 1 and len(sent) <= 3


def test_auto_room_hands_over_to_the_sfu_when_a_fifth_joins(people, sfu, capsys):
    """Four in mesh; a fifth joins: all on the SFU, one camera each, no frozen tile; one leaves."""
    alice = people("alice", base_url=sfu.main[0])
    number = alice.create_room(name="Growing", capacity=8)
    alice.press_join()
    alice.wait_in_call()
    first = [alice] + [
        people(name, base_url=sfu.main[i % 2]) for i, name in enumerate(["bob", "carol", "dave"])
    ]
    enter_all(number, first[1:])
    for person in first:
        person.wait_remote_videos(3, timeout=40)
        expect(person.page.get_by_test_id("media-path")).to_have_text(DIRECT)
        # Mesh: one connection per other person.
        assert person.page.evaluate("() => window.__e2e.connectionCount()") == 3
    for person in first:
        person.page.evaluate("() => window.__e2e.watchFrames()")
    before = {p.username: set(p.remote_peer_ids()) for p in first}
    erin = people("erin", base_url=sfu.main[1])
    erin.open_room(number)
    erin.page.evaluate("() => window.__e2e.watchFirstFrames()")
    pressed = erin.page.evaluate("() => performance.now()")
    started = time.monotonic()
    erin.press_join()
    erin.wait_in_call()
    everyone = [*first, erin]
    for person in everyone:
        expect(person.page.get_by_test_id("media-path")).to_have_text(SERVER)
    told = time.monotonic() - started
    for person in everyone:
        person.wait_remote_videos(4, timeout=40)
    playing = time.monotonic() - started
    firsts = erin.page.evaluate("window.__e2e.firstFrames()")
    newcomer = {peer: round(at - pressed) for peer, at in firsts.items()}
    for person in everyone:
        wait_until(
            lambda p=person: sfu_connections_only(p) and one_camera(p),
            timeout=40,
            what=f"{person.username} on the SFU only, sending one camera",
        )
    switched = time.monotonic() - started
    # The tiles that were there before the switch (Erin's own is new, not frozen).
    gaps = {
        p.username: {
            peer: gap
            for peer, gap in p.page.evaluate("() => window.__e2e.frameGaps()").items()
            if peer in before[p.username]
        }
        for p in first
    }
    longest = max(max(g.values()) for g in gaps.values())
    stalls = {p.username: p.page.evaluate("() => window.__e2e.watcherStall()") for p in first}
    figure(
        capsys,
        f"FIGURE handover: longest tile without a new frame {longest} ms (4 people, 3 tiles"
        f" each); all told {told:.1f} s, all playing via SFU {playing:.1f} s, direct links"
        f" closed {switched:.1f} s after the fifth joined; the newcomer's first frame of each"
        f" (ms after pressing Join) {sorted(newcomer.values())}; per person {gaps};"
        f" longest main-thread stall per page (CPU) {stalls}",
    )
    assert sorted(newcomer) == sorted(p.peer_id() for p in first)
    # No tile may go a second without a frame, beyond what the pages at its two
    # ends stalled (a starved shared CPU: then nothing on the receiving page
    # moves, and the sending page encodes nothing; the watcher cannot tell when
    # frames came).
    whose = {p.peer_id(): p.username for p in first}
    for person, tiles in gaps.items():
        for peer, gap in tiles.items():
            allowed = max(1000, max(stalls[person], stalls[whose[peer]]) + 500)
            assert gap <= allowed, (person, whose[peer], tiles, stalls)

    # Someone leaves: everyone else shows exactly the people left, all playing.
    dave = first[3]
    gone = dave.peer_id()
    dave.page.get_by_test_id("leave").click()
    rest = [alice, first[1], first[2], erin]
    for person in rest:
        person.wait_remote_videos(3, timeout=20)
        expected = {p.peer_id() for p in rest if p is not person}
        assert set(person.remote_peer_ids()) == expected, (person.username, gone)
        assert sfu_connections_only(person) and one_camera(person)


def test_a_receiving_connection_stuck_connecting_is_replaced_and_plays(people, sfu):
    """The SFU's first offer to Bob reaches no ICE agent: his watchdog asks anew; Alice plays."""
    alice = people("alice", base_url=sfu.main[0])
    number = alice.create_room(name="Stuck", media="sfu")
    alice.press_join()
    alice.wait_in_call()
    bob = people("bob", base_url=sfu.main[1])
    bob.open_room(number)
    bob.page.evaluate("() => window.__e2e.sabotageNextSubscription()")
    bob.press_join()
    bob.wait_in_call()
    # Meanwhile the tile says how far it got, never a silent frozen picture.
    expect(bob.tile_of(alice)).to_contain_text("Connecting…")
    bob.wait_remote_videos(1, timeout=40)
    alice.wait_remote_videos(1, timeout=10)
    asked = bob.page.evaluate("window.__e2e.sent.filter((m) => m.type === 'sfu-resubscribe')")
    assert [m["iceRestart"] for m in asked] == [False]
    # Taken, not refused (the server's own watchdog, 30 s later, is not what saved it).
    assert bob.page.evaluate("window.__e2e.receivedOf('error')") == []
    fresh = bob.page.evaluate("window.__e2e.receivedOf('sfu-offer').filter((m) => m.fresh).length")
    assert fresh == 2
    assert sfu_connections_only(bob)


def sfu_call(
    people, sfu, names: list[str], *, base_urls: list[str] | None = None
) -> tuple[str, list[Person]]:
    """An `sfu` room with `names` in it (the first creates it), every video playing."""
    urls = base_urls or [sfu.main[i % 2] for i in range(len(names))]
    owner = people(names[0], base_url=urls[0])
    number = owner.create_room(name="SFU call", media="sfu")
    owner.press_join()
    owner.wait_in_call()
    others = [people(name, base_url=url) for name, url in zip(names[1:], urls[1:], strict=True)]
    enter_all(number, others)
    everyone = [owner, *others]
    for person in everyone:
        person.wait_remote_videos(len(names) - 1, timeout=40)
    return number, everyone


def test_the_owner_pins_direct_and_the_call_leaves_the_sfu(people, sfu):
    """Three through the SFU; the owner pins `mesh`: all call directly, Janus keeps nobody."""
    number, everyone = sfu_call(people, sfu, ["alice", "bob", "carol"])
    room_pk = sfu.room_pk(number)
    for person in everyone:
        person.page.evaluate("() => window.__e2e.watchFrames()")
    # Only the owner has the control; she picks "Direct".
    expect(everyone[1].page.get_by_test_id("media-mode")).to_be_hidden()
    control = everyone[0].page.get_by_test_id("media-mode")
    expect(control).to_have_value("sfu")
    control.select_option("mesh")
    for person in everyone:
        expect(person.page.get_by_test_id("media-path")).to_have_text(DIRECT, timeout=15000)
    for person in everyone:
        wait_until(
            lambda p=person: (
                p.page.evaluate("() => window.__e2e.connectionCount()") == 2
                and {c["peerId"] for c in p.peers()} == set(p.remote_peer_ids())
            ),
            timeout=30,
            what=f"{person.username} on two direct links only",
        )
        person.wait_remote_videos(2, timeout=20)
        sent = person.page.evaluate("window.__e2e.sent.map((m) => m.type)")
        assert sent.count("sfu-leave") == 1
    wait_until(lambda: sfu.participants(room_pk) == [], timeout=10, what="Janus without them")
    expect(control).to_have_value("mesh")
    stalls = {p.username: p.page.evaluate("() => window.__e2e.watcherStall()") for p in everyone}
    for person in everyone:
        gaps = person.page.evaluate("() => window.__e2e.frameGaps()")
        assert max(gaps.values()) <= max(1500, stalls[person.username] + 500), (
            person.username,
            gaps,
        )


def test_a_dropped_socket_keeps_sfu_media_flowing(people, sfu, capsys):
    """Bob's signaling socket drops mid-call: his SFU connections carry on, frames never stop."""
    number, (alice, bob, carol) = sfu_call(
        people, sfu, ["alice", "bob", "carol"], base_urls=[sfu.main[0], sfu.main[0], sfu.main[1]]
    )
    listed_before = {p["display"]: p["id"] for p in sfu.participants(sfu.room_pk(number))}
    for person in (alice, bob, carol):
        person.page.evaluate("() => window.__e2e.watchFrames()")
    connections = bob.page.evaluate("() => window.__e2e.connections().length")
    bob.page.evaluate("window.__e2e.dropSignaling()")
    bob.page.wait_for_function(
        "() => window.__e2e.receivedOf('joined').length >= 2 && window.__e2e.openSockets() === 1"
    )
    assert bob.page.evaluate("window.__e2e.receivedOf('sfu-restart')") == []
    # Across the drop and after it, every picture kept coming on the same connections.
    for person in (alice, bob, carol):
        person.wait_remote_videos(2, timeout=15)
    assert bob.page.evaluate("() => window.__e2e.connections().length") == connections
    assert sfu_connections_only(bob)
    three = (alice, bob, carol)
    stalls = {p.username: p.page.evaluate("() => window.__e2e.watcherStall()") for p in three}
    gaps = {p.username: p.page.evaluate("() => window.__e2e.frameGaps()") for p in three}
    figure(capsys, f"FIGURE socket drop through the SFU: longest tile without a new frame {gaps}")
    for person in (alice, bob, carol):
        allowed = max(1000, stalls[person.username] + 500)
        assert max(gaps[person.username].values()) <= allowed, (person.username, gaps, stalls)
    # Janus still has the same three publishers (the same feeds, not new ones).
    assert {p["display"]: p["id"] for p in sfu.participants(sfu.room_pk(number))} == listed_before


def test_relay_only_calls_reach_janus_through_coturn(people, sfu):
    """With relay-only ICE, both SFU connections of each browser go through coturn and play."""
    _, everyone = sfu_call(people, sfu, ["alice", "bob"], base_urls=[sfu.relay, sfu.relay])
    for person in everyone:
        kinds = person.page.evaluate(
            """async () => {
                const kinds = [];
                for (const pc of window.__e2e.connections()) {
                    const report = await pc.getStats();
                    report.forEach((s) => {
                        if (s.type === 'transport' && s.selectedCandidatePairId) {
                            const pair = report.get(s.selectedCandidatePairId);
                            kinds.push(report.get(pair.localCandidateId).candidateType);
                        }
                    });
                }
                return kinds;
            }"""
        )
        assert kinds == ["relay", "relay"], (person.username, kinds)


def test_janus_restart_mid_call_recovers_within_10_s(people, sfu, capsys):
    """Janus killed and started again: every video plays again within 10 s, by itself."""
    number, everyone = sfu_call(people, sfu, ["alice", "bob", "carol"])
    sfu.janus.kill()
    sfu.janus.start()
    back = time.monotonic()
    for person in everyone:
        person.wait_remote_videos(2, timeout=10 - (time.monotonic() - back))
    recovered = time.monotonic() - back
    figure(
        capsys,
        f"FIGURE janus restart: every video playing again {recovered:.1f} s after Janus"
        " was back (3 people)",
    )
    assert recovered <= 10
    listed = sfu.participants(sfu.room_pk(number))
    assert sorted(p["display"] for p in listed) == sorted(p.peer_id() for p in everyone)


def test_kick_and_close_end_the_janus_sessions(people, sfu):
    """Kicked: Janus lists the peer no more; closed: Janus has no such room."""
    number, (alice, bob, carol) = sfu_call(people, sfu, ["alice", "bob", "carol"])
    room_pk = sfu.room_pk(number)
    bob_id, alice_id, carol_id = bob.peer_id(), alice.peer_id(), carol.peer_id()
    assert sorted(p["display"] for p in sfu.participants(room_pk)) == sorted(
        [alice_id, bob_id, carol_id]
    )
    alice.page.get_by_test_id("toggle-people").click()
    alice.page.locator(f'[data-testid="kick-button"][data-peer-id="{bob_id}"]').click()
    expect(bob.page.get_by_test_id("ended-message")).to_contain_text("removed you")
    wait_until(
        lambda: (
            sorted(p["display"] for p in sfu.participants(room_pk)) == sorted([alice_id, carol_id])
        ),
        timeout=5,
        what="Janus without the kicked peer",
    )
    for person in (alice, carol):
        person.wait_remote_videos(1, timeout=15)
    alice.page.get_by_test_id("end-for-all").click()
    alice.page.get_by_test_id("end-for-all").click()
    for person in (alice, carol):
        expect(person.page.get_by_test_id("ended-title")).to_have_text("The room was closed")
    wait_until(lambda: not sfu.room_exists(room_pk), timeout=5, what="the Janus room destroyed")


def test_a_dying_worker_leaves_no_publisher_behind(people, sfu, capsys):
    """SIGKILL a worker: its people resume on its successor, Janus lists each person once."""
    number, everyone = sfu_call(
        people, sfu, ["alice", "bob", "carol"], base_urls=[sfu.main[0], sfu.main[0], sfu.main[1]]
    )
    room_pk = sfu.room_pk(number)
    ids = sorted(p.peer_id() for p in everyone)
    sfu.procs["sfu-1"].proc.kill()
    sfu.procs["sfu-1"].proc.wait()
    killed = time.monotonic()
    sfu.restart_worker("sfu-1")
    for person in everyone:
        person.wait_remote_videos(2, timeout=40)
    recovered = time.monotonic() - killed
    # Janus would keep the dead worker's sessions for reclaim_session_timeout
    # (30 s); the successor kicked the stale feeds when it took the seats over.
    listed = sfu.participants(room_pk)
    assert sorted(p["display"] for p in listed) == ids
    assert len(listed) == 3
    figure(
        capsys,
        f"FIGURE worker death: videos back {recovered:.1f} s after SIGKILL (worker"
        f" restarted); Janus lists {len(listed)} participants for 3 people",
    )


def test_sfu_room_refuses_clearly_while_janus_is_down_and_auto_stays_direct(people, sfu):
    """Janus down: joining an `sfu` room says why it cannot; an `auto` room still calls directly."""
    alice = people("alice", base_url=sfu.main[0])
    sfu_number = alice.create_room(name="Needs SFU", media="sfu")
    auto_number = alice.create_room(name="Small")
    sfu.janus.kill()
    try:
        bob = people("bob", base_url=sfu.main[1])
        bob.open_room(sfu_number)
        bob.press_join()
        expect(bob.page.get_by_test_id("join-error")).to_contain_text("media server")
        alice.open_room(auto_number)
        alice.press_join()
        alice.wait_in_call()
        bob.enter(auto_number)
        for person in (alice, bob):
            person.wait_remote_videos(1, timeout=25)
            expect(person.page.get_by_test_id("media-path")).to_have_text(DIRECT)
    finally:
        sfu.janus.start()
