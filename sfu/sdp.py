"""What a browser may send towards Janus: its SDP and ICE candidates, against an allow-list.

Janus parses what it is given in C, and some of that parsing trusts its input:
Janus 1.1.2's answer code loops forever on a negative extension id
(``a=extmap:-1 ...``, or ``4294967295``, which ``atoi`` makes -1), taking the
SFU down for every room. So nothing a browser sends reaches Janus unless it
reads as what Chromium or Firefox send for this product's calls
(static/js/sfu.js: one sendonly audio and one simulcast video section to
publish; the answer to Janus' subscriber offer to receive; no data channel):

- **SDP** (`examine_sdp`): printable ASCII, CRLF or LF lines, each of a type
  and an attribute this module lists, each with its grammar (`_SESSION`,
  `_MEDIA`), in the order RFC 8866 gives; bounds on size, lines, sections and
  attributes; extmap ids 1-255 (1-14 unless ``a=extmap-allow-mixed`` allows
  two-byte headers), once each per section; payload types 0-127 named in the
  ``m=`` line; rid and simulcast as RFC 8851/8853 write them (at most three
  layers, the most Janus has); sha-256 fingerprints; mids of at most 16; ICE
  credentials, a fingerprint and a mid in every section. Anything else is
  refused (`SdpRejected`), never stripped: a description with a line taken
  out is not the one the browser made, and would fail later, less clearly.
- **Candidates** (`examine_candidate`, and ``a=candidate`` lines inside an
  SDP): RFC 8839's grammar, then forwarded only when Janus could use them and
  their address is one the deployment lets Janus send checks to
  (`CandidatePolicy`: public unicast addresses, plus the ranges a deployment
  allows). The rest -- TCP (Janus has no ICE-TCP), RTCP components (rtcp-mux),
  mDNS ``.local`` names (Janus ignores them), private, loopback, link-local,
  metadata, multicast, reserved and documentation addresses -- are dropped
  silently, as an ICE agent drops candidates it cannot use: ICE goes on with
  the others.

Pure functions of their input; docs/sfu.md ("What the worker lets through to
Janus") has the list with the reasons.

Why one module of over 500 lines: it is one examiner. The per-attribute
checks are small functions listed in two tables (`_SESSION`, `_MEDIA`) that
`examine_sdp` walks; candidates are checked the same way inside an SDP and
alone. Split, a table and its checks would sit apart, and read against
docs/sfu.md they read best top to bottom.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Kind = Literal["offer", "answer"]

# The signaling frame's own limit (SIGNALING_MAX_MESSAGE_BYTES' default); ASCII only, so
# characters are bytes.
SDP_MAX_BYTES = 65_536
# The longest legitimate line is an ice-pwd of 256 characters (RFC 8839).
SDP_LINE_MAX = 512
# A publisher offer: static/js/sfu.js sends one audio and one video section.
OFFER_SECTIONS_MAX = 2
# Chromium's video section has about 140 lines (23 payload types with their rtcp-fb).
SECTION_LINES_MAX = 256
SECTION_CANDIDATES_MAX = 32
SECTION_SSRCS_MAX = 16
# Janus keeps three simulcast layers.
RIDS_MAX = 3
# RFC 8285: one-byte header extensions have ids 1-14, two-byte ones 1-255.
EXTMAP_ONE_BYTE_MAX = 14
EXTMAP_MAX = 255
PAYLOAD_TYPE_MAX = 127
# What a trickled candidate's sdpMLineIndex may name (2 sections per person of the largest room).
MLINE_INDEX_MAX = 400


class SdpRejected(ValueError):
    """The browser's SDP or candidate is not one this server forwards; ``reason`` says why."""

    def __init__(self, detail: str, *, line: int | None = None) -> None:
        self.detail = detail
        self.line = line
        self.reason = detail if line is None else f"line {line}: {detail}"
        super().__init__(self.reason)


# --- Which addresses Janus may send connectivity checks to ----------------------------

