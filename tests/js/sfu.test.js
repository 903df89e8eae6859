// The call state through the SFU (static/js/call.js): SFU rooms, the
// mesh-to-SFU handover, the SFU's messages. Fake signaling, links and session.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  FakeLink, FakeSfu, FakeSfuLink, FakeSignaling, memoryPins, record,
} from './fakes.js';
import {
  Call, HANDOVER_LINGER_MS, HANDOVER_SWAP_MS, MEDIA_PATH_TEXT, RETURN_DEADLINE_MS,
} from '../../static/js/call.js';
import { layerForWidth } from '../../static/js/sfu.js';

const NUMBER = '482913075';
const ALICE = { id: 1, username: 'alice', displayName: 'Alice Anders' };
const BOB = { id: 2, username: 'bob', displayName: 'Bob Berg' };
const CAROL = { id: 3, username: 'carol', displayName: 'Carol Chen' };
const ON = { audio: true, video: true, screen: false };
const ROOM = {
  number: NUMBER, name: 'Standup', capacity: 8, locked: false, hasPin: false,
  owner: { id: 1, username: 'alice' }, participants: 1, closed: false, mode: 'auto', media: 'mesh',
};

function peer(peerId, user) {
  return { peerId, user, media: ON, joinedAt: '2026-01-05T09:00:00Z' };
}

/** A clock whose timers run when the test says. */
function manualClock() {
  const timers = new Map();
  let next = 1;
  return {
    timers,
    setTimeout: (fn, ms) => { timers.set(next, { fn, ms }); return next++; },
    clearTimeout: (id) => timers.delete(id),
    runAll() {
      for (const [id, { fn }] of [...timers]) { timers.delete(id); fn(); }
    },
  };
}

function inCall({ media = 'mesh', peers = [peer('pA', ALICE), peer('pC', CAROL)] } = {}) {
  const signaling = new FakeSignaling();
  const links = [];
  const sfuLinks = [];
  const sessions = [];
  const clock = manualClock();
  const call = new Call({
    room: ROOM,
    me: BOB,
    signaling,
    pins: memoryPins(),
    clock,
    createLink: (options) => {
      const link = new FakeLink(options);
      links.push(link);
      return link;
    },
    createSfu: (options) => {
      const session = new FakeSfu(options);
      sessions.push(session);
      return session;
    },
    createSfuLink: (options) => {
      const link = new FakeSfuLink(options);
      sfuLinks.push(link);
      return link;
    },
    log: { debug: () => {} },
  });
  const events = record(call, ['media-path', 'peer-track', 'notice']);
  call.setMedia(ON);
  call.join({ pin: '' });
  signaling.open();
  signaling.receive({
    type: 'joined', room: { ...ROOM, media, participants: peers.length + 1 }, peerId: 'pB', peers,
    created: false, resumeToken: 'token', history: [], re: 'c1',
  });
  signaling.sent.length = 0;
  return { call, signaling, links, sfuLinks, sessions, clock, events };
}

describe('an sfu room', () => {
  test('joining publishes to the SFU and receives every peer there, with no direct link', () => {
    const { call, links, sfuLinks, sessions, events } = inCall({ media: 'sfu' });
    assert.equal(links.length, 0);
    assert.deepEqual(sessions.map((s) => s.calls), [[['start']]]);
    assert.deepEqual(sfuLinks.map((l) => [l.peerId, l.session === sessions[0]]), [['pA', true], ['pC', true]]);
    assert.deepEqual([...call.peers.values()].map((p) => [p.link === p.sfuLink, p.mesh]), [[true, null], [true, null]]);
    assert.equal(call.mediaPath, 'server');
    assert.deepEqual(events.filter(([type]) => type === 'media-path'), [['media-path', { path: 'server' }]]);
  });

  test('the SFU messages reach the session; a refused publish is the session\'s, not an error', () => {
    const { call, signaling, sessions } = inCall({ media: 'sfu' });
    const errors = record(call, ['error']);
    signaling.receive({ type: 'sfu-answer', sdp: 'answer-sdp', re: 'c9' });
    signaling.receive({ type: 'sfu-offer', sdp: 'offer-sdp', streams: [{ mid: '0', kind: 'video', peerId: 'pA' }], fresh: true });
    signaling.receive({ type: 'sfu-restart', reason: 'lost' });
    sessions[0].refusedIds.add('c7');
    signaling.receive({ type: 'error', code: 'sfu-unavailable', message: 'down', re: 'c7' });
    assert.deepEqual(sessions[0].calls, [
      ['start'], ['answer', 'answer-sdp'], ['offer', 'offer-sdp', [{ mid: '0', kind: 'video', peerId: 'pA' }]],
      ['restart', 'lost'], ['refused', 'c7'],
    ]);
    assert.deepEqual(errors, []);
  });

  test('someone joining later is received through the SFU; leaving closes the session', () => {
    const { call, signaling, links, sfuLinks, sessions } = inCall({ media: 'sfu', peers: [] });
    signaling.receive({ type: 'peer-joined', peer: peer('pD', ALICE) });
    assert.deepEqual([links.length, sfuLinks.map((l) => l.peerId)], [0, ['pD']]);
    call.leave();
    assert.deepEqual(sessions[0].calls.at(-1), ['close']);
    assert.equal(sfuLinks[0].closed, true);
  });

  test('a new track goes to the session once, not per peer', () => {
    const { call, sessions } = inCall({ media: 'sfu' });
    call.setTrack('video', 'screen-track');
    assert.deepEqual(sessions[0].calls.slice(1), [['setTrack', 'video', 'screen-track']]);
  });
});

