"""Nothing a browser sends reaches Janus unexamined: poison through the real socket, real Janus.

The signaling socket on the real router, Janus started by the real
entrypoint (tests/sfu/janusproc.py). Offers are real Chromium and
Firefox ones (tests/sfu/data/), mutated by hand into what broke Janus
1.1.2: a negative extension id sends its answer code into an endless loop
(issue 22), after which the VideoRoom plugin answers nobody. Tests that may
break Janus get one of their own, SIGKILLed at the end whatever happened.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from sfu import lifecycle, room_credentials
from tests.sfu import sdp
from tests.support.helpers import db_room

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHROMIUM_OFFER = sdp.captured("chromium")["publisher_offer"]
# Line 56 of the Chromium offer: the video section's MID extension.
VIDEO_MID_EXTMAP = "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"


def with_video_line(offer: str, replacement: str) -> str:
    """The offer with its video section's MID extmap line (the second one) replaced."""
    audio, video = offer.split("m=video", 1)
    assert VIDEO_MID_EXTMAP in video
    return audio + "m=video" + video.replace(VIDEO_MID_EXTMAP, replacement, 1)


def use(settings, server, *, timeout: int = 10) -> None:
    settings.JANUS_URL = server.url
    settings.JANUS_API_SECRET = server.api_secret
    settings.JANUS_ADMIN_KEY = server.admin_key
    settings.JANUS_REQUEST_TIMEOUT = timeout


@pytest.fixture
def own_janus(make_janus, settings):
    """A Janus of the test's own (the shared one must survive a failure here), killed after."""
    server = make_janus(name="janus-input")
    # A Janus caught in the loop answers nothing: 3 s bounds each request then.
    use(settings, server, timeout=3)
    yield server
    # SIGKILL: a looping Janus ignores SIGTERM, and writes its log at ~30 MB/s meanwhile.
    server.kill()


@pytest.fixture
def with_janus(settings, janus):
    use(settings, janus)
    return janus


@pytest.mark.parametrize(
    ("extmap", "reason"),
    [
        # atoi("-1") < 0: Janus' loop skips its own advance.
        ("a=extmap:-1 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap must be an id 1-255"),
        # atoi("4294967295") is -1 as well.
        ("a=extmap:4294967295 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap must be an id 1-255"),
    ],
    ids=["minus-one", "wraps-to-minus-one"],
)
async def test_an_offer_that_hung_janus_is_refused_and_other_rooms_still_publish(
    connect, alice, bob, own_janus, extmap, reason
):
    """The extmap offer gets bad-message; Janus then publishes another room's real offer."""
    mallory = await connect(alice)
    await mallory.create(media="sfu")
    other = await connect(bob)
    await other.create(media="sfu")

    await mallory.send(
        {"type": "sfu-offer", "sdp": with_video_line(CHROMIUM_OFFER, extmap), "id": "p1"}
    )
    assert await mallory.recv(timeout=10) == {
        "type": "error",
        "code": "bad-message",
        "message": f"'sdp' refused: line 56: {reason}, a direction and a URI",
        "re": "p1",
    }
    await other.send({"type": "sfu-offer", "sdp": CHROMIUM_OFFER, "id": "o1"})
    answer = await other.recv(timeout=10)
    assert (answer["type"], answer["re"]) == ("sfu-answer", "o1"), answer
    assert "a=simulcast:recv h;m;l" in answer["sdp"].splitlines()
    # The refused socket carries on: its real offer is published too.
    await mallory.send({"type": "sfu-offer", "sdp": CHROMIUM_OFFER, "id": "p2"})
    assert (await mallory.recv(timeout=10))["type"] == "sfu-answer"
    assert "Invalid extension ID" not in own_janus.log()


async def test_a_string_that_is_not_sdp_is_bad_message_without_a_traceback(
    connect, alice, with_janus, caplog
):
    """sfu-offer with text that is no SDP: bad-message, no error logged (was server-busy)."""
    peer = await connect(alice)
    await peer.create(media="sfu")
    reply = await peer.request({"type": "sfu-offer", "sdp": "hello", "id": "x"})
    assert reply == {
        "type": "error",
        "code": "bad-message",
        "message": "'sdp' refused: not an SDP (it must start with v=0)",
        "re": "x",
    }
    await peer.nothing_before_pong()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_poisoned_subscriber_answer_is_refused(connect, alice, with_janus):
    """The answer to Janus' subscriber offer is examined too: the extmap answer is bad-message.

    VideoRoom's dummy publisher (in the Janus room made here before the
    worker's own create, which takes 427 as success) gives the subscription
    its offer, as another person's real feed would.
    """
    peer = await connect(alice)
    created = await peer.create(media="sfu")
    room = await db_room(created["room"]["number"])
    admin = await lifecycle.admin()
    creds = room_credentials(key=with_janus.admin_key, room=room.pk)
    await admin.create_room(
        room=room.pk, secret=creds.secret, pin=creds.pin, publishers=6,
        extra={"dummy_publisher": True},
    )  # fmt: skip
    await peer.send({"type": "sfu-offer", "sdp": CHROMIUM_OFFER, "id": "o1"})
    offer = await peer.recv_type("sfu-offer", timeout=10)
    assert [s["peerId"] for s in offer["streams"]] == ["Dummy publisher"] * 2
    assert (await peer.recv_type("sfu-answer", timeout=10))["re"] == "o1"

    poisoned = sdp.answer_for(offer["sdp"]).replace(
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap:-1 urn:x", 1
    )
    reply = await peer.request({"type": "sfu-answer", "sdp": poisoned, "id": "a1"})
    assert reply == {
        "type": "error",
        "code": "bad-message",
        "message": "'sdp' refused: line 20: a=extmap must be an id 1-255, a direction and a URI",
        "re": "a1",
    }
    reply = await peer.request({"type": "sfu-answer", "sdp": "hello", "id": "a2"})
    assert reply == {
        "type": "error",
        "code": "bad-message",
        "message": "'sdp' refused: not an SDP (it must start with v=0)",
        "re": "a2",
    }
    # The real answer still completes the subscription (no reply, nothing refused).
    await peer.send({"type": "sfu-answer", "sdp": sdp.answer_for(offer["sdp"]), "id": "a2"})
    await peer.nothing_before_pong()
    # An answer nothing waits for is dropped unread, as before.
    await peer.send({"type": "sfu-answer", "sdp": poisoned, "id": "a3"})
    await peer.nothing_before_pong()


