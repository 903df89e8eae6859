"""Fuzzing the SDP and candidate examiner with mutated real Chromium and Firefox input.

Each example takes a description or candidate a real browser sent
(tests/sfu/data/) and changes it a few times: lines deleted,
duplicated, swapped or cut, numbers swapped for edge values (-1, 0, 15, 128,
256, 2^32...), tokens for junk (control and non-ASCII characters included),
crafted extmap, candidate, rid and unknown lines inserted. The examiner must
either refuse with its own `SdpRejected` or return what, checked again here
by independent means, holds the promises docs/sfu.md makes: printable
lines of bounded length, at most two sections in an offer, extmap ids
1-255 (1-14 without extmap-allow-mixed) once per section, payload types
0-127, short mids, and only UDP component-1 candidates on addresses the
policy allows.
"""

from __future__ import annotations

import ipaddress
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.sdp import (
    OFFER_SECTIONS_MAX,
    CandidatePolicy,
    SdpRejected,
    candidate_policy,
    examine_candidate,
    examine_sdp,
)
from tests.sfu import sdp as testsdp

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANSWER_SECTIONS_MAX = 100
ALLOWED = ("198.18.0.0/15", "fd00::/8")
POLICIES = {"public": candidate_policy(), "bench": candidate_policy(allow=ALLOWED)}
CAPTURES = {browser: testsdp.captured(browser) for browser in testsdp.BROWSERS}
SOURCES = [
    (browser, key, "offer" if key.startswith("publisher") else "answer")
    for browser in testsdp.BROWSERS
    for key in (
        "publisher_offer",
        "publisher_offer_gathered",
        "subscriber_answer",
        "subscriber_answer_gathered",
        "subscriber_answer_updated",
    )
]
CANDIDATES = [
    c["candidate"]
    for data in CAPTURES.values()
    for c in data["publisher_candidates"] + data["subscriber_candidates"]
    if c["candidate"]
]

EDGE_NUMBERS = st.sampled_from(
    [-1, 0, 1, 2, 14, 15, 16, 127, 128, 255, 256, 65535, 65536, 2**31, 2**32 - 1, 2**32, 2**64]
) | st.integers(-5, 300)
ADDRESSES = st.sampled_from(
    [
        "8.8.8.8", "1.1.1.1", "2606:4700::1111", "198.18.0.5", "198.19.255.1", "fd00::5",
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.0.1", "100.64.0.1", "169.254.169.254",
        "0.0.0.0", "255.255.255.255",  # noqa: S104 - candidates, not binds "224.0.0.1", "240.0.0.1", "192.0.2.1", "::1", "::",
        "fe80::1", "fe80::1%eth0", "fc00::1", "ff02::1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
        "2002:a00:1::1", "abc.local", "host.example", "1.2.3", "999.1.1.1", "-", "",
    ]
)  # fmt: skip
JUNK = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=30
) | st.sampled_from(["", " ", "\x00", "\r", "\n", "\t", "é", ":", "/", "-1", "*", "~"])
URIS = st.sampled_from(
    [
        "urn:ietf:params:rtp-hdrext:sdes:mid",
        "urn:ietf:params:rtp-hdrext:toffset",
        "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "urn:x",
        "",
    ]
)


def candidate_text(draw) -> str:
    transport = draw(st.sampled_from(["udp", "UDP", "tcp", "TCP", "tls", "sctp"]))
    component = draw(st.sampled_from([1, 1, 1, 2, 0, 256, 257]))
    kind = draw(st.sampled_from(["host", "srflx", "prflx", "relay", "weird"]))
    port = draw(EDGE_NUMBERS)
    address = draw(ADDRESSES)
    tail = draw(
        st.sampled_from(
            ["", " raddr 0.0.0.0 rport 0", " generation 0", " tcptype active", " raddr x", " x"]
        )
    )
    return f"candidate:1 {component} {transport} 2122260223 {address} {port} typ {kind}{tail}"


