"""Real calls in real Chromium: what each person sees and hears."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, ROOT, Person, Stack, wait_until

pytestmark = pytest.mark.e2e

SCREENSHOT = ROOT / "docs" / "img" / "three-person-call.png"


def spaced(number: str) -> str:
    return f"{number[:3]} {number[3:6]} {number[6:]}"


def call(people, *usernames: str, base_url: str | None = None, capacity: int | None = None):
    """The first person creates a room from the lobby, the others join it; all see video."""
    everyone: list[Person] = [people(name, base_url=base_url) for name in usernames]
    number = everyone[0].create_room(name="Standup", capacity=capacity)
    everyone[0].press_join()
    everyone[0].wait_in_call()
    for person in everyone[1:]:
        person.enter(number)
    for person in everyone:
        person.wait_remote_videos(len(everyone) - 1)
    return number, everyone


def test_two_people_log_in_meet_by_number_and_see_and_hear_each_other(people):
    """Login through the pages, create, join by typed number: video plays, audio is live."""
    alice, bob = people("alice", logged_in=False), people("bob", logged_in=False)
    alice.login_through_page()
    number = alice.create_room(name="Design review")
    expect(alice.page.get_by_test_id("pin-input")).to_be_hidden()
    alice.press_join()
    alice.wait_in_call()
    expect(alice.page.get_by_test_id("room-number")).to_have_text(spaced(number))

    bob.login_through_page()
    # People read numbers in groups and type them that way.
    bob.join_from_lobby(f"{number[:3]}-{number[3:6]} {number[6:]}")
    bob.page.wait_for_url(f"**/rooms/{number}/")
    expect(bob.page.get_by_role("heading", name="Design review")).to_be_visible()
    bob.press_join()
    bob.wait_in_call()

    for me, other in ((alice, bob), (bob, alice)):
        me.wait_remote_videos(1)
        me.wait_audio_live(1)
        expect(me.tile_of(other)).to_have_count(1)
        expect(me.tile_of(other)).to_have_attribute("data-state", "connected")
        # The fake microphone beeps: the speaking ring lights up on the other's tile.
        me.page.wait_for_function(
            "(name) => [...document.querySelectorAll('[data-testid=tile].speaking')]"
            ".some((tile) => tile.textContent.includes(name))",
            arg=other.display_name,
            polling=50,
            timeout=8000,
        )
    # The newcomer made the offer and is the impolite side; the one already there answered.
    assert [p["firstDescription"] for p in bob.peers()] == ["offer"]
    assert [p["firstDescription"] for p in alice.peers()] == ["answer"]


def test_three_people_each_see_two_remote_videos(people):
    """A three-person mesh: everyone sees and hears the two others (and the README screenshot)."""
    _, (alice, bob, carol) = call(people, "alice", "bob", "carol")
    for me in (alice, bob, carol):
        expect(me.tiles()).to_have_count(2)
        me.wait_audio_live(2)
    for me, others in ((alice, (bob, carol)), (bob, (alice, carol)), (carol, (alice, bob))):
        for other in others:
            expect(me.tile_of(other)).to_have_count(1)
    carol.page.get_by_test_id("chat-input").fill("Morning! Slides are in the shared folder.")
    carol.page.get_by_test_id("chat-send").click()
    expect(alice.page.get_by_test_id("chat-message")).to_have_count(1)
    alice.wait_remote_videos(2)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    alice.page.screenshot(path=str(SCREENSHOT))


def test_call_across_two_workers_sharing_redis(people, stack: Stack):
    """Peers signalling through two different daphne processes still connect."""
    alice = people("alice", base_url=stack.main[0])
    bob = people("bob", base_url=stack.main[1])
    number = alice.create_room(name="Two workers")
    alice.press_join()
    alice.wait_in_call()
    bob.enter(number)
    for me in (alice, bob):
        me.wait_remote_videos(1)
        me.wait_audio_live(1)
    bob.page.get_by_test_id("chat-input").fill("hello from worker 2")
    bob.page.get_by_test_id("chat-send").click()
    expect(alice.page.get_by_test_id("chat-message")).to_contain_text("hello from worker 2")


def test_relay_only_call_through_coturn(people, stack: Stack):
    """With ICE policy relay the call connects through coturn, using Django's TURN credentials."""
    _, (alice, bob) = call(people, "alice", "bob", base_url=stack.relay)
    for me in (alice, bob):
        (config,) = me.page.evaluate("window.__e2e.configurations()")
        assert config["iceTransportPolicy"] == "relay"
        assert any(
            f"127.0.0.1:{stack.turn_port}" in url
            for server in config["iceServers"]
            for url in server["urls"]
        )
        (peer_id,) = me.remote_peer_ids()
        stats = me.stats(peer_id)
        assert stats["localCandidateType"] == "relay", stats
        assert stats["remoteCandidateType"] == "relay", stats
    # The overlay says so too.
    alice.page.get_by_test_id("toggle-stats").click()
    expect(alice.page.get_by_test_id("stats")).to_contain_text("path relay")
    expect(alice.page.get_by_test_id("stats")).to_contain_text(" ms")

    # Fresh TURN credentials from the server (`ice-servers`) reach the live
    # connection before the old ones expire (this worker's last 40 s, so they
    # come 20 s after the join), and an ICE restart allocates its relay with them.
    (old,) = bob.page.evaluate("window.__e2e.iceUsernames()")[0]

    def refreshed() -> str | None:
        (name,) = bob.page.evaluate("window.__e2e.iceUsernames()")[0]
        return name if name != old else None

    new = wait_until(refreshed, timeout=30, what="new TURN username", interval=0.25)
    assert int(new.split(":")[0]) > int(old.split(":")[0])
    bob.page.evaluate("window.__e2e.restartIce()")
    coturn_log = next(p for p in stack.procs if p.name == "coturn")
    wait_until(
        lambda: f"user <{new}>" in coturn_log.tail(200000), timeout=10, what="relay with new user"
    )
    for me in (alice, bob):
        me.wait_remote_videos(1)
        expect(me.tiles()).to_have_attribute("data-state", "connected")