# Not public unicast (IANA's special-purpose registries): private, shared (CGNAT),
# loopback, link-local (with the cloud metadata address 169.254.169.254), documentation,
# benchmarking, multicast, reserved; for IPv6 also the ranges that embed an IPv4 address
# of any kind (mapped, NAT64, 6to4, Teredo). Written out rather than taken from
# `ipaddress.is_global`, whose answers changed between Python releases.
NOT_PUBLIC: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
        "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7",
        "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CandidatePolicy:
    """Where Janus may send ICE checks: public unicast, plus `allow`, minus `deny`.

    `allow` is for deployments whose browsers or TURN relays really are on
    such ranges (a LAN-only site, the test suite's loopback and benchmark
    networks); `deny` for public addresses that must not be probed (the
    server's own).
    """

    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()

    def permits(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            return False
        if any(address in net for net in self.deny):
            return False
        if any(address in net for net in self.allow):
            return True
        return not any(address in net for net in NOT_PUBLIC)


@functools.lru_cache(maxsize=8)
def candidate_policy(*, allow: tuple[str, ...] = (), deny: tuple[str, ...] = ()) -> CandidatePolicy:
    """The policy for CIDR lists as settings write them (``10.0.0.0/8``, ``fd00::/8``).

    Raises ValueError for one that is not a network.
    """
    return CandidatePolicy(
        allow=tuple(ipaddress.ip_network(net, strict=False) for net in allow),
        deny=tuple(ipaddress.ip_network(net, strict=False) for net in deny),
    )


# --- Candidates (RFC 8839 section 5.1) --------------------------------------------------

_ICE_CHARS = r"[A-Za-z0-9+/]"
# RFC 8866 token-char.
_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]"  # noqa: S105 - not a password
_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_CANDIDATE_RE = re.compile(
    rf"candidate:(?P<foundation>{_ICE_CHARS}{{1,32}}) (?P<component>[0-9]{{1,3}})"
    r" (?P<transport>[A-Za-z]{1,8}) (?P<priority>[0-9]{1,10})"
    r" (?P<address>[0-9A-Za-z.:%\-]{1,253}) (?P<port>[0-9]{1,5})"
    r" typ (?P<type>[a-z]{1,8})"
    r"(?: raddr (?P<raddr>[0-9A-Za-z.:%\-]{1,253}) rport (?P<rport>[0-9]{1,5}))?"
    rf"(?P<extensions>(?: {_TOKEN}{{1,32}} [!-~]{{1,256}}){{0,8}})"
)
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ICE candidate, as parsed."""

    component: int
    transport: str
    address: str
    port: int
    type: str


def parse_candidate(text: str) -> Candidate:
    """Parse ``candidate:...`` (trickled, or an SDP line without ``a=``); raise SdpRejected."""
    match = _CANDIDATE_RE.fullmatch(text)
    if match is None:
        raise SdpRejected("not an ICE candidate (RFC 8839)")
    component, priority = int(match["component"]), int(match["priority"])
    if not 1 <= component <= 256:
        raise SdpRejected("candidate component must be 1-256")
    if priority > 2**32 - 1:
        raise SdpRejected("candidate priority must be below 2^32")
    for port in (match["port"], match["rport"]):
        if port is not None and int(port) > 65535:
            raise SdpRejected("candidate port must be 0-65535")
    for address in (match["address"], match["raddr"]):
        if address is not None:
            _address_or_name(address)
    names = match["extensions"].split()[::2]
    if {"raddr", "rport", "typ"} & set(names):
        raise SdpRejected("not an ICE candidate (RFC 8839)")
    if match["type"] not in CANDIDATE_TYPES:
        raise SdpRejected("candidate type must be host, srflx, prflx or relay")
    return Candidate(
        component=component,
        transport=match["transport"].lower(),
        address=match["address"],
        port=int(match["port"]),
        type=match["type"],
    )


def _address_or_name(text: str) -> IPAddress | None:
    """An IP address, or None for a host name (mDNS ``.local``); raise for neither."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _HOSTNAME_RE.fullmatch(text) is None or text.replace(".", "").isdigit():
        raise SdpRejected("candidate address must be an IP or a host name")
    return None


def forwardable(candidate: Candidate, *, policy: CandidatePolicy) -> bool:
    """Whether Janus should get this candidate (see the module docstring for the others)."""
    if candidate.transport != "udp" or candidate.component != 1 or candidate.port == 0:
        return False
    address = _address_or_name(candidate.address)
    return address is not None and policy.permits(address)