async def test_an_sdp_janus_itself_refuses_is_bad_message_not_sfu_unavailable(
    connect, alice, with_janus
):
    """An msid without its track id passes the grammar (RFC 8830) but not Janus: bad-message."""
    peer = await connect(alice)
    await peer.create(media="sfu")
    offer = re.sub(r"^(a=msid:\S+) \S+\r$", "\\1\r", CHROMIUM_OFFER, flags=re.MULTILINE)
    assert offer.count("a=msid:") == 2 and offer != CHROMIUM_OFFER
    reply = await peer.request({"type": "sfu-offer", "sdp": offer, "id": "o1"})
    assert reply == {
        "type": "error",
        "code": "bad-message",
        "message": "'sdp' refused by the SFU: Error processing SDP",
        "re": "o1",
    }
    # Not taken for an outage: the next (real) offer is published at once.
    reply = await peer.request({"type": "sfu-offer", "sdp": CHROMIUM_OFFER, "id": "o2"})
    assert (reply["type"], reply["re"]) == ("sfu-answer", "o2")


@pytest.mark.parametrize("browser", sdp.BROWSERS)
async def test_real_browser_offers_are_published(connect, alice, with_janus, browser):
    """Chromium's and Firefox's own offers (simulcast h/m/l) pass and Janus answers them."""
    peer = await connect(alice)
    await peer.create(media="sfu")
    offer = sdp.captured(browser)["publisher_offer"]
    reply = await peer.request({"type": "sfu-offer", "sdp": offer, "id": "o1"})
    assert (reply["type"], reply["re"]) == ("sfu-answer", "o1"), reply
    assert "a=simulcast:recv h;m;l" in reply["sdp"].splitlines()


def host(address: str, port: int, *, transport: str = "udp", component: int = 1) -> dict:
    return {
        "candidate": f"candidate:1 {component} {transport} 2122260223 {address} {port} typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }


async def added_candidates(server, *, seconds: float = 5) -> list[str]:
    """The remote candidates Janus added (its verbose log), once it added any."""
    pattern = r"Adding remote candidate component:\d+ stream:\d+ type:\w+ (\S+)"
    for _ in range(int(seconds / 0.05)):
        if re.search(pattern, server.proc.output):
            return re.findall(pattern, server.proc.output)
        await asyncio.sleep(0.05)
    raise AssertionError(f"Janus added no remote candidate in {seconds} s")


async def test_janus_gets_only_the_candidates_the_deployment_allows(
    connect, alice, make_janus, settings
):
    """Loopback, private, metadata, mDNS, TCP: never trickled to Janus; an allowed range is.

    The deployment here allows 198.18.0.0/15 (as the test stacks do); Janus
    runs in a namespace with no route anywhere, so none of its checks leave it.
    Janus' verbose log names every remote candidate it adds: the allowed one,
    sent last, is the barrier that the ones before it were never added.
    """
    server = make_janus(name="janus-candidates", env={"JANUS_DEBUG_LEVEL": "5"})
    use(settings, server)
    settings.SFU_CANDIDATE_ALLOW = ["198.18.0.0/15"]
    try:
        peer = await connect(alice)
        await peer.create(media="sfu")
        reply = await peer.request({"type": "sfu-offer", "sdp": CHROMIUM_OFFER, "id": "o1"})
        assert reply["type"] == "sfu-answer"
        dropped = [
            host("127.0.0.1", 50001),
            host("10.1.2.3", 50002),
            host("192.168.1.20", 50003),
            host("100.64.0.9", 50004),
            host("169.254.169.254", 80),
            host("0.0.0.0", 50005),  # noqa: S104 - a candidate, not a bind
            host("224.0.0.251", 5353),
            host("4f3a5b6c-1d2e-4f00-8a9b-0c1d2e3f4a5b.local", 50006),
            host("198.18.0.7", 9, transport="tcp"),
            host("198.18.0.8", 50007, component=2),
            {**host("198.18.0.1", 1), "candidate": ""},
        ]
        for candidate in dropped:
            await peer.send({"type": "sfu-candidate", "role": "publisher", "candidate": candidate})
        await peer.send(
            {"type": "sfu-candidate", "role": "publisher", "candidate": host("198.18.0.9", 50009)}
        )
        await peer.nothing_before_pong()
        assert await added_candidates(server) == ["198.18.0.9:50009"]

        reply = await peer.request(
            {"type": "sfu-candidate", "role": "publisher", "candidate": host("1.2.3", 5), "id": "c"}
        )
        assert reply == {
            "type": "error",
            "code": "bad-message",
            "message": "'candidate' refused: candidate address must be an IP or a host name",
            "re": "c",
        }
    finally:
        server.kill()
