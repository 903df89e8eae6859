"""The examiner of what browsers send towards Janus (sfu/sdp.py): exact verdicts.

Real Chromium 156 and Firefox 153 ESR descriptions and candidates
(tests/sfu/data/) pass; each refusal below is one line changed in a
real offer, with the reason the browser is told written out.
"""

from __future__ import annotations

import pytest

from sfu.sdp import (
    OFFER_SECTIONS_MAX,
    CandidatePolicy,
    SdpRejected,
    candidate_policy,
    examine_candidate,
    examine_sdp,
)
from tests.sfu import sdp as testsdp

PUBLIC = candidate_policy()
# What the capture's own network (198.18.0.0/15, RFC 2544) needs, as the test stacks set it.
BENCH = candidate_policy(allow=("198.18.0.0/15",))
CHROMIUM = testsdp.captured("chromium")
FIREFOX = testsdp.captured("firefox")
OFFER = CHROMIUM["publisher_offer"]


def offer(sdp: str = OFFER, policy: CandidatePolicy = PUBLIC) -> str:
    return examine_sdp(sdp, kind="offer", policy=policy, max_sections=OFFER_SECTIONS_MAX)


def answer(sdp: str, policy: CandidatePolicy = PUBLIC, max_sections: int = 100) -> str:
    return examine_sdp(sdp, kind="answer", policy=policy, max_sections=max_sections)


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(SdpRejected) as caught:
        call(*args, **kwargs)
    return caught.value.reason


def lines(sdp: str) -> list[str]:
    return sdp.split("\r\n")


def replace_line(sdp: str, number: int, new: str | None) -> str:
    """``sdp`` with its line ``number`` (1-based) replaced, or removed for None."""
    out = lines(sdp)
    assert out[number - 1], f"line {number} is empty"
    if new is None:
        del out[number - 1]
    else:
        out[number - 1] = new
    return "\r\n".join(out)


# --- Real browsers pass ----------------------------------------------------------------


@pytest.mark.parametrize("browser", testsdp.BROWSERS)
def test_real_offers_and_answers_pass_unchanged(browser):
    """Both browsers' offers and answers (no candidates yet) go to Janus exactly as written."""
    data = testsdp.captured(browser)
    assert offer(data["publisher_offer"]) == data["publisher_offer"]
    for key in ("subscriber_answer", "subscriber_answer_updated"):
        text = data[key]
        if "a=candidate" not in text:
            assert answer(text) == text


@pytest.mark.parametrize("browser", testsdp.BROWSERS)
def test_candidates_inside_an_sdp_are_kept_only_when_janus_may_use_them(browser):
    """In a gathered SDP: public-only policy keeps no candidate (198.18/15 is benchmarking),
    the capture's own policy keeps the UDP component-1 IP ones; nothing else changes."""
    gathered = testsdp.captured(browser)["publisher_offer_gathered"]
    without = [line for line in lines(gathered) if not line.startswith("a=candidate:")]
    assert lines(offer(gathered)) == without
    usable = [
        line
        for line in lines(gathered)
        if not line.startswith("a=candidate:")
        or (line.split()[2].lower() == "udp" and line.split()[1] == "1" and "198.18." in line)
    ]
    assert lines(offer(gathered, BENCH)) == usable
    kept = [line for line in lines(offer(gathered, BENCH)) if line.startswith("a=candidate:")]
    assert len(kept) == {"chromium": 4, "firefox": 4}[browser]


def test_the_test_suites_own_sdp_passes():
    """tests/sfu/sdp.py's offer (what the other SFU tests publish) passes."""
    made = testsdp.publisher_offer()
    assert offer(made) == made
    single = testsdp.publisher_offer(simulcast=False)
    assert offer(single) == single