def examine_candidate(init: Mapping[str, Any], *, policy: CandidatePolicy) -> bool:
    """A trickled RTCIceCandidateInit: True to forward it, False to drop it; SdpRejected if bad.

    An empty ``candidate`` is Firefox' end of one generation's candidates: dropped (the
    end-of-candidates that follows, a null candidate, is what Janus needs).
    """
    mid = init.get("sdpMid")
    if mid is not None and _MID_RE.fullmatch(mid) is None:
        raise SdpRejected("'sdpMid' is not a media id (1-16 letters, digits, '-', '_', '.')")
    index = init.get("sdpMLineIndex")
    if index is not None and not 0 <= index < MLINE_INDEX_MAX:
        raise SdpRejected(f"'sdpMLineIndex' must be 0-{MLINE_INDEX_MAX - 1}")
    text = init["candidate"]
    if text == "":
        return False
    if len(text) > SDP_LINE_MAX:
        raise SdpRejected(f"a candidate is at most {SDP_LINE_MAX} characters")
    return forwardable(parse_candidate(text), policy=policy)


# --- SDP --------------------------------------------------------------------------------

# Janus refuses a mid over 16 characters (RFC 8843's MID header extension holds 16 bytes).
_MID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,16}")
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e\n\r]")
_DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
# DTLS fingerprints: browsers send sha-256, the one Janus wants (it takes sha-1 too, with a
# warning, and nothing else).
_HASHES = {"sha-256": 32}
_CONNECTION_RE = re.compile(r"IN (?:IP4|IP6) (?P<address>[0-9A-Za-z.:\-]{1,253})")
# RFC 8866 section 5: the order of a description's lines (c= and b= may come in either part).
_SESSION_ORDER = "voscbta"
_MEDIA_ORDER = "mcba"


@dataclass
class _Section:
    """What one part of the description (the session, or one m-section) declared."""

    number: int  # 0 for the session
    kind: str = ""
    port: int = 0
    # The session's a=group:BUNDLE mids.
    bundle: list[str] = field(default_factory=list)
    formats: tuple[int, ...] = ()
    attributes: dict[str, int] = field(default_factory=dict)
    mid: str | None = None
    extmap_ids: set[int] = field(default_factory=set)
    extmap_uris: set[str] = field(default_factory=set)
    # (line number, id) of each extmap, checked once allow-mixed is known.
    extmaps: list[tuple[int, int]] = field(default_factory=list)
    rtpmaps: set[int] = field(default_factory=set)
    fmtps: set[int] = field(default_factory=set)
    rids: dict[str, str] = field(default_factory=dict)
    simulcast: list[str] = field(default_factory=list)
    ssrcs: set[int] = field(default_factory=set)
    candidates: int = 0
    lines: int = 0


@dataclass
class _Context:
    kind: Kind
    number: int
    session: _Section
    section: _Section


def _bad(reason: str) -> SdpRejected:
    return SdpRejected(reason)


def _flag(value: str | None, ctx: _Context, name: str) -> None:
    if value is not None:
        raise _bad(f"a={name} takes no value")


def _needs(value: str | None, name: str) -> str:
    if value is None or value == "":
        raise _bad(f"a={name} needs a value")
    return value


def _payload_type(text: str, ctx: _Context, name: str) -> int:
    if not text.isdigit() or len(text) > 3 or int(text) > PAYLOAD_TYPE_MAX:
        raise _bad(f"a={name}: payload type must be 0-{PAYLOAD_TYPE_MAX}")
    pt = int(text)
    if pt not in ctx.section.formats:
        raise _bad(f"a={name}: payload type {pt} is not in the m= line")
    return pt


def _group(value: str | None, ctx: _Context, name: str) -> None:
    semantics, *mids = _needs(value, name).split(" ")
    if semantics != "BUNDLE" or not mids:
        raise _bad("a=group must be BUNDLE with its mids")
    for mid in mids:
        if _MID_RE.fullmatch(mid) is None:
            raise _bad("a=group: a mid is 1-16 letters, digits, '-', '_' or '.'")
    ctx.session.bundle = mids


_MSID_SEMANTIC_RE = re.compile(rf" ?WMS(?: (?:\*|{_TOKEN}{{1,64}}))*")