def test_dropped_signaling_resumes_and_the_call_plays_on(people):
    """A dropped signaling socket resumes as the same peer: no tile churn, video keeps playing."""
    _, (alice, bob) = call(people, "alice", "bob")
    bob_id = bob.peer_id()
    # Mark the DOM nodes: a peer-left + peer-joined would replace them.
    alice.page.evaluate("document.querySelector('[data-testid=\"tile\"]').dataset.mark = 'kept'")
    bob.page.evaluate("document.querySelector('[data-testid=\"tile\"]').dataset.mark = 'kept'")
    frames_before = alice.frame_counts()[bob_id]

    bob.page.evaluate("window.__e2e.dropSignaling()")
    # Back: a second `joined` on a new socket, and the socket is open again.
    bob.page.wait_for_function(
        # A function, not a bare expression: Playwright polls a bare expression
        # through eval(), which the page's CSP (no unsafe-eval) refuses.
        "() => window.__e2e.receivedOf('joined').length >= 2 && window.__e2e.openSockets() === 1"
    )
    expect(bob.page.get_by_test_id("signaling-banner")).to_have_attribute("data-state", "open")

    assert bob.peer_id() == bob_id
    for me in (alice, bob):
        expect(me.tiles()).to_have_count(1)
        expect(me.tiles()).to_have_attribute("data-mark", "kept")
        me.wait_remote_videos(1)
    # Alice's picture of Bob never stopped: the frame count only grew.
    assert alice.frame_counts()[bob_id] > frames_before
    # And signaling works again both ways after the resume.
    alice.page.evaluate("window.__e2e.restartIce()")
    for me in (alice, bob):
        me.wait_remote_videos(1)
        expect(me.tiles()).to_have_attribute("data-state", "connected")


def test_leaving_removes_the_tile_within_two_seconds(people):
    """Leave: the other side's tile goes away within 2 s, and the leaver sees where they are."""
    _, (alice, bob) = call(people, "alice", "bob")
    bob.page.get_by_test_id("leave").click()
    expect(alice.tiles()).to_have_count(0, timeout=2000)
    expect(bob.page.get_by_test_id("ended-title")).to_have_text("You left the room")
    expect(alice.page.get_by_test_id("chat-log")).to_contain_text("Bob Berg left")


def test_closing_the_tab_removes_the_tile_within_five_seconds(people):
    """Closing a tab mid-call: the others' tile goes within 5 s."""
    _, (alice, bob, carol) = call(people, "alice", "bob", "carol")
    bob.page.close(run_before_unload=True)
    for me in (alice, carol):
        expect(me.tile_of(bob)).to_have_count(0, timeout=5000)
        expect(me.tiles()).to_have_count(1)


def test_owner_kicks_and_locks(people):
    """The owner removes a peer (gone within 2 s, told so) and locks the room against newcomers."""
    number, (alice, bob) = call(people, "alice", "bob")
    bob_id = bob.peer_id()
    alice.page.get_by_test_id("toggle-people").click()
    kick = alice.page.locator(f'[data-testid="kick-button"][data-peer-id="{bob_id}"]')
    # Only the owner gets the button.
    expect(bob.page.get_by_test_id("kick-button")).to_have_count(0)
    kick.click()
    expect(alice.tiles()).to_have_count(0, timeout=2000)
    expect(bob.page.get_by_test_id("ended-message")).to_contain_text("removed you")
    expect(bob.page.get_by_test_id("rejoin")).to_be_hidden()

    alice.page.get_by_test_id("toggle-lock").click()
    expect(alice.page.get_by_test_id("toggle-lock")).to_have_attribute("aria-pressed", "true")
    carol = people("carol")
    carol.open_room(number)
    carol.press_join()
    expect(carol.page.get_by_test_id("join-error")).to_contain_text("locked")


