// The signaling socket (static/js/signaling.js) against a fake WebSocket:
// which closes it comes back from, with the call's final close codes.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';

import './fakes.js';
import { FINAL_CLOSE_CODES } from '../../static/js/call.js';
import { SignalingClient } from '../../static/js/signaling.js';

class FakeWebSocket extends EventTarget {
  static CONNECTING = 0;

  static OPEN = 1;

  static CLOSING = 2;

  static CLOSED = 3;

  static made = [];

  constructor(url) {
    super();
    this.url = url;
    this.readyState = FakeWebSocket.CONNECTING;
    this.frames = [];
    FakeWebSocket.made.push(this);
  }

  send(data) {
    this.frames.push(JSON.parse(data));
  }

  close() {
    this.readyState = FakeWebSocket.CLOSED;
  }

  serverOpens() {
    this.readyState = FakeWebSocket.OPEN;
    this.dispatchEvent(new Event('open'));
  }

  serverCloses(code) {
    this.readyState = FakeWebSocket.CLOSED;
    const event = new Event('close');
    event.code = code;
    event.reason = '';
    this.dispatchEvent(event);
  }
}

let client;

beforeEach(() => {
  FakeWebSocket.made = [];
  globalThis.WebSocket = FakeWebSocket;
  client = new SignalingClient('ws://127.0.0.1/ws/signaling/', { finalCloseCodes: FINAL_CLOSE_CODES });
});

afterEach(() => client.close());

function states() {
  const seen = [];
  client.addEventListener('state', ({ detail }) => seen.push(detail.state));
  return seen;
}

for (const [code, name] of [[4409, 'another socket took the peer'], [4401, 'signed out'], [4003, 'kicked'], [4000, 'room closed']]) {
  test(`close ${code} (${name}) is final: closed for good, no second socket`, () => {
    const closed = [];
    client.addEventListener('closed', ({ detail }) => closed.push(detail));
    const seen = states();
    client.connect();
    FakeWebSocket.made[0].serverOpens();
    FakeWebSocket.made[0].serverCloses(code);
    assert.deepEqual(closed, [{ code, reason: '' }]);
    assert.deepEqual(seen, ['connecting', 'open', 'closed']);
    assert.equal(client.retryTimer, null);
    assert.equal(FakeWebSocket.made.length, 1);
  });
}

test('a drop (1006) or a server restart (1012) is not final: the client comes back', () => {
  for (const code of [1006, 1012]) {
    const seen = states();
    client.connect();
    FakeWebSocket.made.at(-1).serverOpens();
    FakeWebSocket.made.at(-1).serverCloses(code);
    assert.deepEqual(seen, ['connecting', 'open', 'reconnecting'], `close code ${code}`);
    assert.notEqual(client.retryTimer, null);
    client.close();
    client = new SignalingClient('ws://127.0.0.1/ws/signaling/', { finalCloseCodes: FINAL_CLOSE_CODES });
  }
});

test('messages get request ids, pings do not; nothing is sent while closed', () => {
  assert.equal(client.send({ type: 'chat', text: 'hi' }), null);
  client.connect();
  const ws = FakeWebSocket.made[0];
  ws.serverOpens();
  assert.equal(client.send({ type: 'join', room: '482913075' }), 'c1');
  assert.equal(client.send({ type: 'ping' }), null);
  assert.deepEqual(ws.frames, [{ type: 'join', room: '482913075', id: 'c1' }, { type: 'ping' }]);
});