def _msid_semantic(value: str | None, ctx: _Context, name: str) -> None:
    if _MSID_SEMANTIC_RE.fullmatch(_needs(value, name)) is None:
        raise _bad("a=msid-semantic must be WMS and stream ids")


def _ice_options(value: str | None, ctx: _Context, name: str) -> None:
    if (
        re.fullmatch(r"[A-Za-z0-9\-]{1,32}(?: [A-Za-z0-9\-]{1,32}){0,7}", _needs(value, name))
        is None
    ):
        raise _bad("a=ice-options must be option names")


def _ice_ufrag(value: str | None, ctx: _Context, name: str) -> None:
    if re.fullmatch(rf"{_ICE_CHARS}{{4,256}}", _needs(value, name)) is None:
        raise _bad("a=ice-ufrag must be 4-256 ICE characters")


def _ice_pwd(value: str | None, ctx: _Context, name: str) -> None:
    if re.fullmatch(rf"{_ICE_CHARS}{{22,256}}", _needs(value, name)) is None:
        raise _bad("a=ice-pwd must be 22-256 ICE characters")


def _fingerprint(value: str | None, ctx: _Context, name: str) -> None:
    algorithm, _, digest = _needs(value, name).partition(" ")
    size = _HASHES.get(algorithm.lower())
    if size is None:
        raise _bad("a=fingerprint: the hash must be sha-256")
    if re.fullmatch(rf"[0-9A-Fa-f]{{2}}(?::[0-9A-Fa-f]{{2}}){{{size - 1}}}", digest) is None:
        raise _bad(f"a=fingerprint: {algorithm} takes {size} hex bytes separated by ':'")


def _setup(value: str | None, ctx: _Context, name: str) -> None:
    # The browser offers actpass; its answer takes a role (Janus offers actpass).
    allowed = ("actpass", "active", "passive") if ctx.kind == "offer" else ("active", "passive")
    if value not in allowed:
        raise _bad(f"a=setup must be {' or '.join(allowed)} in an {ctx.kind}")


def _mid(value: str | None, ctx: _Context, name: str) -> None:
    if _MID_RE.fullmatch(_needs(value, name)) is None:
        raise _bad("a=mid must be 1-16 letters, digits, '-', '_' or '.'")
    ctx.section.mid = value


_EXTMAP_RE = re.compile(
    r"(?P<id>[0-9]{1,3})(?:/(?:sendrecv|sendonly|recvonly|inactive))?"
    r" (?P<uri>[A-Za-z][A-Za-z0-9+.\-]{0,15}:[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]{1,240})"
    r"(?: [!-~]{1,64})?"
)


def _extmap(value: str | None, ctx: _Context, name: str) -> None:
    match = _EXTMAP_RE.fullmatch(_needs(value, name))
    if match is None:
        raise _bad(f"a=extmap must be an id 1-{EXTMAP_MAX}, a direction and a URI")
    ext_id, uri, section = int(match["id"]), match["uri"], ctx.section
    if not 1 <= ext_id <= EXTMAP_MAX:
        raise _bad(f"a=extmap id must be 1-{EXTMAP_MAX}")
    if ext_id in section.extmap_ids or uri in section.extmap_uris:
        raise _bad(f"a=extmap id {ext_id} or its URI is already in this section")
    section.extmap_ids.add(ext_id)
    section.extmap_uris.add(uri)
    section.extmaps.append((ctx.number, ext_id))


_RTPMAP_RE = re.compile(r"(?P<pt>[0-9]{1,3}) [A-Za-z0-9\-_.]{1,32}/[0-9]{1,7}(?:/[0-9]{1,2})?")


def _rtpmap(value: str | None, ctx: _Context, name: str) -> None:
    match = _RTPMAP_RE.fullmatch(_needs(value, name))
    if match is None:
        raise _bad("a=rtpmap must be a payload type and encoding/clock[/channels]")
    pt = _payload_type(match["pt"], ctx, name)
    if pt in ctx.section.rtpmaps:
        raise _bad(f"a=rtpmap: payload type {pt} is mapped twice")
    ctx.section.rtpmaps.add(pt)


