"""The signaling protocol, version 1: every message type, code and limit, and validation.

This module is the one place that knows what a client may send (docs/protocol.md
is its prose): validators return fresh dicts holding only the fields the
protocol defines, so nothing a client adds is ever passed on, and raise
`ClientError` for anything else. What the server sends is built by
`rooms.wire`. The limits here are the only copy: the models, the forms and the
browser client (static/js/wire.js, generated) take theirs from this module.
It imports nothing of Django's or the apps'.

It stays one module (over 500 lines) on purpose: it is the contract, read
against docs/protocol.md section by section, and `client_constants()`
collects every constant from this one namespace for static/js/wire.js, so a
constant added anywhere here reaches the browser with no registry to update.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

PROTOCOL_VERSION = 1

# --- Client -> server types ---------------------------------------------------
CREATE = "create"
JOIN = "join"
OFFER = "offer"
ANSWER = "answer"
CANDIDATE = "candidate"
MEDIA = "media"
CHAT = "chat"
LEAVE = "leave"
KICK = "kick"
LOCK = "lock"
UNLOCK = "unlock"
PING = "ping"
# Extension (docs/protocol.md): the owner ends the meeting for everyone.
CLOSE = "close"
# Extension: a browser's summary of its connection to one remote peer (call quality).
QUALITY = "quality"
# Extension (docs/protocol.md section 4): media through the SFU (Janus), relayed by the server.
# The browser's offer for its one publishing PeerConnection (and renegotiations).
SFU_OFFER = "sfu-offer"
# The browser's answer to the server's offer for its one receiving PeerConnection.
SFU_ANSWER = "sfu-answer"
SFU_CANDIDATE = "sfu-candidate"
# Which simulcast layer of one peer's video this browser wants (0 lowest).
SFU_LAYER = "sfu-layer"
# Peer to peer, during the handover: "I receive you through the SFU now" (with
# `closed`: "and I closed our direct connection").
HANDOVER = "handover"
# The browser's watchdog: its receiving PeerConnection does not come up (or
# stopped): an ICE restart (`iceRestart`) or a fresh subscription.
SFU_RESUBSCRIBE = "sfu-resubscribe"
# Extension: the owner pins the room's media (`mesh`, `sfu`) or lets it follow its size (`auto`).
MODE = "mode"
# Extension: the browser receives everyone directly again (the room went back to
# the mesh): its SFU connections and the server's Janus seat for it can go.
SFU_LEAVE = "sfu-leave"

# --- Server -> client types ---------------------------------------------------
JOINED = "joined"
PEER_JOINED = "peer-joined"
PEER_LEFT = "peer-left"
PEER_UPDATED = "peer-updated"
ROOM_UPDATED = "room-updated"
ROOM_CLOSED = "room-closed"
KICKED = "kicked"
ERROR = "error"
PONG = "pong"
# Extension: the server lost this browser's SFU session (Janus restarted): publish again.
SFU_RESTART = "sfu-restart"
# Extension: fresh ICE servers (TURN credentials) for a seated socket, before the last expire.
ICE_SERVERS = "ice-servers"
# Extension: to the room's owner (and staff) in it: too many wrong PINs, the PIN is locked.
PIN_LOCKED = "pin-locked"

# --- Error codes ----------------------------------------------------------------
BAD_MESSAGE = "bad-message"
TOO_LARGE = "too-large"
RATE_LIMITED = "rate-limited"
ROOM_NOT_FOUND = "room-not-found"
ROOM_CLOSED_CODE = "room-closed"
ROOM_FULL = "room-full"
ROOM_LOCKED = "room-locked"
BAD_PIN = "bad-pin"
NOT_IN_ROOM = "not-in-room"
ALREADY_IN_ROOM = "already-in-room"
UNKNOWN_PEER = "unknown-peer"
FORBIDDEN = "forbidden"
SERVER_BUSY = "server-busy"
# Extension: the room's media goes through the SFU, which cannot be reached now.
SFU_UNAVAILABLE = "sfu-unavailable"
# Extension: too many wrong PINs for this room lately; joins that need its PIN are paused.
PIN_LOCKED_CODE = "pin-locked"

ERROR_CODES = frozenset(
    {
        BAD_MESSAGE,
        TOO_LARGE,
        RATE_LIMITED,
        ROOM_NOT_FOUND,
        ROOM_CLOSED_CODE,
        ROOM_FULL,
        ROOM_LOCKED,
        BAD_PIN,
        NOT_IN_ROOM,
        ALREADY_IN_ROOM,
        UNKNOWN_PEER,
        FORBIDDEN,
        SERVER_BUSY,
        SFU_UNAVAILABLE,
        PIN_LOCKED_CODE,
    }
)

# --- WebSocket close codes ------------------------------------------------------
CLOSE_ROOM_CLOSED = 4000
CLOSE_KICKED = 4003
CLOSE_BAD_INPUT = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_RATE_LIMITED = 4429
# Extension: another socket resumed this peer; do not reconnect.
CLOSE_REPLACED = 4409
# Extension: the socket stopped reading (SOCKET_SEND_BUFFER_MAX bytes waited for
# it; sent by transport/patches.py): reconnect and resume.
CLOSE_NOT_READING = 4408
# Standard "service restart": reconnect and resume (SIGTERM, Redis outage, expiry).
CLOSE_RECONNECT = 1012

# --- Peer departure reasons -----------------------------------------------------
# The first is what any other departure is told as (Participant.LeftReason.told).
LEFT_REASONS = ("left", "disconnected", "kicked", "timeout")

# --- Limits -------------------------------------------------------------------------
CAPACITY_MIN = 2
# The most people a mesh room (media peer to peer) may hold.
CAPACITY_MAX = 12
# The bound no room's capacity may pass; SFU rooms' own limit is the
# SFU_CAPACITY_MAX setting (default 50), at most this.
CAPACITY_LIMIT_MAX = 200
CAPACITY_DEFAULT = 6
ID_MAX = 64
PEER_ID_MAX = 32
NAME_MAX = 100
CHAT_MAX = 2000
PIN_RE = re.compile(r"[0-9]{4,12}")
ROOM_NUMBER_RE = re.compile(r"[1-9][0-9]{8}")
# People type numbers the way they read them: "482 913 075", "482-913-075".
ROOM_NUMBER_SEPARATORS = re.compile(r"[\s-]+")
RESUME_TOKEN_MAX = 512

# --- Media modes (extension) ---------------------------------------------------------
# How a room's media flows: `mesh` peer to peer, `sfu` through Janus, `auto`
# mesh up to MESH_MAX_PEERS people, then through Janus.
MEDIA_MESH = "mesh"
MEDIA_SFU = "sfu"
MEDIA_AUTO = "auto"
MEDIA_MODES = (MEDIA_MESH, MEDIA_SFU, MEDIA_AUTO)
MEDIA_MODE_DEFAULT = MEDIA_AUTO
SFU_ROLES = ("publisher", "subscriber")
# Simulcast layers: 0 the lowest.
SFU_SUBSTREAM_MAX = 2

# --- Call quality (extension): what a `quality` report may hold ---------------------------
# The frame of one report, in bytes: a full report is about 450.
QUALITY_FRAME_MAX = 4096
# Milliseconds from the pair's start to its first decoded video frame (a day at most).
QUALITY_MS_MAX = 86_400_000
QUALITY_RTT_MAX = 60_000
# kbit/s, either way (10 Gbit/s).
QUALITY_KBPS_MAX = 10_000_000
# The remote peers one participant may report on (a full mesh's others): with a
# live and a final row each, at most 22 rows per participant.
QUALITY_PEERS_MAX = CAPACITY_MAX - 1
# Packets, frames, restarts, failures: cumulative counters since the pair started.
QUALITY_COUNTER_MAX = 2_147_483_647
# RTCPeerConnection.connectionState.
CONNECTION_STATES = ("new", "connecting", "connected", "disconnected", "failed", "closed")
# RTCIceCandidate.type of either end of the selected pair.
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")
# The pair's transport (the local candidate's protocol), and a relay's to its TURN server.
TRANSPORT_PROTOCOLS = ("udp", "tcp")
RELAY_PROTOCOLS = ("udp", "tcp", "tls")
# Why the connection broke: it reached `failed`, or stayed `disconnected` until
# the client gave up waiting and restarted ICE.
ICE_FAILURE_CAUSES = ("failed", "disconnected-timeout")
# For static/js/wire.js: the allowed values of the report's enumerated fields.
QUALITY_ENUMS = {
    "CONNECTION_STATES": CONNECTION_STATES,
    "CANDIDATE_TYPES": CANDIDATE_TYPES,
    "TRANSPORT_PROTOCOLS": TRANSPORT_PROTOCOLS,
    "RELAY_PROTOCOLS": RELAY_PROTOCOLS,
    "ICE_FAILURE_CAUSES": ICE_FAILURE_CAUSES,
}


class ClientError(Exception):
    """A request the server refuses; becomes an `error` message (or an HTTP 4xx)."""

    def __init__(self, code: str, message: str, *, msg_id: str | None = None) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        # The request's `id`, echoed as `re` on the error.
        self.msg_id = msg_id


def bad(message: str) -> ClientError:
    return ClientError(BAD_MESSAGE, message)


# --- Field checks -------------------------------------------------------------------


def _str(msg: dict[str, Any], key: str, *, max_len: int, required: bool = True) -> str | None:
    value = msg.get(key)
    if value is None:
        if required:
            raise bad(f"'{key}' is required")
        return None
    if type(value) is not str:
        raise bad(f"'{key}' must be a string")
    if len(value) > max_len:
        raise bad(f"'{key}' is longer than {max_len} characters")
    return value


def _bool(msg: dict[str, Any], key: str) -> bool | None:
    value = msg.get(key)
    if value is None:
        return None
    if type(value) is not bool:
        raise bad(f"'{key}' must be true or false")
    return value


def normalize_room_number(raw: str) -> str:
    """Return the 9 digits of a room number as people type it, or raise."""
    number = ROOM_NUMBER_SEPARATORS.sub("", raw)
    if not number.isdigit() or not number.isascii():
        raise bad("'room' must be a room number (9 digits)")
    if not ROOM_NUMBER_RE.fullmatch(number):
        # Well-formed but impossible: no room can have it.
        raise ClientError(ROOM_NOT_FOUND, "There is no room with that number.")
    return number


def no_nul(field: str, value: str) -> None:
    # Text is stored, and PostgreSQL text cannot hold NUL: refuse it as bad input
    # rather than fail in the database.
    if "\x00" in value:
        raise bad(f"'{field}' must not contain NUL characters")


def check_name(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise bad("'name' must be a string")
    name = value.strip()
    if len(name) > NAME_MAX:
        raise bad(f"'name' is longer than {NAME_MAX} characters")
    no_nul("name", name)
    return name or None


def check_capacity(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise bad("'capacity' must be an integer")
    if not CAPACITY_MIN <= value <= CAPACITY_LIMIT_MAX:
        raise bad(f"'capacity' must be between {CAPACITY_MIN} and {CAPACITY_LIMIT_MAX}")
    return value


def check_media(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str or value not in MEDIA_MODES:
        raise bad(f"'media' must be one of {', '.join(MEDIA_MODES)}")
    return value


def check_pin(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if type(value) is not str or not PIN_RE.fullmatch(value):
        raise bad("'pin' must be 4 to 12 digits")
    return value


# --- Validators, one per client type --------------------------------------------------


def _create(msg: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": CREATE,
        "name": check_name(msg.get("name")),
        "capacity": check_capacity(msg.get("capacity")),
        "pin": check_pin(msg.get("pin")),
        "media": check_media(msg.get("media")),
    }


def _join(msg: dict[str, Any]) -> dict[str, Any]:
    room = _str(msg, "room", max_len=32)
    pin = msg.get("pin")
    if pin is not None and (type(pin) is not str or len(pin) > 64):
        raise bad("'pin' must be a string")
    return {
        "type": JOIN,
        "room": normalize_room_number(room),
        "pin": pin or None,
        "resume": _str(msg, "resume", max_len=RESUME_TOKEN_MAX, required=False),
    }


def _sdp(msg: dict[str, Any]) -> dict[str, Any]:
    sdp = msg.get("sdp")
    if type(sdp) is not str:
        raise bad("'sdp' must be a string")
    return {"type": msg["type"], "to": _str(msg, "to", max_len=PEER_ID_MAX), "sdp": sdp}


_CANDIDATE_FIELDS: dict[str, tuple[type, ...]] = {
    "candidate": (str,),
    "sdpMid": (str, type(None)),
    "sdpMLineIndex": (int, type(None)),
    "usernameFragment": (str, type(None)),
}


def _candidate(msg: dict[str, Any]) -> dict[str, Any]:
    to = _str(msg, "to", max_len=PEER_ID_MAX)
    return {"type": CANDIDATE, "to": to, "candidate": _candidate_init(msg)}


def _candidate_init(msg: dict[str, Any]) -> dict[str, Any] | None:
    if "candidate" not in msg:
        raise bad("'candidate' is required (null for end-of-candidates)")
    candidate = msg["candidate"]
    if candidate is not None:
        if type(candidate) is not dict:
            raise bad("'candidate' must be an RTCIceCandidateInit object or null")
        if type(candidate.get("candidate")) is not str:
            raise bad("'candidate.candidate' must be a string")
        out = {}
        for key, types in _CANDIDATE_FIELDS.items():
            if key in candidate:
                value = candidate[key]
                if type(value) not in types:
                    raise bad(f"'candidate.{key}' has the wrong type")
                out[key] = value
        candidate = out
    return candidate


def _sfu_sdp(msg: dict[str, Any]) -> dict[str, Any]:
    sdp = msg.get("sdp")
    if type(sdp) is not str or not sdp:
        raise bad("'sdp' must be a string")
    return {"type": msg["type"], "sdp": sdp}


def _with_offer_ref(out: dict[str, Any], msg: dict[str, Any]) -> dict[str, Any]:
    """`out` with the optional `re`: the id of the server's subscriber offer it is about."""
    offer_ref = _str(msg, "re", max_len=ID_MAX, required=False)
    if offer_ref is not None:
        out["re"] = offer_ref
    return out