def test_a_full_rooms_subscriber_answer_passes_and_one_more_section_does_not():
    """A subscriber answer for 49 others (98 of Chromium's own sections) is within bounds."""
    head, audio, video = CHROMIUM["subscriber_answer"].removesuffix("\r\n").split("\r\nm=")
    sections = []
    for n in range(49):
        sections.append("m=" + audio.replace("a=mid:0\r\n", f"a=mid:{2 * n}\r\n"))
        sections.append("m=" + video.replace("a=mid:1\r\n", f"a=mid:{2 * n + 1}\r\n"))
    head = head.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE " + " ".join(map(str, range(98))))
    big = head + "\r\n" + "\r\n".join(sections) + "\r\n"
    assert big.endswith("\r\n") and len(big) < 65_536
    assert answer(big, max_sections=98) == big
    last = [n for n, line in enumerate(lines(big), start=1) if line.startswith("m=")][-1]
    assert (
        refusal(answer, big, max_sections=97)
        == f"line {last}: at most 97 m-sections in this answer"
    )


# --- Refusals: one line changed in Chromium's offer ---------------------------------------

# Line 56 is the video section's MID extension, line 20 the audio section's.
REFUSED_LINES = [
    (56, "a=extmap:-1 urn:ietf:params:rtp-hdrext:sdes:mid",
     "line 56: a=extmap must be an id 1-255, a direction and a URI"),
    (56, "a=extmap:4294967295 urn:ietf:params:rtp-hdrext:sdes:mid",
     "line 56: a=extmap must be an id 1-255, a direction and a URI"),
    (56, "a=extmap:0 urn:ietf:params:rtp-hdrext:sdes:mid", "line 56: a=extmap id must be 1-255"),
    (56, "a=extmap:256 urn:ietf:params:rtp-hdrext:sdes:mid", "line 56: a=extmap id must be 1-255"),
    (56, "a=extmap:14 urn:ietf:params:rtp-hdrext:sdes:mid",
     "line 56: a=extmap id 14 or its URI is already in this section"),
    (56, "a=extmap:20 urn:ietf:params:rtp-hdrext:toffset",
     "line 56: a=extmap id 20 or its URI is already in this section"),
    (56, "a=extmap: 4 urn:ietf:params:rtp-hdrext:sdes:mid",
     "line 56: a=extmap must be an id 1-255, a direction and a URI"),
    (56, "a=extmap:4/both urn:ietf:params:rtp-hdrext:sdes:mid",
     "line 56: a=extmap must be an id 1-255, a direction and a URI"),
    (20, "a=foo:bar", "line 20: a=foo is not allowed in an audio section"),
    (20, "a=sctp-port:5000", "line 20: a=sctp-port is not allowed in an audio section"),
    (20, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x",
     "line 20: a=crypto is not allowed in an audio section"),
    (6, "a=ice-lite", "line 6: a=ice-lite is not allowed at session level"),
    (8, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
     "line 8: m= must be audio or video, a port and UDP/TLS/RTP/SAVPF with payload types"),
    (8, "m=audio 9 RTP/AVP 111 63 9 0 8 13 110 126",
     "line 8: m= must be audio or video, a port and UDP/TLS/RTP/SAVPF with payload types"),
    (8, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 128",
     "line 8: m=: payload types are 0-127, each once"),
    (8, "m=audio 9 UDP/TLS/RTP/SAVPF 111 111", "line 8: m=: payload types are 0-127, each once"),
    (8, "m=audio 70000 UDP/TLS/RTP/SAVPF 111", "line 8: m=: the port must be 0-65535"),
    (26, "a=rtpmap:112 opus/48000/2", "line 26: a=rtpmap: payload type 112 is not in the m= line"),
    (26, "a=rtpmap:111 opus",
     "line 26: a=rtpmap must be a payload type and encoding/clock[/channels]"),
    (28, "a=fmtp:111", "line 28: a=fmtp needs parameters"),
    (27, "a=rtcp-fb:111 transport-cc extra words",
     "line 27: a=rtcp-fb must be a payload type (or *) and a feedback type"),
    (14, "a=fingerprint:sha-1 7E:5D:D3:1A:E7:71:CC:1A:7E:E5:83:44:96:FB:5B:E9:96:4A:4E:E2",
     "line 14: a=fingerprint: the hash must be sha-256"),
    (14, "a=fingerprint:sha-256 7E:5D:D3",
     "line 14: a=fingerprint: sha-256 takes 32 hex bytes separated by ':'"),
    (15, "a=setup:holdconn", "line 15: a=setup must be actpass or active or passive in an offer"),
    (11, "a=ice-ufrag:abc", "line 11: a=ice-ufrag must be 4-256 ICE characters"),
    (12, "a=ice-pwd:short", "line 12: a=ice-pwd must be 22-256 ICE characters"),
    (16, "a=mid:abcdefghijklmnopq", "line 16: a=mid must be 1-16 letters, digits, '-', '_' or '.'"),
    (16, "a=mid:1", "each m-section needs its own a=mid"),
    (16, None, "m-section 1 has no a=mid"),
    (5, "a=group:BUNDLE 0 1 7", "a=group:BUNDLE names each mid of this SDP at most once"),
    (5, "a=group:LS 0 1", "line 5: a=group must be BUNDLE with its mids"),
    (1, "v=1", "not an SDP (it must start with v=0)"),
    (2, "o=- x 2 IN IP4 127.0.0.1",
     "line 2: o= must be <username> <session id> <version> IN IP4|IP6 <address>"),
    (4, "i=an information line", "line 4: i= lines are not allowed here"),
    (4, None, "the session needs v=, o=, s= and t=, in that order"),
    (9, "c=IN IP4 999.1.1.1", "line 9: c=: not an address"),
    (9, "b=AS:abc", "line 9: b= must be AS, TIAS, CT, RR or RS and a number"),
    (18, "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\x00",
     "an SDP holds printable ASCII only"),
    (18, "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-lével",
     "an SDP holds printable ASCII only"),
    (18, "a=extmap:1 urn:" + "x" * 600,
     "line 18: lines are at most 512 characters, ending in CRLF"),
    (22, "a=msid:" + "x" * 65, "line 22: a=msid must be a stream id and an optional track id"),
    (37, "a=ssrc:4294967296 cname:x",
     "line 37: a=ssrc must be an SSRC (0-2^32-1) with cname, msid, mslabel or label"),
    (37, "a=ssrc-group:FID", "line 37: a=ssrc-group must be FID, FEC-FR or SIM with 1-3 SSRCs"),
    (159, "a=rid:h send;max-width=2",
     "line 159: a=rid must be an id of 1-15 letters, digits, '-' or '_', and send"),
    (160, "a=rid:h send", "line 160: a=rid: at most 3 layers, each named once"),
    (159, "a=rid:h recv",
     "line 159: a=rid: only a publisher's offer sends simulcast layers (send)"),
    (159, "a=rid:abcdefghijklmnop send",
     "line 159: a=rid must be an id of 1-15 letters, digits, '-' or '_', and send"),
    (162, "a=simulcast:send h;m;x",
     "m-section 2: a=simulcast must name exactly the section's a=rid layers"),
    (162, "a=simulcast:recv h;m;l",
     "line 162: a=simulcast must be send and the layers (in a publisher's offer)"),
    (162, None, "m-section 2: a=simulcast must name exactly the section's a=rid layers"),
    (23, "a=recvonly", "line 23: one direction (sendrecv, sendonly, recvonly, inactive) at most"),
    (24, "a=rtcp-mux", "line 24: a=rtcp-mux may appear once"),
    (11, None, "m-section 1 has no a=ice-ufrag"),
    (14, None, "m-section 1 has no a=fingerprint"),
    (23, "a=rtcp-mux:yes", "line 23: a=rtcp-mux takes no value"),
    (24, "a=candidate:1 1 udp 2122260223 10.0.0.1 port typ host",
     "line 24: not an ICE candidate (RFC 8839)"),
    (24, "", "line 24: not a <type>=<value> line"),
    (24, "A=rtcp-mux", "line 24: not a <type>=<value> line"),
]  # fmt: skip