def _fmtp(value: str | None, ctx: _Context, name: str) -> None:
    pt_text, _, params = _needs(value, name).partition(" ")
    pt = _payload_type(pt_text, ctx, name)
    if re.fullmatch(r"[!-~]{1,256}(?: [!-~]{1,256}){0,15}", params) is None:
        raise _bad("a=fmtp needs parameters")
    if pt in ctx.section.fmtps:
        raise _bad(f"a=fmtp: payload type {pt} has two")
    ctx.section.fmtps.add(pt)


def _rtcp_fb(value: str | None, ctx: _Context, name: str) -> None:
    match = re.fullmatch(
        r"(?P<pt>\*|[0-9]{1,3}) [a-z0-9\-]{1,32}(?: [a-z0-9\-=]{1,32})?", _needs(value, name)
    )
    if match is None:
        raise _bad("a=rtcp-fb must be a payload type (or *) and a feedback type")
    if match["pt"] != "*":
        _payload_type(match["pt"], ctx, name)


def _rtcp(value: str | None, ctx: _Context, name: str) -> None:
    port, _, connection = _needs(value, name).partition(" ")
    if not port.isdigit() or len(port) > 5 or int(port) > 65535:
        raise _bad("a=rtcp: the port must be 0-65535")
    if connection:
        _connection(connection, "a=rtcp")


def _rtcp_xr(value: str | None, ctx: _Context, name: str) -> None:
    if re.fullmatch(r"[A-Za-z0-9\-=:;,.]{1,64}", _needs(value, name)) is None:
        raise _bad("a=rtcp-xr must be report block names")


def _msid(value: str | None, ctx: _Context, name: str) -> None:
    if re.fullmatch(rf"{_TOKEN}{{1,64}}(?: {_TOKEN}{{1,64}})?", _needs(value, name)) is None:
        raise _bad("a=msid must be a stream id and an optional track id")


def _ssrc(value: str | None, ctx: _Context, name: str) -> None:
    match = re.fullmatch(
        r"(?P<ssrc>[0-9]{1,10}) (?P<attribute>cname|msid|mslabel|label)(?::[ -~]{1,200})?",
        _needs(value, name),
    )
    if match is None or int(match["ssrc"]) > 2**32 - 1:
        raise _bad("a=ssrc must be an SSRC (0-2^32-1) with cname, msid, mslabel or label")
    ctx.section.ssrcs.add(int(match["ssrc"]))
    if len(ctx.section.ssrcs) > SECTION_SSRCS_MAX:
        raise _bad(f"at most {SECTION_SSRCS_MAX} SSRCs in a section")


def _ssrc_group(value: str | None, ctx: _Context, name: str) -> None:
    match = re.fullmatch(
        r"(?P<semantics>FID|FEC-FR|SIM)((?: [0-9]{1,10}){1,3})", _needs(value, name)
    )
    if match is None or any(int(s) > 2**32 - 1 for s in match[2].split()):
        raise _bad("a=ssrc-group must be FID, FEC-FR or SIM with 1-3 SSRCs")


_RID_PARAM = r"[a-z][a-z0-9\-]{0,31}=[A-Za-z0-9,.\-]{1,64}"
_RID_RE = re.compile(
    r"(?P<rid>[A-Za-z0-9_\-]{1,15}) (?P<direction>send|recv)"
    rf"(?: {_RID_PARAM}(?:;{_RID_PARAM}){{0,15}})?"
)


def _rid(value: str | None, ctx: _Context, name: str) -> None:
    # Janus reads a rid of at most 15 characters (sscanf "%15s send").
    match = _RID_RE.fullmatch(_needs(value, name))
    if match is None:
        raise _bad("a=rid must be an id of 1-15 letters, digits, '-' or '_', and send")
    if ctx.kind != "offer" or match["direction"] != "send":
        raise _bad("a=rid: only a publisher's offer sends simulcast layers (send)")
    rids = ctx.section.rids
    if match["rid"] in rids or len(rids) >= RIDS_MAX:
        raise _bad(f"a=rid: at most {RIDS_MAX} layers, each named once")
    rids[match["rid"]] = match["direction"]