def _sfu_answer(msg: dict[str, Any]) -> dict[str, Any]:
    out = _sfu_sdp(msg)
    return _with_offer_ref(out, msg)


def _sfu_candidate(msg: dict[str, Any]) -> dict[str, Any]:
    role = msg.get("role")
    if role not in SFU_ROLES:
        raise bad(f"'role' must be one of {', '.join(SFU_ROLES)}")
    out = {"type": SFU_CANDIDATE, "role": role, "candidate": _candidate_init(msg)}
    return _with_offer_ref(out, msg)


def _sfu_layer(msg: dict[str, Any]) -> dict[str, Any]:
    substream = msg.get("substream")
    if type(substream) is not int or not 0 <= substream <= SFU_SUBSTREAM_MAX:
        raise bad(f"'substream' must be an integer from 0 to {SFU_SUBSTREAM_MAX}")
    peer = _str(msg, "peer", max_len=PEER_ID_MAX)
    return {"type": SFU_LAYER, "peer": peer, "substream": substream}


def _handover(msg: dict[str, Any]) -> dict[str, Any]:
    out = {"type": HANDOVER, "to": _str(msg, "to", max_len=PEER_ID_MAX)}
    if _bool(msg, "closed"):
        out["closed"] = True
    return out


def _mode(msg: dict[str, Any]) -> dict[str, Any]:
    value = msg.get("mode")
    if type(value) is not str or value not in MEDIA_MODES:
        raise bad(f"'mode' must be one of {', '.join(MEDIA_MODES)}")
    return {"type": MODE, "mode": value}


