"""A minimal STUN/TURN client (RFC 5389 / RFC 5766), just enough to test coturn.

Long-term credentials: the first request gets 401 with REALM and NONCE; the
retry carries USERNAME, REALM, NONCE, MESSAGE-INTEGRITY (HMAC-SHA1 keyed with
MD5(username:realm:password)) and FINGERPRINT. Talks UDP, or a byte stream
(TCP or TLS) where messages follow each other unframed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
import struct
import zlib
from dataclasses import dataclass, field

MAGIC_COOKIE = 0x2112A442

# Methods and classes (RFC 5389 section 6, RFC 5766 section 13).
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
CREATE_PERMISSION = 0x008
CLASS_REQUEST = 0x000
CLASS_SUCCESS = 0x100
CLASS_ERROR = 0x110

# Attributes.
MAPPED_ADDRESS = 0x0001
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_TRANSPORT = 0x0019
XOR_MAPPED_ADDRESS = 0x0020
FINGERPRINT = 0x8028

UDP_PROTOCOL = 17
TCP_PROTOCOL = 6


class TurnError(Exception):
    """The server answered with an error response."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


@dataclass
class Message:
    method: int
    cls: int
    transaction_id: bytes
    attributes: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, attr_type: int) -> bytes | None:
        for kind, value in self.attributes:
            if kind == attr_type:
                return value
        return None

    @property
    def error(self) -> tuple[int, str] | None:
        value = self.get(ERROR_CODE)
        if value is None:
            return None
        code = (value[2] & 0x07) * 100 + value[3]
        return code, value[4:].decode("utf-8", "replace")


def _attribute(kind: int, value: bytes) -> bytes:
    padding = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\x00" * padding


def _header(msg_type: int, length: int, transaction_id: bytes) -> bytes:
    return struct.pack("!HHI", msg_type, length, MAGIC_COOKIE) + transaction_id


def long_term_key(username: str, realm: str, password: str) -> bytes:
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()  # noqa: S324 - RFC 5389


