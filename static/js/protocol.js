// The signaling protocol, version 1, as the browser speaks it.
//
// This module lists every message type of the wire contract
// (../shared/design/protocol.md, extended in docs/protocol.md) and builds the
// one dispatch table through which every server message is handled: a table
// that forgets a type is refused when the page starts, not when the message
// first arrives in a call.

export const PROTOCOL_VERSION = 1;

// Client -> server. `close` is the server's documented extension: the owner
// ends the meeting for everyone.
export const CLIENT_TYPES = Object.freeze([
  'create', 'join', 'offer', 'answer', 'candidate', 'media', 'chat',
  'leave', 'kick', 'lock', 'unlock', 'ping', 'close',
]);

// Server -> client.
export const SERVER_TYPES = Object.freeze([
  'joined', 'peer-joined', 'peer-left', 'peer-updated', 'offer', 'answer',
  'candidate', 'chat', 'room-updated', 'room-closed', 'kicked', 'error', 'pong',
]);

// WebSocket close codes the server uses; none of them is worth reconnecting for.
export const CLOSE_CODES = Object.freeze({
  ROOM_CLOSED: 4000,
  KICKED: 4003,
  BAD_INPUT: 4400,
  UNAUTHENTICATED: 4401,
  FORBIDDEN_ORIGIN: 4403,
  RATE_LIMITED: 4429,
});
export const FINAL_CLOSE_CODES = new Set(Object.values(CLOSE_CODES));

// What a person reads for each error code.
const ERROR_TEXT = Object.freeze({
  'bad-message': 'The app sent something the server did not understand. Reload the page.',
  'too-large': 'That message is too long.',
  'rate-limited': 'Too many requests: wait a moment and try again.',
  'room-not-found': 'There is no room with that number. Check the number and try again.',
  'room-closed': 'This room has been closed.',
  'room-full': 'This room is full. Ask the owner to raise its capacity, or try again later.',
  'room-locked': 'This room is locked: its owner is not letting anyone else in.',
  'bad-pin': 'Wrong PIN. Check it with the person who invited you.',
  'not-in-room': 'You are not in the room any more.',
  'already-in-room': 'You are already in a room in this window.',
  'unknown-peer': 'That person has already left.',
  forbidden: 'Only the room owner can do that.',
  'server-busy': 'The server is busy. Try again in a moment.',
});

export function errorText(code, fallback = '') {
  return ERROR_TEXT[code] || fallback || 'Something went wrong.';
}

// The reasons a peer leaves, in words.
export const LEFT_REASON_TEXT = Object.freeze({
  left: 'left',
  disconnected: 'lost their connection',
  kicked: 'was removed by the owner',
  timeout: 'timed out',
});

/**
 * Build the dispatcher for server messages from a table {type: handler}.
 *
 * The table must name every server type and nothing else; a message whose
 * type is not in the table goes to `onUnknown` (a newer server may add types).
 */
export function createDispatcher(table, { onUnknown = () => {} } = {}) {
  const missing = SERVER_TYPES.filter((type) => typeof table[type] !== 'function');
  const extra = Object.keys(table).filter((type) => !SERVER_TYPES.includes(type));
  if (missing.length || extra.length) {
    throw new Error(`dispatch table: missing [${missing}], unexpected [${extra}]`);
  }
  const handlers = new Map(Object.entries(table));
  return (message) => {
    if (!message || typeof message.type !== 'string') return onUnknown(message);
    const handler = handlers.get(message.type);
    return handler ? handler(message) : onUnknown(message);
  };
}

/** Return the 9 digits of a room number as people type it ("482 913 075"), or null. */
export function normalizeRoomNumber(raw) {
  const digits = String(raw || '').replace(/[\s.\-–]+/g, '');
  return /^[1-9][0-9]{8}$/.test(digits) ? digits : null;
}

/** "482913075" -> "482 913 075", the way the number is read aloud. */
export function formatRoomNumber(number) {
  const n = String(number || '');
  return n.length === 9 ? `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}` : n;
}