def test_mute_and_camera_off_show_on_the_other_side(people):
    """Mute and camera off are signalled with `media` and shown on the other's tile."""
    _, (alice, bob) = call(people, "alice", "bob")
    tile = alice.tile_of(bob)
    expect(tile.get_by_test_id("muted-indicator")).to_be_hidden()
    bob.page.get_by_test_id("toggle-mic").click()
    expect(bob.page.get_by_test_id("toggle-mic")).to_have_attribute("aria-pressed", "true")
    expect(tile.get_by_test_id("muted-indicator")).to_be_visible()
    expect(tile).to_have_attribute("data-audio", "false")
    bob.page.get_by_test_id("toggle-camera").click()
    expect(tile.get_by_test_id("camera-off-indicator")).to_be_visible()
    expect(tile).to_have_attribute("data-video", "false")
    # And back on.
    bob.page.get_by_test_id("toggle-mic").click()
    bob.page.get_by_test_id("toggle-camera").click()
    expect(tile.get_by_test_id("muted-indicator")).to_be_hidden()
    expect(tile.get_by_test_id("camera-off-indicator")).to_be_hidden()


def test_chat_arrives_on_both_sides(people):
    """Chat reaches everyone, the sender included, in order; then the owner ends the room."""
    _, (alice, bob) = call(people, "alice", "bob")
    alice.page.get_by_test_id("chat-input").fill("Hi Bob <b>not bold</b>")
    alice.page.get_by_test_id("chat-input").press("Enter")
    bob.page.get_by_test_id("chat-input").fill("Hi Alice")
    bob.page.get_by_test_id("chat-send").click()
    for me in (alice, bob):
        lines = me.page.get_by_test_id("chat-message")
        expect(lines).to_have_count(2)
        expect(lines.nth(0)).to_contain_text("Hi Bob <b>not bold</b>")
        expect(lines.nth(1)).to_contain_text("Hi Alice")
    expect(bob.page.get_by_test_id("chat-message").nth(0)).to_contain_text("Alice Anders")
    expect(alice.page.get_by_test_id("chat-input")).to_have_value("")

    # The owner ends the meeting for everyone (two clicks, no dialog).
    expect(bob.page.get_by_test_id("end-for-all")).to_be_hidden()
    alice.page.get_by_test_id("end-for-all").click()
    alice.page.get_by_test_id("end-for-all").click()
    for me in (alice, bob):
        expect(me.page.get_by_test_id("ended-title")).to_have_text("The room was closed")


def test_errors_for_missing_full_and_pin_protected_rooms(people):
    """A number nobody has, a full room and a wrong PIN each say what is wrong."""
    alice, bob, carol = people("alice"), people("bob"), people("carol")

    # A fresh database holds a handful of random 9-digit numbers: not this one.
    carol.join_from_lobby("100 000 001")
    expect(carol.page.get_by_test_id("lobby-join-error")).to_contain_text("no room")
    carol.join_from_lobby("12 34")
    expect(carol.page.get_by_test_id("lobby-join-error")).to_contain_text("9 digits")

    # A PIN-protected room: the owner is not asked again; a wrong PIN is refused.
    number = alice.create_room(name="Private", capacity=2, pin="4321")
    alice.press_join()
    alice.wait_in_call()
    bob.join_from_lobby(spaced(number), pin="1111")
    bob.page.wait_for_url(f"**/rooms/{number}/")
    expect(bob.page.get_by_test_id("pin-input")).to_have_value("1111")
    bob.press_join()
    expect(bob.page.get_by_test_id("join-error")).to_contain_text("Wrong PIN")
    bob.page.get_by_test_id("pin-input").fill("4321")
    bob.press_join()
    bob.wait_in_call()
    bob.wait_remote_videos(1)

    # Now the two-person room is full: the lobby says so, and so does the room itself.
    carol.join_from_lobby(number)
    expect(carol.page.get_by_test_id("lobby-join-error")).to_contain_text("full")
    carol.open_room(number)
    carol.page.get_by_test_id("pin-input").fill("4321")
    carol.press_join()
    expect(carol.page.get_by_test_id("join-error")).to_contain_text("full")
    expect(carol.page.get_by_test_id("join-button")).to_be_enabled()


