// The SFU session's two connections and their watchdog (static/js/sfu.js), on
// a fake RTCPeerConnection and a clock the test runs: ICE restart first when
// the connection had been up, then a fresh one with a growing wait.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  CONNECTING_GRACE_MS, DISCONNECTED_GRACE_MS, RETRY_MAX_MS, SETUP_TIMEOUT_MAX_MS, SETUP_TIMEOUT_MS, SfuSession,
  asDtlsServer,
} from '../../static/js/sfu.js';

/** Just enough of RTCPeerConnection for the session, driven by the test. */
class FakePeerConnection extends EventTarget {
  static made = [];

  constructor(config) {
    super();
    this.config = config;
    this.connectionState = 'new';
    this.signalingState = 'stable';
    this.localDescription = null;
    this.offers = 0;
    this.closed = false;
    FakePeerConnection.made.push(this);
  }

  addTransceiver(kind) {
    return { sender: { kind, replaceTrack: async () => {} } };
  }

  async createOffer({ iceRestart = false } = {}) {
    this.offers += 1;
    return { type: 'offer', sdp: `offer ${this.offers}${iceRestart ? ' ice-restart' : ''}` };
  }

  async setLocalDescription(description) {
    if (description) this.localDescription = description;
    else if (this.signalingState === 'have-remote-offer') this.localDescription = { type: 'answer', sdp: 'answer' };
    else this.localDescription = await this.createOffer();
    this.signalingState = this.localDescription.type === 'offer' ? 'have-local-offer' : 'stable';
  }

  async createAnswer() {
    return { type: 'answer', sdp: 'answer' };
  }

  async setRemoteDescription({ type }) {
    this.signalingState = type === 'offer' ? 'have-remote-offer' : 'stable';
  }

  getTransceivers() { return []; }

  getConfiguration() { return this.config; }

  setConfiguration(config) { this.config = config; }

  close() { this.closed = true; }

  reach(state) {
    this.connectionState = state;
    this.dispatchEvent(new Event('connectionstatechange'));
  }
}

function manualClock() {
  const timers = new Map();
  let next = 1;
  return {
    timers,
    t: 0, // what `now` says (ms); the test moves it
    setTimeout: (fn, ms) => { timers.set(next, { fn, ms }); return next++; },
    clearTimeout: (id) => timers.delete(id),
    /** The waits of the timers pending now, shortest first. */
    waits: () => [...timers.values()].map((t) => t.ms).sort((a, b) => a - b),
    /** Run the timers pending now (not the ones they set). */
    run() {
      for (const [id, { fn }] of [...timers]) { timers.delete(id); fn(); }
    },
  };
}

async function settle(session) {
  await session.pending;
  await session.pending;
}

function started() {
  FakePeerConnection.made = [];
  const sent = [];
  const clock = manualClock();
  let ids = 0;
  const session = new SfuSession({
    config: { iceServers: [] },
    media: { outgoing: () => null, stream: {} },
    send: (message) => { sent.push(message); ids += 1; return `c${ids}`; },
    RTCPeerConnectionImpl: FakePeerConnection,
    clock,
    now: () => clock.t,
  });
  const states = [];
  session.addEventListener('state', ({ detail }) => states.push([detail.role, detail.state]));
  return { session, sent, clock, states };
}

const OFFER = { sdp: 'janus offer', streams: [{ mid: '0', kind: 'video', peerId: 'pA' }], fresh: true };

describe('the publisher connection', () => {
  test('one not connected within the setup time is published afresh, with a growing wait', async () => {
    const { session, sent, clock, states } = started();
    session.start();
    await settle(session);
    const first = session.publisher;
    assert.deepEqual(sent.map((m) => m.type), ['sfu-offer']);
    assert.deepEqual(clock.waits(), [SETUP_TIMEOUT_MS]);

    clock.run(); // the setup time passes: never connected, so no ICE restart
    assert.deepEqual(states.at(-1), ['publisher', 'recovering']);
    assert.deepEqual(clock.waits(), [1000]);
    clock.run();
    await settle(session);
    assert.notEqual(session.publisher, first);
    assert.equal(first.closed, true);
    assert.deepEqual(sent.map((m) => m.type), ['sfu-offer', 'sfu-offer']);
    assert.deepEqual(clock.waits(), [2 * SETUP_TIMEOUT_MS]); // more time to come up, too

    clock.run(); // fails again: twice the wait
    assert.deepEqual(clock.waits(), [2000]);
  });

  test('one that drops after it was up gets an ICE restart on the same connection first', async () => {
    const { session, sent, clock } = started();
    session.start();
    await settle(session);
    const pc = session.publisher;
    await session.handleAnswer({ sdp: 'answer', re: 'c1' });
    pc.reach('connected');
    assert.deepEqual(clock.waits(), []);

    pc.reach('disconnected');
    assert.deepEqual(clock.waits(), [DISCONNECTED_GRACE_MS]);
    clock.run();
    await settle(session);
    assert.equal(session.publisher, pc);
    assert.deepEqual(sent.at(-1), { type: 'sfu-offer', sdp: 'offer 2 ice-restart' });

    pc.reach('failed'); // the restart did not help: a new connection
    clock.run();
    await settle(session);
    assert.notEqual(session.publisher, pc);
  });

  test('one that connects after the watchdog gave up on it is kept', async () => {
    const { session, sent, clock } = started();
    session.start();
    await settle(session);
    const pc = session.publisher;
    clock.run(); // the setup time passes: a new connection in a second...
    assert.deepEqual(clock.waits(), [1000]);
    pc.reach('connected'); // ...but this one made it meanwhile
    assert.deepEqual(clock.waits(), []);
    assert.equal(session.publisher, pc);
    assert.deepEqual(sent.map((m) => m.type), ['sfu-offer']);
  });

  test('back before the grace ends: nothing is restarted', async () => {
    const { session, clock } = started();
    session.start();
    await settle(session);
    session.publisher.reach('connected');
    session.publisher.reach('disconnected');
    session.publisher.reach('connected');
    assert.deepEqual(clock.waits(), []);
  });
});

