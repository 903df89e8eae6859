// The signaling protocol as the browser speaks it: what is the client's own.
//
// The wire constants (message types, error and close codes, left reasons,
// limits, patterns) are generated from the server's rooms/protocol.py into
// wire.js; this module adds what only the client has: the words a person
// reads for each code, the one dispatch table rule, and room numbers as
// people type and read them.

import {
  CLOSE_CODES, ERROR_CODES, LEFT_REASONS, PATTERNS, SERVER_TYPES,
} from './wire.js';

// What a person reads for each error code (tests/js checks every code has one).
export const ERROR_TEXT = Object.freeze({
  [ERROR_CODES.BAD_MESSAGE]: 'The app sent something the server did not understand. Reload the page.',
  [ERROR_CODES.TOO_LARGE]: 'That message is too long.',
  [ERROR_CODES.RATE_LIMITED]: 'Too many requests: wait a moment and try again.',
  [ERROR_CODES.ROOM_NOT_FOUND]: 'There is no room with that number. Check the number and try again.',
  [ERROR_CODES.ROOM_CLOSED]: 'This room has been closed.',
  [ERROR_CODES.ROOM_FULL]: 'This room is full. Ask the owner to raise its capacity, or try again later.',
  [ERROR_CODES.ROOM_LOCKED]: 'This room is locked: its owner is not letting anyone else in.',
  [ERROR_CODES.BAD_PIN]: 'Wrong PIN. Check it with the person who invited you.',
  [ERROR_CODES.NOT_IN_ROOM]: 'You are not in the room any more.',
  [ERROR_CODES.ALREADY_IN_ROOM]: 'You are already in a room in this window.',
  [ERROR_CODES.UNKNOWN_PEER]: 'That person has already left.',
  [ERROR_CODES.FORBIDDEN]: 'Only the room owner can do that.',
  [ERROR_CODES.SERVER_BUSY]: 'The server is busy. Try again in a moment.',
  [ERROR_CODES.SFU_UNAVAILABLE]: 'This room\'s call goes through the media server, which cannot be reached right now. Try again in a moment.',
  [ERROR_CODES.PIN_LOCKED]: 'Too many wrong PINs were tried for this room, so joining with its PIN is paused for a while. Its owner has been told.',
});

export function errorText(code, fallback = '') {
  return ERROR_TEXT[code] || fallback || 'Something went wrong.';
}

// What a person reads when the server closes the socket with a code.
export const CLOSE_TEXT = Object.freeze({
  [CLOSE_CODES.RECONNECT]: 'The server is restarting. Reconnecting…',
  [CLOSE_CODES.NOT_READING]: 'The connection fell behind. Reconnecting…',
  [CLOSE_CODES.ROOM_CLOSED]: 'The meeting has ended. Thanks for joining.',
  [CLOSE_CODES.KICKED]: 'The room owner removed you from this room.',
  [CLOSE_CODES.BAD_INPUT]: 'The app and the server stopped understanding each other. Reload the page.',
  [CLOSE_CODES.UNAUTHENTICATED]: 'You were signed out (here or on another device). Sign in again to rejoin the call.',
  [CLOSE_CODES.FORBIDDEN_ORIGIN]: 'The server does not accept calls from this address.',
  [CLOSE_CODES.REPLACED]: 'You joined this call from another tab or device, so it continues there.',
  [CLOSE_CODES.RATE_LIMITED]: ERROR_TEXT[ERROR_CODES.RATE_LIMITED],
});

export function closeText(code) {
  return CLOSE_TEXT[code] || '';
}

// The reasons a peer leaves, in words ("Bob Berg timed out.").
export const LEFT_REASON_TEXT = Object.freeze({
  [LEFT_REASONS.LEFT]: 'left',
  [LEFT_REASONS.DISCONNECTED]: 'lost their connection',
  [LEFT_REASONS.KICKED]: 'was removed by the owner',
  [LEFT_REASONS.TIMEOUT]: 'timed out',
});

const SERVER_TYPE_LIST = Object.freeze(Object.values(SERVER_TYPES));

/**
 * Build the dispatcher for server messages from a table {type: handler}.
 *
 * The table must name every server type and nothing else; a message whose
 * type is not in the table goes to `onUnknown` (a newer server may add types).
 */
export function createDispatcher(table, { onUnknown = () => {} } = {}) {
  const missing = SERVER_TYPE_LIST.filter((type) => typeof table[type] !== 'function');
  const extra = Object.keys(table).filter((type) => !SERVER_TYPE_LIST.includes(type));
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

const ROOM_NUMBER = new RegExp(`^(?:${PATTERNS.ROOM_NUMBER})$`);
// The server's separators, plus dots and en dashes: the client turns what
// people type into the nine digits, so it may forgive a little more.
const ROOM_NUMBER_SEPARATORS = new RegExp(`(?:${PATTERNS.ROOM_NUMBER_SEPARATORS})|[.\u2013]+`, 'g');
const PIN = new RegExp(`^(?:${PATTERNS.PIN})$`);

/** Return the 9 digits of a room number as people type it ("482 913 075"), or null. */
export function normalizeRoomNumber(raw) {
  const digits = String(raw || '').replace(ROOM_NUMBER_SEPARATORS, '');
  return ROOM_NUMBER.test(digits) ? digits : null;
}

/** "482913075" -> "482 913 075", the way the number is read aloud. */
export function formatRoomNumber(number) {
  const n = String(number || '');
  return n.length === 9 ? `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}` : n;
}

/** Whether a PIN a person chose is one the server accepts (4 to 12 digits). */
export function isValidPin(pin) {
  return PIN.test(String(pin));
}