def test_room_page_at_phone_width_is_usable_by_keyboard(people):
    """At 390 px wide the controls fit, are labelled, and work from the keyboard."""
    _, (alice, bob) = call(people, "alice", "bob")
    alice.page.set_viewport_size({"width": 390, "height": 844})
    width = alice.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page scrolls sideways at phone width ({width}px)"
    mic = alice.page.get_by_role("button", name="Mute")
    mic.focus()
    alice.page.keyboard.press("Enter")
    expect(alice.page.get_by_role("button", name="Unmute")).to_be_focused()
    expect(bob.tile_of(alice).get_by_test_id("muted-indicator")).to_be_visible()


DENY_ALL = """
(() => {
  navigator.mediaDevices.getUserMedia = async () => {
    throw new DOMException('Permission denied', 'NotAllowedError');
  };
})();
"""

NO_CAMERA = """
(() => {
  const devices = navigator.mediaDevices;
  const real = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints) => {
    if (constraints && constraints.video) {
      throw new DOMException('Requested device not found', 'NotFoundError');
    }
    return real(constraints);
  };
})();
"""


def test_person_without_camera_joins_and_presents_a_screen(people):
    """No camera: said so, audio-only call, screen share adds video; all blocked: a listener."""
    alice, bob = people("alice"), people("bob")
    bob.context.add_init_script(NO_CAMERA)
    number = alice.create_room(name="Screens")
    alice.press_join()
    alice.wait_in_call()
    bob.open_room(number)
    expect(bob.page.get_by_test_id("media-warning")).to_contain_text("No camera was found")
    bob.press_join()
    bob.wait_in_call()
    bob.wait_remote_videos(1)
    bob.wait_audio_live(1)
    tile = alice.tile_of(bob)
    expect(tile).to_have_attribute("data-state", "connected")
    expect(tile.get_by_test_id("camera-off-indicator")).to_be_visible()
    expect(bob.page.get_by_test_id("toggle-camera")).to_be_disabled()

    # The video m-line had nothing to send: sharing renegotiates, and Alice sees the screen.
    bob.page.get_by_test_id("toggle-screen").click()
    expect(bob.page.get_by_test_id("toggle-screen")).to_have_attribute("aria-pressed", "true")
    expect(tile.get_by_test_id("screen-indicator")).to_be_visible()
    expect(tile.get_by_test_id("camera-off-indicator")).to_be_hidden()
    alice.wait_remote_videos(1)
    bob.page.get_by_test_id("toggle-screen").click()
    expect(tile.get_by_test_id("screen-indicator")).to_be_hidden()
    expect(tile.get_by_test_id("camera-off-indicator")).to_be_visible()

    # Camera and microphone both blocked: told how to fix it, and joins as a listener.
    carol = people("carol")
    carol.context.add_init_script(DENY_ALL)
    carol.open_room(number)
    warning = carol.page.get_by_test_id("media-warning")
    expect(warning).to_contain_text("You blocked the microphone")
    expect(warning).to_contain_text("You blocked the camera")
    expect(warning).to_contain_text("join as a listener")
    carol.press_join()
    carol.wait_in_call()
    expect(carol.page.get_by_test_id("toggle-mic")).to_be_disabled()
    carol.wait_video_of(alice)  # Bob has no camera to send
    listener = alice.tile_of(carol)
    expect(listener).to_have_attribute("data-state", "connected")
    expect(listener.get_by_test_id("muted-indicator")).to_be_visible()
    expect(listener.get_by_test_id("camera-off-indicator")).to_be_visible()


def test_sign_up_and_sign_out_through_the_pages(browser, stack: Stack):
    """A new person signs up (landing in the lobby, signed in) and signs out with a confirmation."""
    context = browser.new_context()
    try:
        page = context.new_page()
        base = stack.main[0]
        page.goto(f"{base}/accounts/signup/")
        name = f"newcomer{secrets.token_hex(3)}"
        page.get_by_label("Username").fill(name)
        page.get_by_label("Password", exact=True).fill("short")
        page.get_by_label("Password again").fill("short")
        page.get_by_test_id("signup-button").click()
        expect(page.locator("#password2-errors, #password1-errors")).not_to_have_count(0)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_test_id("signup-button").click()
        expect(page).to_have_url(f"{base}/")
        expect(page.get_by_test_id("current-user")).to_have_text(name)
        page.get_by_role("link", name="Sign out").click()
        page.get_by_test_id("logout-button").click()
        expect(page).to_have_url(re.compile(r"/accounts/login/"))
        page.goto(f"{base}/")
        expect(page).to_have_url(f"{base}/accounts/login/?next=/")
    finally:
        context.close()
