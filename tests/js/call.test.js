// The call state (static/js/call.js) driven directly: fake signaling, fake
// peer links, exact state and exact messages sent.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { FakeLink, FakeSignaling, memoryPins, record } from './fakes.js';
import {
  Call, ENDINGS, FINAL_CLOSE_CODES, RECONNECT_CLOSE_CODES,
} from '../../static/js/call.js';
import { CLOSE_CODES } from '../../static/js/wire.js';

const NUMBER = '482913075';
const ALICE = { id: 1, username: 'alice', displayName: 'Alice Anders' };
const BOB = { id: 2, username: 'bob', displayName: 'Bob Berg' };
const CAROL = { id: 3, username: 'carol', displayName: 'Carol Chen' };
const ROOM = {
  number: NUMBER, name: 'Standup', capacity: 6, locked: false, hasPin: false,
  owner: { id: 1, username: 'alice' }, participants: 1, closed: false,
};
const ON = { audio: true, video: true, screen: false };

function peer(peerId, user, media = ON) {
  return { peerId, user, media, joinedAt: '2026-01-05T09:00:00Z' };
}

function setup({ me = BOB, room = ROOM, pins = memoryPins() } = {}) {
  const signaling = new FakeSignaling();
  const links = [];
  const call = new Call({
    room,
    me,
    signaling,
    pins,
    createLink: (options) => {
      const link = new FakeLink(options);
      links.push(link);
      return link;
    },
    log: { debug: () => {} },
  });
  return { call, signaling, links, pins };
}

function joinedMessage({ peerId = 'pB', peers = [], re = 'c1', created = false, ...extra } = {}) {
  return {
    type: 'joined', room: { ...ROOM, participants: peers.length + 1 }, peerId, peers, created,
    resumeToken: `token-${peerId}`, history: [], re, ...extra,
  };
}

/** Join as the newcomer with `peers` already there; returns the setup. */
function inCall({ peers = [peer('pA', ALICE)], ...options } = {}) {
  const s = setup(options);
  s.call.setMedia(ON);
  s.call.join({ pin: '' });
  s.signaling.open();
  s.signaling.receive(joinedMessage({ peers }));
  s.signaling.sent.length = 0;
  return s;
}

describe('joining', () => {
  test('join connects, then asks for the room; the answer puts us in the call as the newcomer', () => {
    const { call, signaling, links } = setup();
    const events = record(call, ['phase', 'notice']);
    call.setMedia({ audio: true, video: false, screen: false });
    assert.equal(call.phase, 'prejoin');
    assert.equal(call.join({ pin: '' }), true);
    assert.equal(call.phase, 'joining');
    assert.equal(signaling.connects, 1);
    assert.deepEqual(signaling.sent, []);

    signaling.open();
    assert.deepEqual(signaling.sent, [{ type: 'join', room: NUMBER, id: 'c1' }]);

    signaling.receive(joinedMessage({ peers: [peer('pA', ALICE), peer('pC', CAROL)] }));
    assert.equal(call.phase, 'in-call');
    assert.equal(call.peerId, 'pB');
    assert.equal(call.resumeToken, 'token-pB');
    assert.equal(call.joins, 1);
    // The newcomer is impolite towards everyone already there, oldest first.
    assert.deepEqual(links.map((l) => [l.peerId, l.polite]), [['pA', false], ['pC', false]]);
    assert.deepEqual([...call.peers.keys()], ['pA', 'pC']);
    // Then it tells the others what it sends.
    assert.deepEqual(signaling.sent.slice(1), [
      { type: 'media', audio: true, video: false, screen: false, id: 'c2' },
    ]);
    assert.deepEqual(events, [
      ['phase', { phase: 'joining', ended: null }],
      ['phase', { phase: 'in-call', ended: null }],
      ['notice', { text: 'You joined the room.' }],
    ]);
  });

  test('the owner who created the room is told so', () => {
    const { call, signaling } = setup({ me: ALICE });
    const notices = record(call, ['notice']);
    call.join();
    signaling.open();
    signaling.receive(joinedMessage({ peerId: 'pA', created: true }));
    assert.equal(call.isOwner, true);
    assert.deepEqual(notices, [['notice', { text: 'You created this room.' }]]);
  });

  test('a PIN typed, or remembered for this tab, goes with the join and is remembered', () => {
    const pins = memoryPins({ [NUMBER]: '4321' });
    const { call, signaling } = setup({ pins, room: { ...ROOM, hasPin: true } });
    call.join({ pin: '' });
    signaling.open();
    assert.deepEqual(signaling.messages(), [{ type: 'join', room: NUMBER, pin: '4321' }]);

    const typed = setup({ room: { ...ROOM, hasPin: true } });
    typed.call.join({ pin: '9876' });
    typed.signaling.open();
    typed.signaling.receive(joinedMessage());
    assert.deepEqual(typed.signaling.messages()[0], { type: 'join', room: NUMBER, pin: '9876' });
    assert.deepEqual(typed.pins.pins, { [NUMBER]: '9876' });
  });

  test('a refused join goes back to the pre-join screen with the reason', () => {
    const { call, signaling } = setup();
    const events = record(call, ['join-error', 'phase']);
    call.join({ pin: '1111' });
    signaling.open();
    signaling.receive({ type: 'error', code: 'bad-pin', message: 'That PIN is not right.', re: 'c1' });
    assert.equal(call.phase, 'prejoin');
    assert.equal(call.ended, null);
    assert.deepEqual(events.slice(1), [
      ['phase', { phase: 'prejoin', ended: null }],
      ['join-error', { code: 'bad-pin', text: 'Wrong PIN. Check it with the person who invited you.' }],
    ]);
    // And the person may try again on the same socket.
    assert.equal(call.join({ pin: '4321' }), true);
    assert.deepEqual(signaling.messages().at(-1), { type: 'join', room: NUMBER, pin: '4321' });
  });

  test('join does nothing once joining or in the call', () => {
    const { call, signaling } = inCall();
    assert.equal(call.join(), false);
    assert.deepEqual(signaling.sent, []);
  });
});