def crafted_line(draw) -> str:
    choice = draw(st.integers(0, 6))
    if choice == 0:
        direction = draw(st.sampled_from(["", "/sendonly", "/recvonly", "/both"]))
        return f"a=extmap:{draw(EDGE_NUMBERS)}{direction} {draw(URIS)}"
    if choice == 1:
        return "a=" + candidate_text(draw)
    if choice == 2:
        return f"a=rid:{draw(st.sampled_from(['h', 'm', 'l', 'x', 'q' * 16]))} send"
    if choice == 3:
        return f"a=rtpmap:{draw(EDGE_NUMBERS)} VP8/90000"
    if choice == 4:
        return f"a=mid:{draw(JUNK)}"
    if choice == 5:
        return "a=extmap-allow-mixed"
    return f"a={draw(st.from_regex(r'[a-z][a-z0-9-]{0,12}', fullmatch=True))}:{draw(JUNK)}"


def mutate(draw, text: str) -> str:
    """One change to an SDP, of a kind drawn at random."""
    lines = text.split("\r\n")
    index = draw(st.integers(0, len(lines) - 1))
    # Mostly changes that can still pass (numbers, inserted lines, deletions), so the
    # invariants below get checked often; the rest mostly end in a refusal.
    choice = draw(st.sampled_from([0, 0, 1, 2, 3, 3, 3, 4, 5, 5, 5, 5, 6, 7, 8, 8]))
    if choice == 0:
        del lines[index]
    elif choice == 1:
        lines.insert(index, lines[index])
    elif choice == 2:
        other = draw(st.integers(0, len(lines) - 1))
        lines[index], lines[other] = lines[other], lines[index]
    elif choice == 3:
        numbers = list(re.finditer(r"\d+", lines[index]))
        if numbers:
            match = numbers[draw(st.integers(0, len(numbers) - 1))]
            line = lines[index]
            lines[index] = f"{line[: match.start()]}{draw(EDGE_NUMBERS)}{line[match.end() :]}"
    elif choice == 4:
        tokens = re.split(r"([ :/;=])", lines[index])
        position = draw(st.integers(0, len(tokens) - 1))
        tokens[position] = draw(JUNK)
        lines[index] = "".join(tokens)
    elif choice == 5:
        lines.insert(index, crafted_line(draw))
    elif choice == 6:
        return text[: draw(st.integers(0, len(text)))]
    elif choice == 7:
        lines[index] += draw(st.sampled_from(["\n", "\r", "\r\n", " ", "\x00"]))
    else:
        # One-byte header extensions only (ids above 14 must go), and one id changed.
        lines = [line for line in lines if line != "a=extmap-allow-mixed"]
        extmaps = [n for n, line in enumerate(lines) if line.startswith("a=extmap:")]
        if extmaps:
            n = extmaps[draw(st.integers(0, len(extmaps) - 1))]
            lines[n] = re.sub(r"^a=extmap:\d+", f"a=extmap:{draw(EDGE_NUMBERS)}", lines[n])
    return "\r\n".join(lines)


# --- What an accepted description must hold, checked without the examiner ----------------


def allowed(address: str, policy: CandidatePolicy) -> bool:
    ip = ipaddress.ip_address(address)
    if any(ip in ipaddress.ip_network(net) for net in ALLOWED) and policy is POLICIES["bench"]:
        return True
    return ip.is_global and not ip.is_multicast


def check_candidate(text: str, policy: CandidatePolicy) -> None:
    fields = text.split()
    assert fields[0].startswith("candidate:"), text
    assert (fields[1], fields[2].lower(), fields[6]) == ("1", "udp", "typ"), text
    assert 1 <= int(fields[5]) <= 65535, text
    assert allowed(fields[4], policy), text


