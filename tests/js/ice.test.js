// TURN credentials reach the call over the signaling socket (static/js/call.js):
// in `joined`, before any link is made, then in `ice-servers` while seated.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FakeLink, FakeSignaling } from './fakes.js';
import { Call } from '../../static/js/call.js';

const ROOM = {
  number: '482913075', name: 'Standup', capacity: 6, locked: false, hasPin: false,
  owner: { id: 1, username: 'alice' }, participants: 2, closed: false,
};
const ALICE = { id: 1, username: 'alice', displayName: 'Alice Anders' };
const ICE = {
  iceServers: [
    { urls: ['stun:turn.example.org:3478'] },
    { urls: ['turn:turn.example.org:3478?transport=udp'], username: '1767603900:203.0.113.7', credential: 'c1' },
  ],
  iceTransportPolicy: 'all',
  expiresAt: '2026-01-05T09:05:00Z',
};

function setup() {
  const signaling = new FakeSignaling();
  // What happened, in order: ICE configs handed over and links made.
  const order = [];
  const call = new Call({
    room: ROOM,
    me: { id: 2, username: 'bob', displayName: 'Bob Berg' },
    signaling,
    createLink: (options) => {
      order.push(['link', options.peerId]);
      return new FakeLink(options);
    },
    log: { debug: () => {} },
  });
  call.addEventListener('ice-servers', ({ detail }) => order.push(['ice', detail.config]));
  call.join({ pin: '' });
  signaling.open();
  return { call, signaling, order };
}

test("joined's ICE servers are handed over before the first link is made", () => {
  const { signaling, order } = setup();
  signaling.receive({
    type: 'joined', room: ROOM, peerId: 'pB', created: false, resumeToken: 't', history: [], re: 'c1',
    peers: [{ peerId: 'pA', user: ALICE, media: {}, joinedAt: '2026-01-05T09:00:00Z' }],
    ice: ICE,
  });
  assert.deepEqual(order, [['ice', ICE], ['link', 'pA']]);
});

test('an ice-servers message is handed over as it comes', () => {
  const { signaling, order } = setup();
  signaling.receive({
    type: 'joined', room: ROOM, peerId: 'pB', peers: [], created: false, resumeToken: 't', history: [], re: 'c1',
  });
  assert.deepEqual(order, []);
  const renewed = { ...ICE, expiresAt: '2026-01-05T09:07:30Z' };
  signaling.receive({ type: 'ice-servers', ...renewed });
  assert.deepEqual(order, [['ice', { type: 'ice-servers', ...renewed }]]);
});