describe('the handover from mesh to SFU', () => {
  function switched() {
    const s = inCall({ media: 'mesh' });
    s.signaling.receive({ type: 'room-updated', room: { ...ROOM, media: 'sfu', participants: 5 } });
    return s;
  }

  test('room-updated to sfu: publish there, keep every direct link, say the call changed', () => {
    const { call, links, sfuLinks, sessions, events } = switched();
    assert.deepEqual(sessions[0].calls, [['start']]);
    assert.deepEqual(sfuLinks.map((l) => l.peerId), ['pA', 'pC']);
    // Until the SFU's pictures play, the tiles show the direct ones.
    assert.deepEqual([...call.peers.values()].map((p) => p.link === p.mesh), [true, true]);
    assert.deepEqual(links.map((l) => l.closed), [false, false]);
    assert.equal(call.mediaPath, 'server');
    assert.deepEqual(events.filter(([type]) => type !== 'peer-track').slice(-2), [
      ['media-path', { path: 'server' }],
      ['notice', { text: 'More people joined: the call now goes through the server, no longer end-to-end encrypted.' }],
    ]);
  });

  test('pictures playing through the SFU take the tile over and tell that peer', () => {
    const { call, signaling, links, sfuLinks, clock } = switched();
    sfuLinks[0].dispatchEvent(new CustomEvent('track', { detail: { stream: 'sfu-stream-A' } }));
    const tracks = record(call, ['peer-track']);
    sfuLinks[0].play();
    const alice = call.peers.get('pA');
    assert.equal(alice.link, sfuLinks[0]);
    assert.deepEqual(tracks.map(([, d]) => [d.peer.peerId, d.stream]), [['pA', 'sfu-stream-A']]);
    assert.deepEqual(signaling.messages(), [{ type: 'handover', to: 'pA' }]);
    // They may still receive us directly: our side stays until they say so.
    assert.equal(links[0].closed, false);
    signaling.receive({ type: 'handover', from: 'pA' });
    // The tile's player gets a moment to show the new source; then the link goes.
    assert.deepEqual([...clock.timers.values()].map((t) => t.ms), [HANDOVER_SWAP_MS]);
    assert.equal(links[0].closed, false);
    clock.runAll();
    assert.equal(links[0].closed, true);
    assert.equal(alice.mesh, null);
  });

  test('their handover first: the direct link closes once ours plays too', () => {
    const { call, signaling, links, sfuLinks, clock } = switched();
    signaling.receive({ type: 'handover', from: 'pC' });
    assert.equal(links[1].closed, false);
    sfuLinks[1].play();
    assert.deepEqual([...clock.timers.values()].map((t) => t.ms), [HANDOVER_SWAP_MS]);
    clock.runAll();
    assert.equal(links[1].closed, true);
    assert.equal(call.peers.get('pC').link, sfuLinks[1]);
  });

  test('a peer that never says so: the direct link goes after the linger time', () => {
    const { links, sfuLinks, clock } = switched();
    sfuLinks[0].play();
    assert.deepEqual([...clock.timers.values()].map((t) => t.ms), [HANDOVER_LINGER_MS]);
    clock.runAll();
    assert.equal(links[0].closed, true);
  });

  test('a direct link\'s tracks no longer reach the tile once the SFU has it', () => {
    const { call, links, sfuLinks } = switched();
    sfuLinks[0].play();
    const tracks = record(call, ['peer-track']);
    links[0].dispatchEvent(new CustomEvent('track', { detail: { stream: 'direct-stream' } }));
    assert.deepEqual(tracks, []);
  });

  test('signals for the direct link still reach it during the handover', () => {
    const { signaling, links } = switched();
    signaling.receive({ type: 'candidate', from: 'pA', candidate: { candidate: 'c' } });
    assert.deepEqual(links[0].calls, [['retire'], ['candidate', { candidate: 'c' }]]);
  });

  test('every direct link is retired: it bridges the handover and is never restarted', () => {
    const { links } = switched();
    assert.deepEqual(links.map((l) => l.calls), [[['retire']], [['retire']]]);
  });

  test('after the linger time the peer hears that the direct link is closed', () => {
    const { signaling, links, sfuLinks, clock } = switched();
    sfuLinks[0].play();
    clock.runAll();
    assert.equal(links[0].closed, true);
    assert.deepEqual(signaling.messages(), [
      { type: 'handover', to: 'pA' }, { type: 'handover', to: 'pA', closed: true },
    ]);
  });

  test('told the direct link is closed: the tile goes to the SFU link, whatever it shows yet', () => {
    const { call, signaling, links, sfuLinks } = switched();
    const states = record(call, ['peer-state']);
    sfuLinks[0].reach('reconnecting');
    signaling.receive({ type: 'handover', from: 'pA', closed: true });
    const alice = call.peers.get('pA');
    assert.equal(alice.link, sfuLinks[0]);
    assert.equal(links[0].closed, true);
    assert.deepEqual(states.map(([, d]) => [d.peer.peerId, d.state]), [['pA', 'reconnecting']]);
  });

  test('a direct link that breaks during the handover gives the tile to the SFU link', () => {
    const { call, links, sfuLinks } = switched();
    links[1].reach('reconnecting');
    const carol = call.peers.get('pC');
    assert.equal(carol.link, sfuLinks[1]);
    assert.equal(links[1].closed, true);
    assert.equal(carol.mesh, null);
  });

  test('before the handover a direct link that breaks stays (it restarts ICE itself)', () => {
    const { call, links } = inCall({ media: 'mesh' });
    links[0].reach('reconnecting');
    assert.equal(call.peers.get('pA').link, links[0]);
    assert.equal(links[0].closed, false);
  });
});