def _sfu_resubscribe(msg: dict[str, Any]) -> dict[str, Any]:
    out = {"type": SFU_RESUBSCRIBE, "iceRestart": bool(_bool(msg, "iceRestart"))}
    return _with_offer_ref(out, msg)


def _media(msg: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": MEDIA,
        "audio": _bool(msg, "audio"),
        "video": _bool(msg, "video"),
        "screen": _bool(msg, "screen"),
    }


def _chat(msg: dict[str, Any]) -> dict[str, Any]:
    text = _str(msg, "text", max_len=CHAT_MAX)
    if not text.strip():
        raise bad("'text' must not be empty")
    no_nul("text", text)
    return {"type": CHAT, "text": text}


def _kick(msg: dict[str, Any]) -> dict[str, Any]:
    return {"type": KICK, "peer": _str(msg, "peer", max_len=PEER_ID_MAX)}


def _bare(msg: dict[str, Any]) -> dict[str, Any]:
    return {"type": msg["type"]}


def _count(obj: dict[str, Any], key: str, *, where: str, max_value: int) -> int | None:
    """An optional integer in 0..max_value (null or absent: unknown)."""
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not int:
        raise bad(f"'{where}{key}' must be an integer or null")
    if not 0 <= value <= max_value:
        raise bad(f"'{where}{key}' must be between 0 and {max_value}")
    return value