def _simulcast(value: str | None, ctx: _Context, name: str) -> None:
    match = re.fullmatch(r"send (?P<list>[~A-Za-z0-9_\-;,]{1,64})", _needs(value, name))
    if match is None or ctx.kind != "offer":
        raise _bad("a=simulcast must be send and the layers (in a publisher's offer)")
    for alternatives in match["list"].split(";"):
        for rid in alternatives.split(","):
            if re.fullmatch(r"~?[A-Za-z0-9_\-]{1,15}", rid) is None:
                raise _bad("a=simulcast: a layer is a rid, '~' for paused")
            ctx.section.simulcast.append(rid.removeprefix("~"))


def _int_value(low: int, high: int) -> Callable[[str | None, _Context, str], None]:
    def check(value: str | None, ctx: _Context, name: str) -> None:
        text = _needs(value, name)
        if not text.isdigit() or len(text) > 10 or not low <= int(text) <= high:
            raise _bad(f"a={name} must be {low}-{high}")

    return check


def _candidate(value: str | None, ctx: _Context, name: str) -> None:
    # Parsed again (with the policy) by examine_sdp, which drops the ones not forwarded.
    parse_candidate(f"candidate:{_needs(value, name)}")
    ctx.section.candidates += 1
    if ctx.section.candidates > SECTION_CANDIDATES_MAX:
        raise _bad(f"at most {SECTION_CANDIDATES_MAX} candidates in a section")


Check = Callable[[str | None, _Context, str], None]

# Session-level attributes: what Chromium and Firefox put there.
_SESSION: dict[str, Check] = {
    "group": _group,
    "extmap-allow-mixed": _flag,
    "msid-semantic": _msid_semantic,
    "ice-options": _ice_options,
    "ice-ufrag": _ice_ufrag,
    "ice-pwd": _ice_pwd,
    "fingerprint": _fingerprint,
    "setup": _setup,
    **dict.fromkeys(_DIRECTIONS, _flag),
}
# Media-level attributes of an audio or video section.
_MEDIA: dict[str, Check] = {
    "mid": _mid,
    "extmap": _extmap,
    "extmap-allow-mixed": _flag,
    "rtpmap": _rtpmap,
    "fmtp": _fmtp,
    "rtcp-fb": _rtcp_fb,
    "rtcp": _rtcp,
    "rtcp-mux": _flag,
    "rtcp-rsize": _flag,
    "rtcp-xr": _rtcp_xr,
    "msid": _msid,
    "ssrc": _ssrc,
    "ssrc-group": _ssrc_group,
    "rid": _rid,
    "simulcast": _simulcast,
    "ice-ufrag": _ice_ufrag,
    "ice-pwd": _ice_pwd,
    "ice-options": _ice_options,
    "fingerprint": _fingerprint,
    "setup": _setup,
    "candidate": _candidate,
    "end-of-candidates": _flag,
    "bundle-only": _flag,
    "ptime": _int_value(1, 1000),
    "maxptime": _int_value(1, 1000),
    **dict.fromkeys(_DIRECTIONS, _flag),
}
# At most once in their part of the description (the others may repeat).
_ONCE = frozenset(
    {
        "group", "extmap-allow-mixed", "msid-semantic", "ice-options", "ice-ufrag", "ice-pwd",
        "fingerprint", "setup", "mid", "rtcp", "rtcp-mux", "rtcp-rsize", "msid", "simulcast",
        "end-of-candidates", "bundle-only", "ptime", "maxptime", "rtcp-xr",
    }
)  # fmt: skip

_LINE_RE = re.compile(r"(?P<type>[a-z])=(?P<value>.*)")
_ATTRIBUTE_RE = re.compile(r"(?P<name>[a-z][a-z0-9\-]{0,31})(?::(?P<value>.*))?")
_ORIGIN_RE = re.compile(
    r"[!-~]{1,64} [0-9]{1,20} [0-9]{1,20} IN (?:IP4|IP6) [0-9A-Za-z.:\-]{1,253}"
)
_MEDIA_RE = re.compile(
    r"(?P<kind>audio|video) (?P<port>[0-9]{1,5}) UDP/TLS/RTP/SAVPF"
    r"(?P<formats>(?: [0-9]{1,3}){1,128})"
)
_BANDWIDTH_RE = re.compile(r"(?:AS|TIAS|CT|RR|RS):[0-9]{1,10}")