describe('the receiving connection', () => {
  test('one never connected: a fresh subscription is asked for, and again with a growing wait', async () => {
    const { session, sent, clock } = started();
    await session.handleOffer(OFFER);
    assert.deepEqual(sent, [{ type: 'sfu-answer', sdp: 'answer' }]);
    assert.deepEqual(clock.waits(), [SETUP_TIMEOUT_MS]);

    clock.run();
    assert.deepEqual(clock.waits(), [1000]);
    clock.run();
    assert.deepEqual(sent.at(-1), { type: 'sfu-resubscribe', iceRestart: false });
    assert.deepEqual(clock.waits(), [2 * SETUP_TIMEOUT_MS]);

    // No fresh offer came (refused, or lost): the watchdog asks again, later.
    clock.run();
    assert.deepEqual(clock.waits(), [2000]);
  });

  test('one that was up and failed: an ICE restart by the server first, then a fresh one', async () => {
    const { session, sent, clock } = started();
    await session.handleOffer(OFFER);
    const pc = session.subscriber;
    pc.reach('connected');
    pc.reach('failed');
    assert.deepEqual(sent.at(-1), { type: 'sfu-resubscribe', iceRestart: true });

    // The server's ICE-restart offer is for the same connection.
    await session.handleOffer({ ...OFFER, sdp: 'ice-restart offer', fresh: false });
    assert.equal(session.subscriber, pc);
    clock.run(); // still not connected
    clock.run();
    assert.deepEqual(sent.at(-1), { type: 'sfu-resubscribe', iceRestart: false });

    await session.handleOffer({ ...OFFER, sdp: 'fresh offer' }); // a new connection, a clean slate
    assert.notEqual(session.subscriber, pc);
    assert.equal(pc.closed, true);
    session.subscriber.reach('connected');
    assert.deepEqual(clock.waits(), []);
    assert.equal(session.watch.subscriber.failures, 0);
  });

  test('the same offer again (a resume) is answered again on the same connection', async () => {
    const { session, sent } = started();
    await session.handleOffer(OFFER);
    const pc = session.subscriber;
    await session.handleOffer(OFFER);
    assert.equal(session.subscriber, pc);
    assert.deepEqual(sent, [{ type: 'sfu-answer', sdp: 'answer' }, { type: 'sfu-answer', sdp: 'answer' }]);
  });

  test('the answer and the candidates name the offer they are for', async () => {
    const { session, sent } = started();
    await session.handleOffer({ ...OFFER, id: 'sfu-1' });
    const first = session.subscriber;
    const candidate = (pc, name) => {
      const event = new Event('icecandidate');
      event.candidate = { toJSON: () => ({ candidate: name }) };
      pc.dispatchEvent(event);
    };
    candidate(first, 'a');
    await session.handleOffer({ ...OFFER, sdp: 'fresh offer', id: 'sfu-2' });
    candidate(first, 'late, of the closed connection');
    candidate(session.subscriber, 'b');
    assert.deepEqual(sent, [
      { type: 'sfu-answer', sdp: 'answer', re: 'sfu-1' },
      { type: 'sfu-candidate', role: 'subscriber', candidate: { candidate: 'a' }, re: 'sfu-1' },
      { type: 'sfu-answer', sdp: 'answer', re: 'sfu-2' },
      { type: 'sfu-candidate', role: 'subscriber', candidate: { candidate: 'b' }, re: 'sfu-2' },
    ]);
  });

  test('we answer as the DTLS server: Janus starts the handshake once it has our answer', async () => {
    const { session, sent } = started();
    const browsers = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=setup:active\r\na=mid:0\r\n';
    const original = FakePeerConnection.prototype.createAnswer;
    FakePeerConnection.prototype.createAnswer = async () => ({ type: 'answer', sdp: browsers });
    try {
      await session.handleOffer({ ...OFFER, id: 'sfu-1' });
    } finally {
      FakePeerConnection.prototype.createAnswer = original;
    }
    const expected = 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=setup:passive\r\na=mid:0\r\n';
    assert.deepEqual(sent, [{ type: 'sfu-answer', sdp: expected, re: 'sfu-1' }]);
    assert.equal(session.subscriber.localDescription.sdp, expected);
    assert.equal(asDtlsServer('a=setup:actpass\na=setup:passive\n'), 'a=setup:actpass\na=setup:passive\n');
  });

  test('the watchdog names the subscription it gives up on', async () => {
    const { session, sent, clock } = started();
    await session.handleOffer({ ...OFFER, id: 'sfu-1' });
    clock.run();
    clock.run();
    assert.deepEqual(sent.at(-1), { type: 'sfu-resubscribe', iceRestart: false, re: 'sfu-1' });
  });

  test('an update never lands on a new connection: only a fresh offer makes one', async () => {
    const { session } = started();
    await session.handleOffer(OFFER);
    const pc = session.subscriber;
    pc.reach('failed');
    await session.handleOffer({ ...OFFER, sdp: 'update', fresh: false });
    assert.equal(session.subscriber, pc);
  });

  test('closing stops every timer', async () => {
    const { session, clock } = started();
    session.start();
    await settle(session);
    await session.handleOffer(OFFER);
    assert.equal(clock.waits().length, 2);
    session.close();
    assert.deepEqual(clock.waits(), []);
  });

  test('checks that began just before the setup time ran out get a grace from their start', async () => {
    const { session, sent, clock, states } = started();
    await session.handleOffer(OFFER);
    clock.t = SETUP_TIMEOUT_MS - 1000;
    session.subscriber.reach('connecting');
    clock.t = SETUP_TIMEOUT_MS;
    clock.run();
    assert.deepEqual(clock.waits(), [CONNECTING_GRACE_MS - 1000]);
    assert.notDeepEqual(states.at(-1), ['subscriber', 'recovering']);
    // Still checking when the grace ends (stuck, say, in DTLS): replaced as before.
    clock.t = SETUP_TIMEOUT_MS - 1000 + CONNECTING_GRACE_MS;
    clock.run();
    assert.deepEqual(states.at(-1), ['subscriber', 'recovering']);
    clock.run();
    assert.deepEqual(sent.at(-1), { type: 'sfu-resubscribe', iceRestart: false });
  });

  test('one checking for long when the setup time runs out gets no grace', async () => {
    const { session, clock, states } = started();
    await session.handleOffer(OFFER);
    session.subscriber.reach('connecting'); // at 0: ICE connected, DTLS never
    clock.t = SETUP_TIMEOUT_MS;
    clock.run();
    assert.deepEqual(states.at(-1), ['subscriber', 'recovering']);
    assert.deepEqual(clock.waits(), [1000]);
  });

  test('the waits never pass the cap', async () => {
    const { session, clock } = started();
    await session.handleOffer(OFFER);
    const seen = [];
    for (let i = 0; i < 16; i += 1) {
      seen.push(...clock.waits());
      clock.run();
    }
    assert.ok(seen.includes(RETRY_MAX_MS) && seen.includes(SETUP_TIMEOUT_MAX_MS), seen);
    assert.ok(seen.every((ms) => ms <= Math.max(RETRY_MAX_MS, SETUP_TIMEOUT_MAX_MS)), seen);
  });

  test('a fresh subscription gets the whole setup time from its own offer', async () => {
    const { session, clock } = started();
    await session.handleOffer(OFFER);
    clock.run(); // not up: ask for a fresh one after a second
    clock.run();
    assert.deepEqual(clock.waits(), [2 * SETUP_TIMEOUT_MS]);
    const timer = session.watch.subscriber.timer;
    await session.handleOffer({ ...OFFER, sdp: 'fresh offer' });
    assert.notEqual(session.watch.subscriber.timer, timer);
    assert.deepEqual(clock.waits(), [2 * SETUP_TIMEOUT_MS]);
    session.subscriber.reach('connected');
    assert.deepEqual(clock.waits(), []);
    assert.equal(session.setupWait('subscriber'), SETUP_TIMEOUT_MS);
  });
});

describe('the way back to direct', () => {
  test('once the connections only bridge, nothing is restarted', async () => {
    const { session, sent, clock } = started();
    await session.handleOffer(OFFER);
    session.stopWatching();
    assert.deepEqual(clock.waits(), []);
    session.subscriber.reach('failed');
    assert.deepEqual(clock.waits(), []);
    assert.deepEqual(sent.map((m) => m.type), ['sfu-answer']);
  });
});

describe('fresh TURN credentials', () => {
  test('reach both live connections and the next ones', async () => {
    const { session } = started();
    session.start();
    await settle(session);
    await session.handleOffer(OFFER);
    session.setIceServers({ iceServers: [{ urls: ['turn:t'] }] });
    assert.deepEqual(
      [session.publisher.config.iceServers, session.subscriber.config.iceServers, session.config.iceServers],
      [[{ urls: ['turn:t'] }], [{ urls: ['turn:t'] }], [{ urls: ['turn:t'] }]],
    );
  });
});