describe('the way back to direct', () => {
  function returning() {
    const s = inCall({ media: 'sfu' });
    s.signaling.receive({ type: 'room-updated', room: { ...ROOM, media: 'mesh', participants: 3 } });
    return s;
  }

  test('room-updated to mesh: a direct link to everyone, the tiles stay on the SFU meanwhile', () => {
    const { call, links, sfuLinks, sessions, events } = returning();
    // The greater peer id offers: pB is polite to pC, impolite to pA.
    assert.deepEqual(links.map((l) => [l.peerId, l.polite]), [['pA', false], ['pC', true]]);
    assert.deepEqual([...call.peers.values()].map((p) => p.link === p.sfuLink), [true, true]);
    assert.equal(call.mediaPath, 'direct');
    assert.deepEqual(events.filter(([type]) => type === 'notice').at(-1), [
      'notice', { text: 'The call is direct again: peer to peer, end-to-end encrypted.' },
    ]);
    assert.deepEqual(sessions[0].calls, [['start']]);
    assert.equal(sfuLinks.every((l) => !l.closed), true);
  });

  test('each tile moves to its direct pictures; when all have, the SFU session ends', () => {
    const { call, signaling, links, sfuLinks, sessions } = returning();
    links[0].reach('connected');
    assert.equal(call.peers.get('pA').link, links[0]);
    assert.deepEqual(signaling.messages(), []);
    links[1].reach('connected');
    assert.deepEqual([...call.peers.values()].map((p) => p.link === p.mesh), [true, true]);
    assert.deepEqual(signaling.messages(), [{ type: 'sfu-leave' }]);
    assert.deepEqual(sessions[0].calls.at(-1), ['close']);
    assert.equal(sfuLinks.every((l) => l.closed), true);
    assert.equal(call.sfu, null);
  });

  test('direct links still missing at the deadline: the SFU session ends all the same', () => {
    const { call, signaling, links, clock } = returning();
    assert.deepEqual([...clock.timers.values()].map((t) => t.ms), [RETURN_DEADLINE_MS]);
    clock.runAll();
    assert.deepEqual(signaling.messages(), [{ type: 'sfu-leave' }]);
    assert.deepEqual([...call.peers.values()].map((p) => p.link), links);
  });

  test('someone joining on the way back gets a direct link only', () => {
    const { call, signaling, links, sfuLinks } = returning();
    signaling.receive({ type: 'peer-joined', peer: peer('pD', ALICE) });
    assert.deepEqual([links.at(-1).peerId, sfuLinks.length], ['pD', 2]);
    assert.equal(call.peers.get('pD').link, links.at(-1));
  });

  test('back on the SFU before the way back is done: the direct links go again', () => {
    const { call, signaling, links, sfuLinks } = returning();
    links[0].reach('connected');
    signaling.receive({ type: 'room-updated', room: { ...ROOM, media: 'sfu', participants: 5 } });
    assert.equal(call.mediaPath, 'server');
    assert.deepEqual(links.map((l) => l.closed), [true, true]);
    assert.deepEqual([...call.peers.values()].map((p) => p.link), sfuLinks);
    assert.deepEqual(signaling.messages(), []);
  });
});

describe('the owner sets the media mode', () => {
  test('a new mode goes to the server; the same one does not', () => {
    const { call, signaling } = inCall({ media: 'mesh' });
    call.setMode('mesh');
    call.setMode('auto');
    assert.deepEqual(signaling.messages(), [{ type: 'mode', mode: 'mesh' }]);
  });
});

describe('simulcast layers', () => {
  test('a tile asks for the layer its width needs', () => {
    assert.deepEqual([100, 239, 240, 479, 480, 1280].map(layerForWidth), [0, 0, 1, 1, 2, 2]);
  });

  test('the page names both paths', () => {
    assert.deepEqual(Object.keys(MEDIA_PATH_TEXT), ['direct', 'server']);
  });
});