describe('peers', () => {
  test('someone joining after us gets a polite link and a notice, once', () => {
    const { call, signaling, links } = inCall({ peers: [] });
    const notices = record(call, ['notice']);
    signaling.receive({ type: 'peer-joined', peer: peer('pC', CAROL) });
    signaling.receive({ type: 'peer-joined', peer: peer('pC', CAROL) });
    assert.deepEqual(links.map((l) => [l.peerId, l.polite]), [['pC', true]]);
    assert.deepEqual(notices, [['notice', { text: 'Carol Chen joined.' }]]);
  });

  test('our own peer-joined, or one before we are in the call, is ignored', () => {
    const { call, signaling, links } = setup();
    signaling.receive({ type: 'peer-joined', peer: peer('pC', CAROL) });
    assert.equal(links.length, 0);
    const s = inCall({ peers: [] });
    s.signaling.receive({ type: 'peer-joined', peer: peer('pB', BOB) });
    assert.equal(s.links.length, 0);
    assert.equal(call.peers.size, 0);
  });

  test('an offer that overtakes its peer-joined makes the polite link on the spot', () => {
    const { call, signaling, links } = inCall({ peers: [] });
    signaling.receive({ type: 'offer', from: 'pC', to: 'pB', sdp: 'v=0 offer' });
    assert.deepEqual(links.map((l) => [l.peerId, l.polite]), [['pC', true]]);
    assert.deepEqual(links[0].calls, [['description', 'offer', 'v=0 offer']]);
    // The peer-joined that follows fills in who it is, without a second link.
    signaling.receive({ type: 'peer-joined', peer: peer('pC', CAROL) });
    assert.equal(links.length, 1);
    assert.deepEqual(call.peers.get('pC').info.user, CAROL);
  });

  test('answers and candidates reach the link of their sender; strangers are ignored', () => {
    const { signaling, links } = inCall();
    const candidate = { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' };
    signaling.receive({ type: 'answer', from: 'pA', to: 'pB', sdp: 'v=0 answer' });
    signaling.receive({ type: 'candidate', from: 'pA', to: 'pB', candidate });
    signaling.receive({ type: 'candidate', from: 'pA', to: 'pB', candidate: null });
    signaling.receive({ type: 'answer', from: 'pZ', to: 'pB', sdp: 'v=0' });
    assert.deepEqual(links[0].calls, [
      ['description', 'answer', 'v=0 answer'], ['candidate', candidate], ['candidate', null],
    ]);
    assert.equal(links.length, 1);
  });

  test('a peer leaving closes its link and says why', () => {
    const { call, signaling, links } = inCall();
    const events = record(call, ['peer-removed', 'notice']);
    signaling.receive({ type: 'peer-left', peerId: 'pA', reason: 'timeout' });
    assert.equal(links[0].closed, true);
    assert.equal(call.peers.size, 0);
    assert.deepEqual(events.map(([type]) => type), ['peer-removed', 'notice']);
    assert.deepEqual(events[1][1], { text: 'Alice Anders timed out.' });
    signaling.receive({ type: 'peer-left', peerId: 'pA', reason: 'left' });
    assert.equal(events.length, 2);
  });

  test('peer-updated changes what we know of the others, never of ourselves', () => {
    const { call, signaling } = inCall();
    const muted = { audio: false, video: true, screen: false };
    signaling.receive({ type: 'peer-updated', peer: peer('pA', ALICE, muted) });
    signaling.receive({ type: 'peer-updated', peer: peer('pB', BOB, muted) });
    assert.deepEqual(call.peers.get('pA').info.media, muted);
    assert.equal(call.peers.has('pB'), false);
  });

  test('link states and tracks are passed on with their peer', () => {
    const { call, links } = inCall();
    const events = record(call, ['peer-state']);
    links[0].reach('connected');
    assert.deepEqual(events, [['peer-state', { peer: call.peers.get('pA'), state: 'connected' }]]);
  });

  test('new ICE servers reach every link', () => {
    const { call, links } = inCall({ peers: [peer('pA', ALICE), peer('pC', CAROL)] });
    const config = { iceServers: [{ urls: ['turn:127.0.0.1:3478'], username: '1:2', credential: 'x' }] };
    call.setIceServers(config);
    assert.deepEqual(links.map((l) => l.calls), [[['setIceServers', config]], [['setIceServers', config]]]);
  });
});

describe('resume', () => {
  test('back on a new socket we ask for our old peer; the same peer id keeps every link', () => {
    const { call, signaling, links } = inCall({ peers: [peer('pA', ALICE), peer('pC', CAROL)] });
    links[0].reach('connected');
    signaling.drop();
    signaling.open();
    assert.deepEqual(signaling.messages(), [{ type: 'join', room: NUMBER, resume: 'token-pB' }]);

    // Carol left while we were away; Dave came.
    const dave = peer('pD', { id: 4, username: 'dave', displayName: 'Dave Diaz' });
    signaling.receive(joinedMessage({
      peers: [peer('pA', ALICE), dave], re: signaling.sent[0].id, resumed: true, replayed: false,
    }));
    assert.equal(call.phase, 'in-call');
    assert.equal(call.peerId, 'pB');
    assert.equal(call.joins, 2);
    assert.deepEqual([...call.peers.keys()], ['pA', 'pD']);
    // Alice's link lives on (connected: nothing to restart); Carol's closed;
    // Dave is newer than us, so he offers and we are polite.
    assert.deepEqual(links.map((l) => [l.peerId, l.polite, l.closed]), [
      ['pA', false, false], ['pC', false, true], ['pD', true, false],
    ]);
    assert.deepEqual(links[0].calls, []);
  });

  test('after a resume the impolite side restarts ICE on links that are not connected', () => {
    const { signaling, links } = inCall({ peers: [peer('pA', ALICE), peer('pC', CAROL)] });
    signaling.receive({ type: 'peer-joined', peer: peer('pD', { id: 4, username: 'dave' }) });
    links[0].reach('connected');
    links[1].reach('failed');
    links[2].reach('reconnecting');
    signaling.drop();
    signaling.open();
    signaling.receive(joinedMessage({
      peers: [peer('pA', ALICE), peer('pC', CAROL), peer('pD', { id: 4, username: 'dave' })],
      re: signaling.sent[0].id, resumed: true, replayed: false,
    }));
    // Alice connected: left alone. Carol failed, we are impolite: restart.
    // Dave reconnecting, but we are polite towards him: he restarts.
    assert.deepEqual(links.map((l) => l.calls), [[], [['restartIce']], []]);
  });

  test('a refused resume (a new peer id) rebuilds every link as the newcomer', () => {
    const { call, signaling, links } = inCall();
    signaling.drop();
    signaling.open();
    signaling.receive(joinedMessage({
      peerId: 'pB2', peers: [peer('pA', ALICE)], re: signaling.sent[0].id, resumed: false,
    }));
    assert.equal(call.peerId, 'pB2');
    assert.equal(call.resumeToken, 'token-pB2');
    assert.deepEqual(links.map((l) => [l.peerId, l.polite, l.closed]), [['pA', false, true], ['pA', false, false]]);
  });

  test('an error answering the resume means joining afresh, without the token', () => {
    const { call, signaling, links } = inCall();
    signaling.drop();
    signaling.open();
    const resumeId = signaling.sent[0].id;
    signaling.receive({ type: 'error', code: 'server-busy', message: 'try again', re: resumeId });
    assert.deepEqual(signaling.messages(), [
      { type: 'join', room: NUMBER, resume: 'token-pB' },
      { type: 'join', room: NUMBER },
    ]);
    assert.equal(call.peerId, null);
    assert.equal(links[0].closed, true);
    assert.equal(call.phase, 'in-call');
    // If the fresh join fails too, the call is over.
    signaling.receive({ type: 'error', code: 'room-full', message: 'full', re: signaling.sent[1].id });
    assert.equal(call.phase, 'ended');
    assert.deepEqual(call.ended, {
      reason: 'lost',
      title: 'Disconnected',
      message: 'This room is full. Ask the owner to raise its capacity, or try again later.',
      rejoin: true,
      signIn: null,
    });
  });

  test('chat history replayed by the resume is not shown twice', () => {
    const line = {
      type: 'chat', from: 'pA', user: ALICE, text: 'hello', ts: '2026-01-05T09:01:00Z',
    };
    const { call, signaling } = inCall();
    const events = record(call, ['chat']);
    signaling.receive(line);
    signaling.drop();
    signaling.open();
    signaling.receive(joinedMessage({ peers: [peer('pA', ALICE)], re: signaling.sent[0].id, history: [line] }));
    assert.deepEqual(events, [['chat', { line, mine: false }]]);
    assert.deepEqual(call.chat, [line]);
  });
});

describe('ending', () => {
  test('4409: another tab or device has the seat; the call ends for good and says so', () => {
    const { call, signaling, links } = inCall();
    signaling.closedWith(CLOSE_CODES.REPLACED);
    assert.equal(call.phase, 'ended');
    assert.deepEqual(call.ended, {
      reason: 'replaced',
      title: 'The call continues elsewhere',
      message: 'You joined this call from another tab or device, so it continues there.',
      rejoin: true,
      signIn: null,
    });
    assert.equal(links[0].closed, true);
    assert.equal(signaling.closes, 1);
    assert.equal(FINAL_CLOSE_CODES.has(4409), true);
  });

  test('4401 in the call: signed out elsewhere, with the way to sign in again', () => {
    const { call, signaling } = inCall();
    const navigations = record(call, ['navigate']);
    signaling.closedWith(CLOSE_CODES.UNAUTHENTICATED);
    assert.deepEqual(call.ended, {
      reason: 'signed-out',
      title: 'You were signed out',
      message: 'You were signed out (here or on another device). Sign in again to rejoin the call.',
      rejoin: false,
      signIn: '/accounts/login/?next=%2Frooms%2F482913075%2F',
    });
    assert.deepEqual(navigations, []);
  });

  test('4401 before the call started: off to the login page, and back here after', () => {
    const { call, signaling } = setup();
    const navigations = record(call, ['navigate']);
    call.join();
    signaling.closedWith(CLOSE_CODES.UNAUTHENTICATED);
    assert.deepEqual(navigations, [['navigate', { url: '/accounts/login/?next=%2Frooms%2F482913075%2F' }]]);
    assert.equal(call.phase, 'joining');
    assert.equal(call.ended, null);
  });

  test('the other final close codes end the call with their words', () => {
    const cases = [
      [CLOSE_CODES.KICKED, 'kicked', 'You were removed', 'The room owner removed you from this room.'],
      [CLOSE_CODES.ROOM_CLOSED, 'closed', 'The room was closed', 'The meeting has ended. Thanks for joining.'],
      [CLOSE_CODES.RATE_LIMITED, 'lost', 'Disconnected', 'Too many requests: wait a moment and try again.'],
      [CLOSE_CODES.BAD_INPUT, 'lost', 'Disconnected',
        'The app and the server stopped understanding each other. Reload the page.'],
    ];
    for (const [code, reason, title, message] of cases) {
      const { call, signaling } = inCall();
      signaling.closedWith(code);
      assert.deepEqual(
        [call.ended.reason, call.ended.title, call.ended.message],
        [reason, title, message],
        `close code ${code}`,
      );
    }
  });

  test('every close code of the protocol is either final or a reason to come back', () => {
    for (const code of Object.values(CLOSE_CODES)) {
      assert.notEqual(FINAL_CLOSE_CODES.has(code), RECONNECT_CLOSE_CODES.has(code), `close code ${code}`);
    }
    assert.deepEqual([...RECONNECT_CLOSE_CODES], [1012, 4408]);
  });

  test('kicked: links closed, socket closed, no way back in', () => {
    const { call, signaling, links } = inCall();
    signaling.receive({ type: 'kicked' });
    signaling.closedWith(CLOSE_CODES.KICKED);
    assert.equal(call.ended.reason, 'kicked');
    assert.equal(call.ended.rejoin, false);
    assert.equal(links[0].closed, true);
    assert.equal(call.peers.size, 0);
  });

  test('the owner ending the meeting is said so', () => {
    const { call, signaling } = inCall();
    signaling.receive({ type: 'room-closed', reason: 'owner' });
    assert.deepEqual([call.ended.reason, call.ended.message], ['closed', 'The owner ended the meeting for everyone.']);
    const admin = inCall();
    admin.signaling.receive({ type: 'room-closed', reason: 'admin' });
    assert.equal(admin.call.ended.message, ENDINGS.closed.message);
  });

  test('leaving says goodbye to the server and offers a rejoin', () => {
    const { call, signaling } = inCall();
    call.leave();
    assert.deepEqual(signaling.messages(), [{ type: 'leave' }]);
    assert.deepEqual([call.phase, call.ended.reason, call.ended.rejoin], ['ended', 'left', true]);
    call.leave();
    assert.equal(signaling.closes, 1);
  });

  test('closing the tab in the call sends leave; before it, nothing', () => {
    const before = setup();
    before.call.goodbye();
    assert.deepEqual(before.signaling.sent, []);
    const { call, signaling } = inCall();
    call.goodbye();
    assert.deepEqual(signaling.messages(), [{ type: 'leave' }]);
  });

  test('the end comes once: a close after room-closed changes nothing', () => {
    const { call, signaling } = inCall();
    const phases = record(call, ['phase']);
    signaling.receive({ type: 'room-closed', reason: 'owner' });
    signaling.closedWith(CLOSE_CODES.ROOM_CLOSED);
    assert.equal(phases.length, 1);
  });
});

describe('in the call', () => {
  test('media changes are sent once in the call, and only when they change', () => {
    const { call, signaling } = setup();
    call.setMedia({ audio: false, video: true, screen: false });
    assert.deepEqual(signaling.sent, []);
    call.join();
    signaling.open();
    signaling.receive(joinedMessage());
    call.setMedia({ audio: false, video: true, screen: false });
    call.setMedia({ audio: true, video: true, screen: true });
    assert.deepEqual(signaling.messages().slice(1), [
      { type: 'media', audio: false, video: true, screen: false },
      { type: 'media', audio: true, video: true, screen: true },
    ]);
  });

  test('chat lines: ours are marked mine; sending returns the request id', () => {
    const { call, signaling } = inCall();
    const events = record(call, ['chat']);
    assert.equal(call.sendChat('Hi <b>all</b>'), 'c3');
    assert.deepEqual(signaling.messages(), [{ type: 'chat', text: 'Hi <b>all</b>' }]);
    const line = { type: 'chat', from: 'pB', user: BOB, text: 'Hi <b>all</b>', ts: '2026-01-05T09:02:00Z' };
    signaling.receive(line);
    assert.deepEqual(events, [['chat', { line, mine: true }]]);
  });

  test('the owner locks, unlocks, removes and ends with the right messages', () => {
    const { call, signaling } = inCall({ me: ALICE, peers: [peer('pB', BOB)] });
    const notices = record(call, ['notice']);
    call.toggleLock();
    signaling.receive({ type: 'room-updated', room: { ...ROOM, locked: true } });
    call.toggleLock();
    signaling.receive({ type: 'room-updated', room: { ...ROOM, locked: false } });
    call.kick('pB');
    call.endForEveryone();
    assert.deepEqual(signaling.messages(), [
      { type: 'lock' }, { type: 'unlock' }, { type: 'kick', peer: 'pB' }, { type: 'close' },
    ]);
    assert.deepEqual(notices, [
      ['notice', { text: 'The room is locked: nobody else can join.' }],
      ['notice', { text: 'The room is open again.' }],
    ]);
  });

  test('an error that answers no join is passed on in words', () => {
    const { call, signaling } = inCall();
    const errors = record(call, ['error']);
    signaling.receive({ type: 'error', code: 'forbidden', message: 'only the owner', re: 'c9' });
    assert.deepEqual(errors, [['error', { code: 'forbidden', text: 'Only the room owner can do that.' }]]);
    assert.equal(call.phase, 'in-call');
  });

  test('a message type this client does not know is ignored', () => {
    const { call, signaling } = inCall();
    signaling.receive({ type: 'something-new' });
    signaling.receive(null);
    assert.equal(call.phase, 'in-call');
  });
});
