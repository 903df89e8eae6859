"""One seat per person: a second tab taking it over (4409), signing out elsewhere (4401)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Person, Stack, wait_until

pytestmark = pytest.mark.e2e

REPLACED = 4409


def login_url(number: str) -> str:
    return f"/accounts/login/?next=%2Frooms%2F{number}%2F"


def sockets(person: Person) -> dict:
    """The page's signaling sockets (test instrumentation): open now, made so far, close codes."""
    return person.page.evaluate(
        """() => ({open: window.__e2e.openSockets(), made: window.__e2e.sockets.length,
                   closes: window.__e2e.closeCodes(),
                   joined: window.__e2e.receivedOf('joined').length})"""
    )


def expect_continued_elsewhere(person: Person) -> None:
    page = person.page
    expect(page.locator("body")).to_have_attribute("data-phase", "ended")
    expect(page.get_by_test_id("ended-title")).to_have_text("The call continues elsewhere")
    expect(page.get_by_test_id("ended-message")).to_contain_text(
        "You joined this call from another tab or device"
    )
    # The signaling client gave up for good: no retry is pending.
    expect(page.get_by_test_id("signaling-banner")).to_have_attribute("data-state", "closed")


def test_a_second_tab_with_our_resume_token_takes_the_seat_for_good(people):
    """Two tabs holding one resume token: the second takes the peer (4409), the first stays out."""
    alice = people("alice")
    number = alice.create_room(name="Hand over")
    alice.press_join()
    alice.wait_in_call()
    (joined,) = alice.page.evaluate("window.__e2e.receivedOf('joined')")

    # A second tab of the same browser joins with the first tab's resume token
    # (as a duplicated tab of a client that kept it would): the server hands it the peer.
    tab = alice.new_tab()
    tab.open_room(number)
    tab.page.evaluate("(token) => window.__e2e.resumeNextJoinWith(token)", joined["resumeToken"])
    tab.press_join()
    tab.wait_in_call()
    assert tab.peer_id() == joined["peerId"]

    expect_continued_elsewhere(alice)
    before = sockets(alice)
    assert before == {"open": 0, "made": 1, "closes": [REPLACED], "joined": 1}

    # Barrier: someone else joins and has a working call with the new tab.
    # Had the first tab come back, it would have taken the peer back (4409 for the new tab).
    bob = people("bob")
    bob.enter(number)
    for me in (tab, bob):
        me.wait_remote_videos(1)
    expect(bob.tiles()).to_have_count(1)
    expect(bob.tile_of(alice)).to_have_attribute("data-state", "connected")
    assert sockets(alice) == before
    assert sockets(tab) == {"open": 1, "made": 1, "closes": [], "joined": 1}


def test_signed_out_elsewhere_ends_the_call_with_a_way_back_in(people, stack: Stack):
    """4401 in the call: "You were signed out" and a sign-in link; before joining, the login."""
    alice = people("alice")
    # A session of Bob's own: signing it out must not touch the one other tests reuse.
    bob = people("bob", logged_in=False)
    bob.login()
    number = alice.create_room(name="Sign out")
    alice.press_join()
    alice.wait_in_call()
    bob.enter(number)
    bob.wait_remote_videos(1)
    waiting = bob.new_tab()
    waiting.open_room(number)
    expect(waiting.page.get_by_test_id("join-button")).to_be_enabled()

    # Bob signs out in another tab.
    elsewhere = bob.new_tab()
    elsewhere.page.goto(elsewhere.url("/accounts/logout/"))
    elsewhere.page.get_by_test_id("logout-button").click()
    expect(elsewhere.page).to_have_url(f"{stack.main[0]}/accounts/login/")
    # The server says 4401 on the next handshake: drop the call's socket so it reconnects.
    bob.page.evaluate("window.__e2e.dropSignaling()")

    expect(bob.page.get_by_test_id("ended-title")).to_have_text("You were signed out")
    expect(bob.page.get_by_test_id("ended-message")).to_contain_text("Sign in again")
    sign_in = bob.page.get_by_test_id("sign-in")
    expect(sign_in).to_be_visible()
    expect(sign_in).to_have_attribute("href", login_url(number))
    expect(bob.page.get_by_test_id("rejoin")).to_be_hidden()
    assert sockets(bob)["open"] == 0

    # The tab that had not joined yet goes to the login page, and would come back here.
    waiting.press_join()
    expect(waiting.page).to_have_url(f"{stack.main[0]}{login_url(number)}")


