// The client's own part of the protocol (static/js/protocol.js) against the
// generated constants (static/js/wire.js).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  CLOSE_TEXT, createDispatcher, ERROR_TEXT, errorText, formatRoomNumber, isValidPin,
  LEFT_REASON_TEXT, normalizeRoomNumber,
} from '../../static/js/protocol.js';
import {
  CLOSE_CODES, ERROR_CODES, LEFT_REASONS, SERVER_TYPES,
} from '../../static/js/wire.js';

test('every error code of the protocol has words for a person', () => {
  const missing = Object.values(ERROR_CODES).filter((code) => !ERROR_TEXT[code]);
  assert.deepEqual(missing, []);
  assert.deepEqual(Object.keys(ERROR_TEXT).sort(), Object.values(ERROR_CODES).sort());
});

test('every close code of the protocol has words for a person', () => {
  const missing = Object.values(CLOSE_CODES).filter((code) => !CLOSE_TEXT[code]);
  assert.deepEqual(missing, []);
  assert.deepEqual(Object.keys(CLOSE_TEXT).map(Number).sort(), Object.values(CLOSE_CODES).sort());
});

test('every reason to leave has words', () => {
  assert.deepEqual(Object.keys(LEFT_REASON_TEXT).sort(), Object.values(LEFT_REASONS).sort());
});

test('an unknown error code falls back to the server message, then to a generic one', () => {
  assert.equal(errorText('bad-pin'), 'Wrong PIN. Check it with the person who invited you.');
  assert.equal(errorText('new-code', 'The server says so.'), 'The server says so.');
  assert.equal(errorText('new-code'), 'Something went wrong.');
});

test('the dispatch table must name every server type and nothing else', () => {
  const table = Object.fromEntries(Object.values(SERVER_TYPES).map((type) => [type, () => type]));
  const dispatch = createDispatcher(table);
  assert.equal(dispatch({ type: 'peer-left' }), 'peer-left');

  const { pong, ...withoutPong } = table;
  assert.throws(() => createDispatcher(withoutPong), /missing \[pong\], unexpected \[\]/);
  assert.throws(() => createDispatcher({ ...table, hello: () => {} }), /missing \[\], unexpected \[hello\]/);

  const unknown = [];
  const lenient = createDispatcher(table, { onUnknown: (message) => unknown.push(message) });
  lenient({ type: 'from-a-newer-server' });
  lenient('not an object');
  assert.deepEqual(unknown, [{ type: 'from-a-newer-server' }, 'not an object']);
});

test('room numbers as people type and read them', () => {
  assert.equal(normalizeRoomNumber('482 913 075'), '482913075');
  assert.equal(normalizeRoomNumber('482-913-075'), '482913075');
  assert.equal(normalizeRoomNumber(' 482.913\u2013075 '), '482913075');
  assert.equal(normalizeRoomNumber('082913075'), null);
  assert.equal(normalizeRoomNumber('12 34'), null);
  assert.equal(normalizeRoomNumber('4829130755'), null);
  assert.equal(formatRoomNumber('482913075'), '482 913 075');
  assert.equal(formatRoomNumber('12'), '12');
});

test('a PIN is 4 to 12 digits', () => {
  assert.equal(isValidPin('4321'), true);
  assert.equal(isValidPin('123456789012'), true);
  assert.equal(isValidPin('123'), false);
  assert.equal(isValidPin('1234567890123'), false);
  assert.equal(isValidPin('12a4'), false);
});
