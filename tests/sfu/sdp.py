"""SDP a browser would send, made without a browser: for the API tests against real Janus.

The offer is what Chromium sends for a camera and a microphone with three
simulcast layers (rids h, m, l, highest first as janus.js orders them),
trimmed to what Janus reads, with a DTLS fingerprint of a real certificate
and fresh ICE credentials. Janus negotiates it exactly as it would a
browser's; only no media follows (no ICE agent answers Janus' checks), so
these tests stop short of `webrtcup`. tests/e2e/test_sfu.py does the rest
with Chromium.
"""

from __future__ import annotations

import datetime
import json
import secrets
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def dtls_fingerprint() -> str:
    """The sha-256 fingerprint of a fresh self-signed P-256 certificate, as SDP writes it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WebRTC")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(cert.public_bytes(serialization.Encoding.DER))
    return ":".join(f"{b:02X}" for b in digest.finalize())


def _transport(setup: str) -> list[str]:
    return [
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=ice-ufrag:{secrets.token_hex(2)}",
        f"a=ice-pwd:{secrets.token_hex(12)}",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {dtls_fingerprint()}",
        f"a=setup:{setup}",
    ]


def publisher_offer(*, simulcast: bool = True) -> str:
    """A sendonly offer: Opus audio (mid 0) and VP8 video (mid 1), simulcast h/m/l."""
    session = secrets.randbelow(2**62)
    msid = "stream-" + secrets.token_hex(4)
    # BUNDLE: both m-lines share one transport, so one set of credentials.
    transport = _transport("actpass")
    lines = [
        "v=0",
        f"o=- {session} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        f"a=msid-semantic: WMS {msid}",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        *transport,
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly",
        f"a=msid:{msid} audio-track",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        f"a=ssrc:{secrets.randbelow(2**31)} cname:test",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        *transport,
        "a=mid:1",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=sendonly",
        f"a=msid:{msid} video-track",
        "a=rtcp-mux",
        "a=rtcp-rsize",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 goog-remb",
        "a=rtcp-fb:96 transport-cc",
        "a=rtcp-fb:96 ccm fir",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
    ]
    if simulcast:
        lines += ["a=rid:h send", "a=rid:m send", "a=rid:l send", "a=simulcast:send h;m;l"]
    else:
        lines.append(f"a=ssrc:{secrets.randbelow(2**31)} cname:test")
    return "\r\n".join(lines) + "\r\n"


def answer_for(offer: str) -> str:
    """A recvonly answer to Janus' subscriber offer: every m-line accepted with its first codec."""
    sections: list[list[str]] = [[]]
    for line in offer.strip().splitlines():
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line.strip())
    transport = _transport("active")
    session = secrets.randbelow(2**62)
    out = ["v=0", f"o=- {session} 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    out += [line for line in sections[0] if line.startswith("a=group:BUNDLE")]
    out.append("a=msid-semantic: WMS")
    for section in sections[1:]:
        kind, port, proto, *formats = section[0][2:].split()
        mid = next(line[6:] for line in section if line.startswith("a=mid:"))
        if port == "0" or not formats:
            out += [f"m={kind} 0 {proto} {' '.join(formats)}", f"a=mid:{mid}", "a=inactive"]
            continue
        if kind == "application":
            out += [f"m=application 9 {proto} {' '.join(formats)}", *transport, f"a=mid:{mid}"]
            out += [line for line in section if line.startswith("a=sctp-port")]
            continue
        pt = formats[0]
        out += [f"m={kind} 9 {proto} {pt}", *transport, f"a=mid:{mid}", "a=recvonly", "a=rtcp-mux"]
        out += [
            line
            for line in section
            if line.startswith((f"a=rtpmap:{pt} ", f"a=fmtp:{pt} ", f"a=rtcp-fb:{pt} "))
            or line.startswith("a=extmap:")
        ]
    return "\r\n".join(out) + "\r\n"


def candidates(sdp: str) -> list[str]:
    """The a=candidate lines of an SDP (without the a= prefix)."""
    return [line[2:] for line in sdp.splitlines() if line.startswith("a=candidate:")]


# --- What real browsers sent (tests/sfu/capture_browsers.py made the files) ----------

DATA = Path(__file__).with_name("data")
BROWSERS = ("chromium", "firefox")


def captured(browser: str) -> dict[str, Any]:
    """One browser's capture: its publisher offer and subscriber answers, with candidates.

    Keys: ``publisher_offer`` (as static/js/sfu.js sends it, before any candidate),
    ``publisher_offer_gathered`` (with its candidates), ``publisher_candidates``
    (RTCIceCandidateInit, as trickled), ``subscriber_answer`` / ``_gathered`` /
    ``_updated`` (its answers to a real Janus' subscriber offer and to the
    renegotiation that removed one stream), ``subscriber_candidates``,
    ``janus_subscriber_offers``, ``userAgent``.
    """
    return json.loads((DATA / f"{browser}.json").read_text())