def test_the_same_person_joining_from_a_second_tab_takes_the_seat(people):
    """One person, two tabs: the second joins; the first says so and never comes back (4409)."""
    alice = people("alice")
    number = alice.create_room(name="Two tabs")
    alice.press_join()
    alice.wait_in_call()

    tab = alice.new_tab()  # same context: same session, same user
    tab.enter(number)
    expect_continued_elsewhere(alice)
    before = sockets(alice)
    assert before == {"open": 0, "made": 1, "closes": [REPLACED], "joined": 1}

    # Barrier: a third person gets a working call with the new tab, and sees Alice once.
    # Had the first tab come back, it would have taken the seat back (4409 for the new tab).
    bob = people("bob")
    bob.enter(number)
    for me in (tab, bob):
        me.wait_remote_videos(1)
    expect(bob.tiles()).to_have_count(1)
    expect(bob.tile_of(alice)).to_have_attribute("data-state", "connected")
    expect(tab.tiles()).to_have_count(1)
    assert sockets(alice) == before
    assert sockets(tab) == {"open": 1, "made": 1, "closes": [], "joined": 1}


def test_a_duplicated_tab_and_its_original_do_not_take_the_seat_in_turns(people):
    """A duplicated tab (sessionStorage copied) and the original both join: exactly one stays."""
    alice = people("alice")
    number = alice.create_room(name="Duplicated", pin="2468")
    # The PIN is remembered in this tab's sessionStorage; a duplicated tab copies it.
    storage = alice.page.evaluate("Object.entries(sessionStorage)")
    assert storage == [[f"room-pin:{number}", "2468"]]
    twin = alice.new_tab()
    twin.page.goto(twin.url("/"))
    twin.page.evaluate(
        "(entries) => entries.forEach(([key, value]) => sessionStorage.setItem(key, value))",
        storage,
    )
    twin.open_room(number)
    expect(twin.page.get_by_test_id("pin-input")).to_have_value("2468")

    for tab in (alice, twin):
        expect(tab.page.get_by_test_id("join-button")).to_be_enabled(timeout=10000)
    alice.page.get_by_test_id("join-button").click()
    twin.page.get_by_test_id("join-button").click()

    def phases() -> list[str]:
        return [tab.page.locator("body").get_attribute("data-phase") or "" for tab in (alice, twin)]

    wait_until(
        lambda: sorted(phases()) == ["ended", "in-call"], timeout=15, what="one tab in the call"
    )
    stayed, left = (alice, twin) if phases()[0] == "in-call" else (twin, alice)
    expect_continued_elsewhere(left)
    before = sockets(left)
    assert before == {"open": 0, "made": 1, "closes": [REPLACED], "joined": 1}

    # Barrier: a third person gets a working call with the tab that stayed, and
    # sees Alice once; neither tab has moved since.
    bob = people("bob")
    bob.open_room(number)
    bob.page.get_by_test_id("pin-input").fill("2468")
    bob.press_join()
    bob.wait_in_call()
    for me in (stayed, bob):
        me.wait_remote_videos(1)
    expect(bob.tiles()).to_have_count(1)
    expect(bob.tile_of(alice)).to_have_attribute("data-state", "connected")
    assert sorted(phases()) == ["ended", "in-call"]
    assert sockets(left) == before
    assert sockets(stayed) == {"open": 1, "made": 1, "closes": [], "joined": 1}