def _choice(obj: dict[str, Any], key: str, *, where: str, choices: tuple[str, ...]) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is not str or value not in choices:
        raise bad(f"'{where}{key}' must be one of {', '.join(choices)} or null")
    return value


def _part(msg: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object of the report; absent or null reads as an empty one (all unknown)."""
    value = msg.get(key)
    if value is None:
        return {}
    if type(value) is not dict:
        raise bad(f"'{key}' must be an object or null")
    return value


def _quality(msg: dict[str, Any]) -> dict[str, Any]:
    """A call-quality report about one remote peer: every figure optional, all bounded."""
    final = _bool(msg, "final")
    pair, inbound, outbound = _part(msg, "pair"), _part(msg, "in"), _part(msg, "out")
    failures = _part(msg, "iceFailures")
    counter = QUALITY_COUNTER_MAX
    return {
        "type": QUALITY,
        "peer": _str(msg, "peer", max_len=PEER_ID_MAX),
        "final": bool(final),
        "state": _choice(msg, "state", where="", choices=CONNECTION_STATES),
        "firstFrameMs": _count(msg, "firstFrameMs", where="", max_value=QUALITY_MS_MAX),
        "pair": {
            "local": _choice(pair, "local", where="pair.", choices=CANDIDATE_TYPES),
            "remote": _choice(pair, "remote", where="pair.", choices=CANDIDATE_TYPES),
            "protocol": _choice(pair, "protocol", where="pair.", choices=TRANSPORT_PROTOCOLS),
            "relayProtocol": _choice(pair, "relayProtocol", where="pair.", choices=RELAY_PROTOCOLS),
        },
        "rttMs": _count(msg, "rttMs", where="", max_value=QUALITY_RTT_MAX),
        "in": {
            "kbps": _count(inbound, "kbps", where="in.", max_value=QUALITY_KBPS_MAX),
            "packets": _count(inbound, "packets", where="in.", max_value=counter),
            "lost": _count(inbound, "lost", where="in.", max_value=counter),
            "framesDecoded": _count(inbound, "framesDecoded", where="in.", max_value=counter),
            "framesDropped": _count(inbound, "framesDropped", where="in.", max_value=counter),
        },
        "out": {
            "kbps": _count(outbound, "kbps", where="out.", max_value=QUALITY_KBPS_MAX),
            "packets": _count(outbound, "packets", where="out.", max_value=counter),
            "lost": _count(outbound, "lost", where="out.", max_value=counter),
        },
        "iceRestarts": _count(msg, "iceRestarts", where="", max_value=counter),
        # Causes this server does not know are dropped, like any unknown field.
        "iceFailures": {
            cause: _count(failures, cause, where="iceFailures.", max_value=counter) or 0
            for cause in ICE_FAILURE_CAUSES
        },
    }


VALIDATORS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    CREATE: _create,
    JOIN: _join,
    OFFER: _sdp,
    ANSWER: _sdp,
    CANDIDATE: _candidate,
    MEDIA: _media,
    CHAT: _chat,
    LEAVE: _bare,
    KICK: _kick,
    LOCK: _bare,
    UNLOCK: _bare,
    PING: _bare,
    CLOSE: _bare,
    QUALITY: _quality,
    SFU_OFFER: _sfu_sdp,
    SFU_ANSWER: _sfu_answer,
    SFU_CANDIDATE: _sfu_candidate,
    SFU_LAYER: _sfu_layer,
    HANDOVER: _handover,
    SFU_RESUBSCRIBE: _sfu_resubscribe,
    MODE: _mode,
    SFU_LEAVE: _bare,
}

# Types that need the connection to be in a room.
IN_ROOM_TYPES = frozenset(
    {
        OFFER, ANSWER, CANDIDATE, MEDIA, CHAT, LEAVE, KICK, LOCK, UNLOCK, CLOSE, QUALITY,
        SFU_OFFER, SFU_ANSWER, SFU_CANDIDATE, SFU_LAYER, HANDOVER, SFU_RESUBSCRIBE,
        MODE, SFU_LEAVE,
    }
)  # fmt: skip

# Types with a frame limit of their own, below SIGNALING_MAX_MESSAGE_BYTES (in bytes).
FRAME_MAX = {QUALITY: QUALITY_FRAME_MAX}


def parse(text: str) -> tuple[dict[str, Any], str | None]:
    """Decode one text frame into a validated message and its `id`.

    The `id` is returned even when validation fails, so the error can echo it.
    """
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise bad("not valid JSON") from None
    if type(msg) is not dict:
        raise bad("a message must be a JSON object")
    msg_id = msg.get("id")
    if msg_id is not None and (type(msg_id) is not str or len(msg_id) > ID_MAX):
        raise bad(f"'id' must be a string of at most {ID_MAX} characters")
    kind = msg.get("type")
    validator = VALIDATORS.get(kind) if type(kind) is str else None
    if validator is None:
        raise ClientError(BAD_MESSAGE, "unknown or missing 'type'", msg_id=msg_id)
    limit = FRAME_MAX.get(kind)
    # Characters never outnumber bytes, and a character is at most 4 bytes.
    if (
        limit is not None
        and len(text) * 4 > limit
        and len(text.encode("utf-8", "surrogatepass")) > limit
    ):
        raise ClientError(
            TOO_LARGE, f"a {kind} message may be at most {limit} bytes", msg_id=msg_id
        )
    try:
        return validator(msg), msg_id
    except ClientError as err:
        err.msg_id = msg_id
        raise


# --- For the browser client (static/js/wire.js) ------------------------------------------


def client_constants() -> dict[str, Any]:
    """Return the constants the browser client needs, for `manage.py export_wire`.

    They are collected rather than copied, so a constant added above reaches
    static/js/wire.js with no further work: client types are the keys of
    VALIDATORS, error codes ERROR_CODES, left reasons LEFT_REASONS, close codes
    every integer named CLOSE_*, limits every integer named *_MAX or *_MIN
    (CAPACITY_* included), patterns every compiled regular
    expression (its source, in the syntax Python and JavaScript share), the
    quality report's enumerations QUALITY_ENUMS.
    Server types are the one group without a registry above, so they are named
    here; tests/rooms/test_wire.py fails for a type constant left out.
    """
    module = {name: value for name, value in globals().items() if name.isupper()}
    server_types = (
        JOINED, PEER_JOINED, PEER_LEFT, PEER_UPDATED, OFFER, ANSWER, CANDIDATE, CHAT,
        ROOM_UPDATED, ROOM_CLOSED, KICKED, ERROR, PONG,
        SFU_OFFER, SFU_ANSWER, SFU_RESTART, HANDOVER, ICE_SERVERS, PIN_LOCKED,
    )  # fmt: skip

    def keyed(values: Any) -> dict[str, str]:
        return {value.upper().replace("-", "_"): value for value in values}

    patterns = {}
    for name, value in sorted(module.items()):
        if isinstance(value, re.Pattern):
            if value.flags & ~re.UNICODE:
                raise ValueError(f"{name}: flags cannot be exported to JavaScript")
            patterns[name.removesuffix("_RE")] = value.pattern
    close_codes = {
        name.removeprefix("CLOSE_"): value
        for name, value in module.items()
        if name.startswith("CLOSE_") and type(value) is int
    }
    return {
        "PROTOCOL_VERSION": PROTOCOL_VERSION,
        "CLIENT_TYPES": keyed(VALIDATORS),
        "SERVER_TYPES": keyed(server_types),
        "ERROR_CODES": keyed(sorted(ERROR_CODES)),
        "CLOSE_CODES": dict(sorted(close_codes.items(), key=lambda item: item[1])),
        "LEFT_REASONS": keyed(LEFT_REASONS),
        "LIMITS": {
            name: value
            for name, value in sorted(module.items())
            if name.endswith(("_MAX", "_MIN")) and type(value) is int
        },
        "PATTERNS": patterns,
        "QUALITY_ENUMS": {name: list(values) for name, values in QUALITY_ENUMS.items()},
        "MEDIA_MODES": keyed(MEDIA_MODES),
    }