@pytest.mark.parametrize(("number", "new", "reason"), REFUSED_LINES)
def test_an_offer_with_one_line_changed_is_refused_with_its_reason(number, new, reason):
    """Each change is refused, with the line and the rule it broke."""
    assert refusal(offer, replace_line(OFFER, number, new)) == reason


def test_lines_of_the_offer_the_table_names():
    """The table above is about the lines it says (guards against a re-captured file)."""
    text = lines(OFFER)
    assert text[55] == "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"
    assert text[19] == "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"
    assert (text[7][:8], text[38][:8]) == ("m=audio ", "m=video ")
    assert text[158:162] == [
        "a=rid:h send",
        "a=rid:m send",
        "a=rid:l send",
        "a=simulcast:send h;m;l",
    ]
    assert (text[10][:12], text[11][:10], text[13][:14]) == (
        "a=ice-ufrag:",
        "a=ice-pwd:",
        "a=fingerprint:",
    )
    assert (text[14], text[15], text[20]) == ("a=setup:actpass", "a=mid:0", "a=sendonly")
    assert (text[22], text[23], text[36][:7]) == ("a=rtcp-mux", "a=rtcp-rsize", "a=ssrc:")
    assert (text[25], text[26], text[27][:10]) == (
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111",
    )


def test_whole_description_bounds():
    """Not SDP, too big, a third m-section, one-byte extension ids, line endings."""
    assert refusal(offer, "hello") == "not an SDP (it must start with v=0)"
    assert refusal(offer, "") == "not an SDP (it must start with v=0)"
    assert refusal(offer, OFFER + "a" * 65_536) == "an SDP is at most 65536 bytes"
    assert refusal(offer, OFFER.removesuffix("\r\n")) == "the last line must end with CRLF"
    assert refusal(offer, OFFER.replace("\r\na=mid:0\r\n", "\na=mid:0\r\n")) == (
        "line 15: lines are at most 512 characters, ending in CRLF"
    )
    video = "m=video" + OFFER.split("m=video", 1)[1]
    third = OFFER + video.replace("a=mid:1", "a=mid:2")
    assert refusal(offer, third) == "line 163: at most 2 m-sections in this offer"
    # Without a=extmap-allow-mixed only one-byte header ids (1-14) are allowed.
    one_byte = OFFER.replace("a=extmap-allow-mixed\r\n", "")
    assert refusal(offer, one_byte.replace("a=extmap:14 urn", "a=extmap:15 urn")) == (
        "line 47: a=extmap id must be 1-14 without a=extmap-allow-mixed"
    )
    assert offer(one_byte) == one_byte
    # Firefox says it per section, not for the session: that counts too.
    firefox = FIREFOX["publisher_offer"]
    assert "a=extmap-allow-mixed" not in firefox.split("m=")[0]
    assert offer(firefox.replace("a=extmap:5 urn", "a=extmap:200 urn")) is not None