def encode(
    method: int,
    attributes: list[tuple[int, bytes]],
    *,
    key: bytes | None = None,
    transaction_id: bytes | None = None,
    cls: int = CLASS_REQUEST,
) -> bytes:
    """Serialize a message, adding MESSAGE-INTEGRITY (when `key`) and FINGERPRINT."""
    transaction_id = transaction_id or os.urandom(12)
    msg_type = method | cls
    body = b"".join(_attribute(kind, value) for kind, value in attributes)
    if key is not None:
        # The length covers MESSAGE-INTEGRITY itself but not what follows it.
        head = _header(msg_type, len(body) + 24, transaction_id)
        mac = hmac.new(key, head + body, hashlib.sha1).digest()
        body += _attribute(MESSAGE_INTEGRITY, mac)
    head = _header(msg_type, len(body) + 8, transaction_id)
    crc = (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF
    body += _attribute(FINGERPRINT, struct.pack("!I", crc))
    return _header(msg_type, len(body), transaction_id) + body


def decode(data: bytes) -> Message:
    msg_type, length, cookie = struct.unpack("!HHI", data[:8])
    if cookie != MAGIC_COOKIE:
        raise ValueError("not a STUN message")
    transaction_id = data[8:20]
    attributes = []
    offset = 20
    end = 20 + length
    while offset + 4 <= end:
        kind, size = struct.unpack("!HH", data[offset : offset + 4])
        attributes.append((kind, data[offset + 4 : offset + 4 + size]))
        offset += 4 + size + (4 - size % 4) % 4
    return Message(msg_type & 0x3EEF, msg_type & 0x0110, transaction_id, attributes)


def xor_address(ip: str, port: int) -> bytes:
    """Encode an IPv4 XOR-*-ADDRESS value (RFC 5389 section 15.2)."""
    addr = int(ipaddress.IPv4Address(ip))
    return struct.pack("!BBHI", 0, 0x01, port ^ (MAGIC_COOKIE >> 16), addr ^ MAGIC_COOKIE)


def parse_xor_address(value: bytes) -> tuple[str, int]:
    family, xport, xaddr = struct.unpack("!xBHI", value[:8])
    if family != 0x01:
        raise ValueError("only IPv4 is handled here")
    return str(ipaddress.IPv4Address(xaddr ^ MAGIC_COOKIE)), xport ^ (MAGIC_COOKIE >> 16)


class TurnClient:
    """One client 5-tuple: UDP to (host, port), or an already connected stream socket."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3478,
        *,
        stream: socket.socket | None = None,
        timeout: float = 3.0,
        source: str | None = None,
    ) -> None:
        if stream is None:
            ip = ipaddress.ip_address(host)
            if not ip.is_loopback or (source and not ipaddress.ip_address(source).is_loopback):
                raise ValueError("tests talk to loopback only")
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            if source:
                # Another client address on loopback (127.0.0.0/8 is all this host's).
                self.sock.bind((source, 0))
            self.sock.connect((host, port))
            self.udp = True
        else:
            self.sock = stream
            self.udp = False
        self.sock.settimeout(timeout)
        self.username: str | None = None
        self.password: str | None = None
        self.realm: str | None = None
        self.nonce: bytes | None = None
        # Seconds the server granted the allocation (its LIFETIME answer).
        self.lifetime: int | None = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> TurnClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self) -> bytes:
        if self.udp:
            return self.sock.recv(65535)
        head = self._read_exactly(20)
        (length,) = struct.unpack("!H", head[2:4])
        return head + self._read_exactly(length)

    def _read_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("server closed the stream")
            data += chunk
        return data

    def transact(self, payload: bytes) -> Message:
        """Send a request and return the answer with the same transaction id."""
        transaction_id = payload[8:20]
        for _attempt in range(3):
            self.sock.send(payload)
            try:
                while True:
                    answer = decode(self._receive())
                    if answer.transaction_id == transaction_id:
                        return answer
            except TimeoutError:
                if not self.udp:
                    raise
        raise TimeoutError("no answer from the TURN server")

    def binding(self) -> tuple[str, int]:
        """STUN Binding: return this client's address as the server sees it."""
        answer = self.transact(encode(BINDING, []))
        value = answer.get(XOR_MAPPED_ADDRESS)
        assert answer.cls == CLASS_SUCCESS and value is not None
        return parse_xor_address(value)

    def _authenticated(self, method: int, attributes: list[tuple[int, bytes]]) -> Message:
        if self.realm is None or self.nonce is None:
            raise RuntimeError("no realm/nonce yet: allocate first")
        assert self.username is not None and self.password is not None
        key = long_term_key(self.username, self.realm, self.password)
        auth = [
            (USERNAME, self.username.encode()),
            (REALM, self.realm.encode()),
            (NONCE, self.nonce),
        ]
        answer = self.transact(encode(method, attributes + auth, key=key))
        if answer.error and answer.error[0] == 438 and answer.get(NONCE):
            # Stale nonce: retry once with the fresh one (RFC 5389 section 10.2.3).
            self.nonce = answer.get(NONCE)
            return self._authenticated(method, attributes)
        return answer

    def allocate(
        self, username: str, password: str, lifetime: int = 600, transport: int = UDP_PROTOCOL
    ) -> tuple[str, int]:
        """Allocate a relay (UDP unless `transport` says TCP); return its address or raise."""
        self.username, self.password = username, password
        attributes = [
            (REQUESTED_TRANSPORT, struct.pack("!B3x", transport)),
            (LIFETIME, struct.pack("!I", lifetime)),
        ]
        challenge = self.transact(encode(ALLOCATE, attributes))
        if challenge.cls == CLASS_SUCCESS:
            raise AssertionError("the server allocated without credentials")
        error = challenge.error
        if error is None or error[0] != 401:
            raise TurnError(*(error or (0, "no error code")))
        self.realm = (challenge.get(REALM) or b"").decode()
        self.nonce = challenge.get(NONCE)
        answer = self._authenticated(ALLOCATE, attributes)
        if answer.cls != CLASS_SUCCESS:
            raise TurnError(*(answer.error or (0, "no error code")))
        value = answer.get(XOR_RELAYED_ADDRESS)
        assert value is not None, "success without XOR-RELAYED-ADDRESS"
        granted = answer.get(LIFETIME)
        self.lifetime = struct.unpack("!I", granted)[0] if granted else None
        return parse_xor_address(value)

    def create_permission(self, peer_ip: str) -> None:
        """Install a permission for peer_ip (no packet goes to the peer); raise TurnError."""
        peer = xor_address(peer_ip, 0)
        answer = self._authenticated(CREATE_PERMISSION, [(XOR_PEER_ADDRESS, peer)])
        if answer.cls != CLASS_SUCCESS:
            raise TurnError(*(answer.error or (0, "no error code")))

    def release(self) -> None:
        """Refresh with LIFETIME 0: free the allocation."""
        self._authenticated(REFRESH, [(LIFETIME, struct.pack("!I", 0))])
