"""Realistic signaling payloads with a benchmark tag the receiver reads without parsing JSON.

The tag `x-bench P:S:Q:T` (phase, sender, sequence number, send time in ns of
CLOCK_MONOTONIC) rides inside the SDP string (as an `a=x-bench:` attribute
line) or inside the candidate string (as an ICE extension attribute), so every
server forwards it untouched like any other SDP or candidate text.
"""

from __future__ import annotations

MARK = b"x-bench"

# A Chromium 13x offer for one audio and one video transceiver, trimmed of
# nothing: the codec list is what makes real offers 4-6 KB.
_SDP_HEAD = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS 6c2fa3b1\r\n"
)
_AUDIO = (
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:4ZcD\r\na=ice-pwd:2/1muCWoOi3uLifh0NuRHlQ4\r\n"
    "a=ice-options:trickle\r\na=fingerprint:sha-256 75:74:5A:A6:A4:E5:52:F4:A7:67:4C:01:"
    "C7:EE:91:3F:21:3D:A2:E3:53:7B:6F:30:86:F2:30:AA:65:FB:04:24\r\na=setup:actpass\r\n"
    "a=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendrecv\r\n"
    "a=msid:6c2fa3b1 1f0e4c3d-5b6a-4f8e-9d2c-7a1b3c4d5e6f\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\na=ssrc:1001233344 cname:Jq3xN5gS0bZ7kR1v\r\n"
    "a=ssrc:1001233344 msid:6c2fa3b1 1f0e4c3d-5b6a-4f8e-9d2c-7a1b3c4d5e6f\r\n"
)
_VIDEO_PTS = [
    (96, "VP8/90000", None),
    (98, "VP9/90000", "profile-id=0"),
    (100, "VP9/90000", "profile-id=2"),
    (102, "H264/90000", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"),
    (104, "H264/90000", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f"),
    (106, "H264/90000", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
    (108, "H264/90000", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"),
    (112, "H264/90000", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"),
    (114, "H265/90000", "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST"),
    (45, "AV1/90000", "level-idx=5;profile=0;tier=0"),
]


def _video() -> str:
    pts = []
    lines = []
    for pt, codec, fmtp in _VIDEO_PTS:
        pts += [str(pt), str(pt + 1)]
        lines.append(f"a=rtpmap:{pt} {codec}\r\n")
        for fb in ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"):
            lines.append(f"a=rtcp-fb:{pt} {fb}\r\n")
        if fmtp:
            lines.append(f"a=fmtp:{pt} {fmtp}\r\n")
        lines.append(f"a=rtpmap:{pt + 1} rtx/90000\r\na=fmtp:{pt + 1} apt={pt}\r\n")
    head = (
        f"m=video 9 UDP/TLS/RTP/SAVPF {' '.join(pts)} 116 117 118\r\nc=IN IP4 0.0.0.0\r\n"
        "a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:4ZcD\r\na=ice-pwd:2/1muCWoOi3uLifh0NuRHlQ4\r\n"
        "a=ice-options:trickle\r\na=setup:actpass\r\na=mid:1\r\n"
        "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n"
        "a=extmap:13 urn:3gpp:video-orientation\r\n"
        "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n"
        "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type\r\n"
        "a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing\r\n"
        "a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space\r\n"
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
        "a=sendrecv\r\na=msid:6c2fa3b1 8e7d6c5b-4a39-4281-9f0e-d1c2b3a49586\r\n"
        "a=rtcp-mux\r\na=rtcp-rsize\r\n"
    )
    tail = (
        "a=rtpmap:116 red/90000\r\na=rtpmap:117 rtx/90000\r\na=fmtp:117 apt=116\r\n"
        "a=rtpmap:118 ulpfec/90000\r\na=ssrc-group:FID 2231627014 632943048\r\n"
        "a=ssrc:2231627014 cname:Jq3xN5gS0bZ7kR1v\r\na=ssrc:632943048 cname:Jq3xN5gS0bZ7kR1v\r\n"
    )
    return head + "".join(lines) + tail


SDP_PREFIX = _SDP_HEAD + _AUDIO + _video() + "a=x-bench:"
CANDIDATE_PREFIX = (
    "candidate:1467250027 1 udp 2122260223 192.168.1.17 56143 typ host generation 0 "
    "ufrag 4ZcD network-id 1 network-cost 10 x-bench "
)


def _json_str(text: str) -> bytes:
    """Escape CRLF for a JSON string literal (the only escapes the templates need)."""
    return text.replace("\r", "\\r").replace("\n", "\\n").encode()


class Templates:
    """Pre-encoded frames: only the recipient and the tag are filled in per message."""

    def __init__(self, socketio: bool) -> None:
        pre, post = (b'42["msg",', b"]") if socketio else (b"", b"")
        self.offer_head = pre + b'{"type":"offer","sdp":"' + _json_str(SDP_PREFIX)
        # An answer is as long as the offer (the same codecs, chosen back).
        self.answer_head = pre + b'{"type":"answer","sdp":"' + _json_str(SDP_PREFIX)
        self.offer_tail = b'\\r\\n","to":"%s"}' + post
        self.cand_head = pre + b'{"type":"candidate","candidate":{"candidate":"'
        self.cand_head += CANDIDATE_PREFIX.encode()
        self.cand_tail = b'","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"4ZcD"},'
        self.cand_tail += b'"to":"%s"}' + post

    def offer(self, to: bytes, tag: bytes) -> bytes:
        return self.offer_head + tag + (self.offer_tail % to)

    def answer(self, to: bytes, tag: bytes) -> bytes:
        return self.answer_head + tag + (self.offer_tail % to)

    def candidate(self, to: bytes, tag: bytes) -> bytes:
        return self.cand_head + tag + (self.cand_tail % to)


def parse_tag(payload: bytes) -> tuple[int, int, int, int] | None:
    """Return (phase, sender, seq, t_ns) from a forwarded frame, or None if it has no tag."""
    i = payload.find(MARK)
    if i < 0:
        return None
    i += len(MARK) + 1
    j = i
    n = len(payload)
    while j < n and payload[j] in b"0123456789:":
        j += 1
    parts = payload[i:j].split(b":")
    if len(parts) != 4:
        return None
    return int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])