def _connection(text: str, where: str) -> None:
    match = _CONNECTION_RE.fullmatch(text)
    if match is None:
        raise _bad(f"{where} must be IN IP4 or IN IP6 and an address")
    try:
        _address_or_name(match["address"])
    except SdpRejected:
        raise _bad(f"{where}: not an address") from None


def examine_sdp(sdp: str, *, kind: Kind, policy: CandidatePolicy, max_sections: int) -> str:
    """The browser's SDP ``kind`` as it may go to Janus, or SdpRejected saying why not.

    What is returned is ``sdp`` without the ``a=candidate`` lines Janus is not
    to get (see the module docstring); every other line is as the browser
    wrote it. ``max_sections``: how many m-sections an answer may have (an
    offer: `OFFER_SECTIONS_MAX`).
    """
    if not sdp.startswith("v=0\n") and not sdp.startswith("v=0\r\n"):
        raise SdpRejected("not an SDP (it must start with v=0)")
    if len(sdp) > SDP_MAX_BYTES:
        raise SdpRejected(f"an SDP is at most {SDP_MAX_BYTES} bytes")
    if _NOT_PRINTABLE.search(sdp) is not None:
        raise SdpRejected("an SDP holds printable ASCII only")
    if not sdp.endswith("\n"):
        raise SdpRejected("the last line must end with CRLF")
    newline = "\r\n" if sdp.startswith("v=0\r\n") else "\n"
    lines = sdp[: -len(newline)].split(newline)
    session = _Section(number=0)
    sections: list[_Section] = []
    section = session
    seen_types: list[str] = []
    drop: set[int] = set()
    limit = OFFER_SECTIONS_MAX if kind == "offer" else max_sections
    for number, line in enumerate(lines, start=1):
        if len(line) > SDP_LINE_MAX or "\r" in line or "\n" in line:
            raise SdpRejected(
                f"lines are at most {SDP_LINE_MAX} characters, ending in CRLF", line=number
            )
        match = _LINE_RE.fullmatch(line)
        if match is None:
            raise SdpRejected("not a <type>=<value> line", line=number)
        kind_of_line, value = match["type"], match["value"]
        if kind_of_line == "m":
            if len(sections) >= limit:
                raise SdpRejected(f"at most {limit} m-sections in this {kind}", line=number)
            section = _open_section(value, len(sections) + 1, number)
            sections.append(section)
            seen_types = ["m"]
            continue
        order = _SESSION_ORDER if section is session else _MEDIA_ORDER
        if kind_of_line not in order:
            raise SdpRejected(f"{kind_of_line}= lines are not allowed here", line=number)
        if seen_types and order.index(kind_of_line) < order.index(seen_types[-1]):
            raise SdpRejected(f"{kind_of_line}= is out of order", line=number)
        if kind_of_line in "vostc" and kind_of_line in seen_types:
            raise SdpRejected(f"only one {kind_of_line}= line", line=number)
        seen_types.append(kind_of_line)
        section.lines += 1
        if section.lines > SECTION_LINES_MAX:
            raise SdpRejected(f"at most {SECTION_LINES_MAX} lines in a section", line=number)
        try:
            if kind_of_line == "a":
                ctx = _Context(kind=kind, number=number, session=session, section=section)
                if _attribute(value, ctx, session=section is session) and not _forward_line(
                    value, policy
                ):
                    drop.add(number)
            else:
                _session_line(kind_of_line, value)
        except SdpRejected as err:
            if err.line is not None:
                raise
            raise SdpRejected(err.detail, line=number) from None
    if list("vost") != [t for t in _first_types(lines) if t in "vost"]:
        raise SdpRejected("the session needs v=, o=, s= and t=, in that order")
    if not sections:
        raise SdpRejected(f"an {kind} needs at least one m-section")
    _check_sections(session, sections)
    if not drop:
        return sdp
    kept = [line for number, line in enumerate(lines, start=1) if number not in drop]
    return newline.join(kept) + newline


def _first_types(lines: list[str]) -> list[str]:
    """The types of the session part's lines (before the first m=)."""
    types = []
    for line in lines:
        if line.startswith("m="):
            break
        types.append(line[:1])
    return types


