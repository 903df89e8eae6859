// GENERATED from rooms/protocol.py (client_constants()) by `manage.py export_wire`.
// Do not edit: change rooms/protocol.py and run `make wire`;
// tests/rooms/test_wire.py fails when this file is out of date.

export const PROTOCOL_VERSION = 1;
export const CLIENT_TYPES = Object.freeze({
  CREATE: "create",
  JOIN: "join",
  OFFER: "offer",
  ANSWER: "answer",
  CANDIDATE: "candidate",
  MEDIA: "media",
  CHAT: "chat",
  LEAVE: "leave",
  KICK: "kick",
  LOCK: "lock",
  UNLOCK: "unlock",
  PING: "ping",
  CLOSE: "close",
  QUALITY: "quality",
  SFU_OFFER: "sfu-offer",
  SFU_ANSWER: "sfu-answer",
  SFU_CANDIDATE: "sfu-candidate",
  SFU_LAYER: "sfu-layer",
  HANDOVER: "handover",
  SFU_RESUBSCRIBE: "sfu-resubscribe",
  MODE: "mode",
  SFU_LEAVE: "sfu-leave",
});
export const SERVER_TYPES = Object.freeze({
  JOINED: "joined",
  PEER_JOINED: "peer-joined",
  PEER_LEFT: "peer-left",
  PEER_UPDATED: "peer-updated",
  OFFER: "offer",
  ANSWER: "answer",
  CANDIDATE: "candidate",
  CHAT: "chat",
  ROOM_UPDATED: "room-updated",
  ROOM_CLOSED: "room-closed",
  KICKED: "kicked",
  ERROR: "error",
  PONG: "pong",
  SFU_OFFER: "sfu-offer",
  SFU_ANSWER: "sfu-answer",
  SFU_RESTART: "sfu-restart",
  HANDOVER: "handover",
  ICE_SERVERS: "ice-servers",
  PIN_LOCKED: "pin-locked",
});
export const ERROR_CODES = Object.freeze({
  ALREADY_IN_ROOM: "already-in-room",
  BAD_MESSAGE: "bad-message",
  BAD_PIN: "bad-pin",
  FORBIDDEN: "forbidden",
  NOT_IN_ROOM: "not-in-room",
  PIN_LOCKED: "pin-locked",
  RATE_LIMITED: "rate-limited",
  ROOM_CLOSED: "room-closed",
  ROOM_FULL: "room-full",
  ROOM_LOCKED: "room-locked",
  ROOM_NOT_FOUND: "room-not-found",
  SERVER_BUSY: "server-busy",
  SFU_UNAVAILABLE: "sfu-unavailable",
  TOO_LARGE: "too-large",
  UNKNOWN_PEER: "unknown-peer",
});
export const CLOSE_CODES = Object.freeze({
  RECONNECT: 1012,
  ROOM_CLOSED: 4000,
  KICKED: 4003,
  BAD_INPUT: 4400,
  UNAUTHENTICATED: 4401,
  FORBIDDEN_ORIGIN: 4403,
  NOT_READING: 4408,
  REPLACED: 4409,
  RATE_LIMITED: 4429,
});
export const LEFT_REASONS = Object.freeze({
  LEFT: "left",
  DISCONNECTED: "disconnected",
  KICKED: "kicked",
  TIMEOUT: "timeout",
});
export const LIMITS = Object.freeze({
  CAPACITY_LIMIT_MAX: 200,
  CAPACITY_MAX: 12,
  CAPACITY_MIN: 2,
  CHAT_MAX: 2000,
  ID_MAX: 64,
  NAME_MAX: 100,
  PEER_ID_MAX: 32,
  QUALITY_COUNTER_MAX: 2147483647,
  QUALITY_FRAME_MAX: 4096,
  QUALITY_KBPS_MAX: 10000000,
  QUALITY_MS_MAX: 86400000,
  QUALITY_PEERS_MAX: 11,
  QUALITY_RTT_MAX: 60000,
  RESUME_TOKEN_MAX: 512,
  SFU_SUBSTREAM_MAX: 2,
});
export const PATTERNS = Object.freeze({
  PIN: "[0-9]{4,12}",
  ROOM_NUMBER: "[1-9][0-9]{8}",
  ROOM_NUMBER_SEPARATORS: "[\\s-]+",
});
export const QUALITY_ENUMS = Object.freeze({
  CONNECTION_STATES: ["new", "connecting", "connected", "disconnected", "failed", "closed"],
  CANDIDATE_TYPES: ["host", "srflx", "prflx", "relay"],
  TRANSPORT_PROTOCOLS: ["udp", "tcp"],
  RELAY_PROTOCOLS: ["udp", "tcp", "tls"],
  ICE_FAILURE_CAUSES: ["failed", "disconnected-timeout"],
});
export const MEDIA_MODES = Object.freeze({
  MESH: "mesh",
  SFU: "sfu",
  AUTO: "auto",
});