def check_accepted(text: str, *, kind: str, policy: CandidatePolicy) -> None:
    assert text.startswith("v=0\r\n") or text.startswith("v=0\n")
    assert re.fullmatch(r"[\x20-\x7e\r\n]*", text)
    lines = text.split("\r\n") if text.startswith("v=0\r\n") else text.split("\n")
    assert lines[-1] == ""
    sections: list[list[str]] = [[]]
    for line in lines[:-1]:
        assert 3 <= len(line) <= 512 and line[1] == "=" and "\r" not in line, line
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    session, media = sections[0], sections[1:]
    assert 1 <= len(media) <= (OFFER_SECTIONS_MAX if kind == "offer" else ANSWER_SECTIONS_MAX)
    mids = []
    for section in media:
        kind_, _port, proto, *formats = section[0][2:].split(" ")
        assert kind_ in ("audio", "video") and proto == "UDP/TLS/RTP/SAVPF"
        assert formats and all(0 <= int(pt) <= 127 for pt in formats)
        mixed = "a=extmap-allow-mixed" in session or "a=extmap-allow-mixed" in section
        ids = []
        for line in section:
            if line.startswith("a=extmap:"):
                ext_id = int(line[len("a=extmap:") :].split(" ")[0].split("/")[0])
                assert 1 <= ext_id <= (255 if mixed else 14), line
                ids.append(ext_id)
            if line.startswith("a=candidate:"):
                check_candidate(line[2:], policy)
            if line.startswith("a=mid:"):
                mids.append(line[6:])
                assert 1 <= len(line[6:]) <= 16
            if line.startswith("a=rid:"):
                assert kind == "offer"
        assert len(ids) == len(set(ids))
    assert len(mids) == len(media) == len(set(mids))


@FUZZ
@given(
    source=st.sampled_from(SOURCES),
    policy_name=st.sampled_from(sorted(POLICIES)),
    data=st.data(),
)
def test_mutated_browser_sdp_is_refused_or_keeps_every_promise(source, policy_name, data):
    """Never an exception but SdpRejected; whatever passes holds the documented invariants."""
    browser, key, kind = source
    policy = POLICIES[policy_name]
    text = CAPTURES[browser][key]
    for _ in range(data.draw(st.sampled_from([1, 1, 1, 2, 3]))):
        text = mutate(data.draw, text)
    try:
        out = examine_sdp(text, kind=kind, policy=policy, max_sections=ANSWER_SECTIONS_MAX)
    except SdpRejected as refused:
        assert refused.reason
        return
    check_accepted(out, kind=kind, policy=policy)


@FUZZ
@given(policy_name=st.sampled_from(sorted(POLICIES)), data=st.data())
def test_mutated_candidates_are_refused_dropped_or_allowed(policy_name, data):
    """A trickled candidate: SdpRejected, dropped, or forwarded if UDP, component 1, allowed."""
    policy = POLICIES[policy_name]
    if data.draw(st.booleans()):
        text = candidate_text(data.draw)
    else:
        text = data.draw(st.sampled_from(CANDIDATES))
        tokens = text.split(" ")
        position = data.draw(st.integers(0, len(tokens) - 1))
        tokens[position] = data.draw(JUNK | EDGE_NUMBERS.map(str) | ADDRESSES)
        text = " ".join(tokens)
    init = {"candidate": text, "sdpMid": data.draw(st.sampled_from(["0", "1", "x" * 17])),
            "sdpMLineIndex": data.draw(st.sampled_from([0, 1, 399, 400]))}  # fmt: skip
    try:
        forwarded = examine_candidate(init, policy=policy)
    except SdpRejected as refused:
        assert refused.reason
        return
    assert forwarded in (True, False)
    if forwarded:
        check_candidate(text, policy)


def test_every_unmutated_capture_passes_the_invariants():
    """The fuzz's starting points pass, for both policies, and so do their trickled candidates."""
    for browser, key, kind in SOURCES:
        for policy in POLICIES.values():
            text = CAPTURES[browser][key]
            out = examine_sdp(text, kind=kind, policy=policy, max_sections=ANSWER_SECTIONS_MAX)
            check_accepted(out, kind=kind, policy=policy)
    for text in CANDIDATES:
        for policy in POLICIES.values():
            init = {"candidate": text, "sdpMid": "0"}
            if examine_candidate(init, policy=policy):
                check_candidate(text, policy)