def _open_section(value: str, index: int, number: int) -> _Section:
    match = _MEDIA_RE.fullmatch(value)
    if match is None:
        raise SdpRejected(
            "m= must be audio or video, a port and UDP/TLS/RTP/SAVPF with payload types",
            line=number,
        )
    formats = tuple(int(pt) for pt in match["formats"].split())
    if int(match["port"]) > 65535:
        raise SdpRejected("m=: the port must be 0-65535", line=number)
    if any(pt > PAYLOAD_TYPE_MAX for pt in formats) or len(set(formats)) != len(formats):
        raise SdpRejected(f"m=: payload types are 0-{PAYLOAD_TYPE_MAX}, each once", line=number)
    return _Section(number=index, kind=match["kind"], port=int(match["port"]), formats=formats)


def _session_line(kind: str, value: str) -> None:
    if kind == "v" and value != "0":
        raise _bad("v= must be 0")
    if kind == "o" and _ORIGIN_RE.fullmatch(value) is None:
        raise _bad("o= must be <username> <session id> <version> IN IP4|IP6 <address>")
    if kind == "s" and not value:
        raise _bad("s= must not be empty")
    if kind == "t" and re.fullmatch(r"[0-9]{1,20} [0-9]{1,20}", value) is None:
        raise _bad("t= must be two times")
    if kind == "c":
        _connection(value, "c=")
    if kind == "b" and _BANDWIDTH_RE.fullmatch(value) is None:
        raise _bad("b= must be AS, TIAS, CT, RR or RS and a number")


def _attribute(value: str, ctx: _Context, *, session: bool) -> bool:
    """Check one ``a=`` line's attribute; True when it is a candidate (to filter)."""
    match = _ATTRIBUTE_RE.fullmatch(value)
    if match is None:
        raise _bad("not an attribute")
    name, attribute_value = match["name"], match["value"]
    table = _SESSION if session else _MEDIA
    check = table.get(name)
    if check is None:
        where = "at session level" if session else f"in an {ctx.section.kind} section"
        raise _bad(f"a={name} is not allowed {where}")
    counts = ctx.section.attributes
    counts[name] = counts.get(name, 0) + 1
    if name in _ONCE and counts[name] > 1:
        raise _bad(f"a={name} may appear once")
    if name in _DIRECTIONS and sum(counts.get(d, 0) for d in _DIRECTIONS) > 1:
        raise _bad("one direction (sendrecv, sendonly, recvonly, inactive) at most")
    check(attribute_value, ctx, name)
    return name == "candidate"


def _forward_line(value: str, policy: CandidatePolicy) -> bool:
    return forwardable(parse_candidate(value), policy=policy)


def _check_sections(session: _Section, sections: list[_Section]) -> None:
    """What holds across lines: mids, BUNDLE, extmap id ranges, simulcast, ICE and DTLS."""
    mids = [s.mid for s in sections]
    for s in sections:
        where = f"m-section {s.number}"
        if s.mid is None:
            raise SdpRejected(f"{where} has no a=mid")
        mixed = "extmap-allow-mixed" in session.attributes or "extmap-allow-mixed" in s.attributes
        highest = EXTMAP_MAX if mixed else EXTMAP_ONE_BYTE_MAX
        for number, ext_id in s.extmaps:
            if ext_id > highest:
                raise SdpRejected(
                    f"a=extmap id must be 1-{EXTMAP_ONE_BYTE_MAX} without a=extmap-allow-mixed",
                    line=number,
                )
        if sorted(set(s.simulcast)) != sorted(s.rids):
            raise SdpRejected(f"{where}: a=simulcast must name exactly the section's a=rid layers")
        # A rejected (port 0) or bundle-only section has no transport of its own.
        for name in ("ice-ufrag", "ice-pwd", "fingerprint"):
            if s.port == 0:
                break
            if name not in s.attributes and name not in session.attributes:
                raise SdpRejected(f"{where} has no a={name}")
    if len(set(mids)) != len(mids):
        raise SdpRejected("each m-section needs its own a=mid")
    bundle = session.bundle
    if len(set(bundle)) != len(bundle) or not set(bundle) <= set(mids):
        raise SdpRejected("a=group:BUNDLE names each mid of this SDP at most once")