def test_an_answer_takes_a_role_and_sends_no_simulcast():
    """The subscriber answer: setup active or passive, no rid or simulcast."""
    text = CHROMIUM["subscriber_answer"]
    assert refusal(answer, text.replace("a=setup:active", "a=setup:actpass", 1)) == (
        "line 15: a=setup must be active or passive in an answer"
    )
    assert refusal(answer, text.replace("a=recvonly", "a=recvonly\r\na=rid:h send", 1)) == (
        "line 19: a=rid: only a publisher's offer sends simulcast layers (send)"
    )
    assert refusal(answer, text, max_sections=1) == "line 23: at most 1 m-sections in this answer"


# --- Candidates ---------------------------------------------------------------------------


def candidate(address: str, *, port: int = 50000, transport: str = "udp", component: int = 1,
              kind: str = "host", tail: str = "") -> dict:  # fmt: skip
    text = f"candidate:1 {component} {transport} 2122260223 {address} {port} typ {kind}{tail}"
    return {"candidate": text, "sdpMid": "0", "sdpMLineIndex": 0}


@pytest.mark.parametrize(
    ("address", "forwarded"),
    [
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("203.0.114.1", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("127.255.255.254", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("100.127.255.254", False),
        ("169.254.169.254", False),
        ("169.254.1.1", False),
        ("0.0.0.0", False),  # noqa: S104 - a candidate, not a bind
        ("255.255.255.255", False),
        ("240.0.0.1", False),
        ("224.0.0.251", False),
        ("239.255.255.250", False),
        ("192.0.0.170", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("198.51.100.1", False),
        ("203.0.113.7", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", False),
        ("64:ff9b::a00:1", False),
        ("2002:a00:1::1", False),
        ("2001:db8::1", False),
        ("2001::1", False),
        ("4f3a5b6c-1d2e-4f00-8a9b-0c1d2e3f4a5b.local", False),
        ("turn.example.org", False),
    ],
)
def test_candidates_go_to_janus_only_on_public_addresses_by_default(address, forwarded):
    """The default: public unicast only; private, loopback, metadata, mDNS... dropped."""
    assert examine_candidate(candidate(address), policy=PUBLIC) is forwarded
    assert examine_candidate(candidate(address, kind="relay", tail=" raddr 0.0.0.0 rport 0"),
                             policy=PUBLIC) is forwarded  # fmt: skip


def test_the_allowed_and_denied_networks_are_settings():
    """SFU_CANDIDATE_ALLOW opens a range (the tests' loopback), SFU_CANDIDATE_DENY closes one."""
    loopback = candidate_policy(allow=("127.0.0.0/8", "::1/128"))
    assert examine_candidate(candidate("127.0.0.1"), policy=loopback) is True
    assert examine_candidate(candidate("::1"), policy=loopback) is True
    assert examine_candidate(candidate("10.0.0.1"), policy=loopback) is False
    denied = candidate_policy(deny=("8.8.8.0/24",))
    assert examine_candidate(candidate("8.8.8.8"), policy=denied) is False
    assert examine_candidate(candidate("8.8.4.4"), policy=denied) is True
    both = candidate_policy(allow=("10.0.0.0/8",), deny=("10.1.0.0/16",))
    assert examine_candidate(candidate("10.2.0.1"), policy=both) is True
    assert examine_candidate(candidate("10.1.0.1"), policy=both) is False
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        candidate_policy(allow=("10.0.0.0/33",))


def test_candidates_janus_cannot_use_are_dropped():
    """TCP (no ICE-TCP), RTCP components, port 0, Firefox' empty end-of-generation."""
    assert examine_candidate(candidate("8.8.8.8", transport="tcp", tail=" tcptype active"),
                             policy=PUBLIC) is False  # fmt: skip
    assert examine_candidate(candidate("8.8.8.8", transport="UDP"), policy=PUBLIC) is True
    assert examine_candidate(candidate("8.8.8.8", component=2), policy=PUBLIC) is False
    assert examine_candidate(candidate("8.8.8.8", port=0), policy=PUBLIC) is False
    assert examine_candidate({"candidate": "", "sdpMid": "0"}, policy=PUBLIC) is False


@pytest.mark.parametrize(
    ("init", "reason"),
    [
        ({"candidate": "hello"}, "not an ICE candidate (RFC 8839)"),
        (candidate("8.8.8.8", kind="weird"), "candidate type must be host, srflx, prflx or relay"),
        (candidate("8.8.8.8", component=0), "candidate component must be 1-256"),
        (candidate("8.8.8.8", port=70000), "candidate port must be 0-65535"),
        (candidate("1.2.3"), "candidate address must be an IP or a host name"),
        (candidate("a_b.local"), "not an ICE candidate (RFC 8839)"),
        (candidate("8.8.8.8", tail=" raddr 10.0.0.1"), "not an ICE candidate (RFC 8839)"),
        (candidate("8.8.8.8", tail=" generation"), "not an ICE candidate (RFC 8839)"),
        ({**candidate("8.8.8.8"), "sdpMid": "x" * 17},
         "'sdpMid' is not a media id (1-16 letters, digits, '-', '_', '.')"),
        ({**candidate("8.8.8.8"), "sdpMLineIndex": 400}, "'sdpMLineIndex' must be 0-399"),
        ({"candidate": "candidate:" + "1" * 600}, "a candidate is at most 512 characters"),
    ],
)  # fmt: skip
def test_a_candidate_that_does_not_parse_is_refused(init, reason):
    """Unparseable candidates are refused (bad-message), with the reason."""
    assert refusal(examine_candidate, init, policy=PUBLIC) == reason


@pytest.mark.parametrize("browser", testsdp.BROWSERS)
def test_real_trickled_candidates(browser):
    """Every real candidate parses; with 198.18/15 allowed the UDP component-1 IP ones go."""
    data = testsdp.captured(browser)
    for init in data["publisher_candidates"] + data["subscriber_candidates"]:
        text = init["candidate"]
        assert examine_candidate(init, policy=PUBLIC) is False
        usable = bool(text) and " 1 udp " in text.lower() and ".local " not in text
        assert examine_candidate(init, policy=BENCH) is usable, text
