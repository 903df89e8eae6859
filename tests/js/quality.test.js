// Call quality (static/js/quality.js): fake RTCStatsReports in, exact samples
// and exact `quality` messages out; the reporter's schedule on a fake clock;
// the call sending the final reports before `leave`; PeerLink's ICE counters;
// the call keeping every link's reports within the server's limits.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  FakeLink, FakeSfu, FakeSfuLink, FakeSignaling,
} from './fakes.js';
import { Call } from '../../static/js/call.js';
import {
  QualityBudget, QualityReporter, qualityMessage, readStats, selectedPair,
} from '../../static/js/quality.js';

/** An RTCStatsReport: a Map of stats by id (it has forEach and get, as the real one). */
function statsReport(stats) {
  return new Map(stats.map((stat) => [stat.id, stat]));
}

function pairOf({ local, remote, protocol = 'udp', relayProtocol, rtt = 0.0234, transport = true }) {
  return [
    ...(transport ? [{ id: 'T01', type: 'transport', selectedCandidatePairId: 'CP1' }] : []),
    // A pair that is not the selected one, to be ignored.
    {
      id: 'CP0', type: 'candidate-pair', localCandidateId: 'L0', remoteCandidateId: 'R0',
      state: 'failed', nominated: false, currentRoundTripTime: 0.5,
    },
    {
      id: 'CP1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1',
      state: 'succeeded', nominated: true, ...(rtt === null ? {} : { currentRoundTripTime: rtt }),
    },
    { id: 'L0', type: 'local-candidate', candidateType: 'host', protocol: 'tcp' },
    { id: 'R0', type: 'remote-candidate', candidateType: 'host', protocol: 'tcp' },
    {
      id: 'L1', type: 'local-candidate', candidateType: local, protocol,
      ...(relayProtocol ? { relayProtocol } : {}),
    },
    { id: 'R1', type: 'remote-candidate', candidateType: remote, protocol },
  ];
}

function mediaOf({
  audioBytes = 40000, videoBytes = 960000, audioSent = 40000, sent = 1000000, decoded = 300, dropped = 2,
} = {}) {
  return [
    {
      id: 'IA', type: 'inbound-rtp', kind: 'audio', bytesReceived: audioBytes,
      packetsReceived: 1000, packetsLost: 3,
    },
    {
      id: 'IV', type: 'inbound-rtp', kind: 'video', bytesReceived: videoBytes,
      packetsReceived: 1200, packetsLost: -1, framesDecoded: decoded, framesDropped: dropped,
    },
    { id: 'OA', type: 'outbound-rtp', kind: 'audio', bytesSent: audioSent, packetsSent: 1010 },
    { id: 'OV', type: 'outbound-rtp', kind: 'video', bytesSent: sent - audioSent, packetsSent: 1190 },
    { id: 'RA', type: 'remote-inbound-rtp', kind: 'audio', packetsLost: 1, roundTripTime: 0.031 },
    { id: 'RV', type: 'remote-inbound-rtp', kind: 'video', packetsLost: 4, roundTripTime: 0.033 },
  ];
}

const MEDIA_SAMPLE = {
  bytesIn: 1000000,
  bytesOut: 1000000,
  packetsIn: 2200,
  lostIn: 3, // the video stream's -1 (duplicates) counts as none lost
  packetsOut: 2200,
  lostOut: 5,
  framesDecoded: 300,
  framesDropped: 2,
};

const CONNECTED = {
  state: 'connected', firstFrameMs: 840, iceRestarts: 0, iceFailures: { failed: 0, 'disconnected-timeout': 0 },
};

describe('readStats', () => {
  test('a direct pair: host to srflx over udp, its RTT, the counters summed over audio and video', () => {
    const report = statsReport([...pairOf({ local: 'host', remote: 'srflx' }), ...mediaOf()]);
    assert.deepEqual(readStats(report, 5000), {
      at: 5000, local: 'host', remote: 'srflx', protocol: 'udp', relayProtocol: null, rttMs: 23, ...MEDIA_SAMPLE,
    });
  });

  test('a relayed pair says how it reaches the TURN server', () => {
    const report = statsReport([
      ...pairOf({ local: 'relay', remote: 'relay', relayProtocol: 'tls' }), ...mediaOf(),
    ]);
    const sample = readStats(report, 0);
    assert.deepEqual(
      [sample.local, sample.remote, sample.protocol, sample.relayProtocol],
      ['relay', 'relay', 'udp', 'tls'],
    );
  });

  test('a tcp pair with a peer-reflexive end; relayProtocol only for relays', () => {
    const report = statsReport(pairOf({ local: 'prflx', remote: 'host', protocol: 'tcp', relayProtocol: 'udp' }));
    const sample = readStats(report, 0);
    assert.deepEqual(
      [sample.local, sample.remote, sample.protocol, sample.relayProtocol],
      ['prflx', 'host', 'tcp', null],
    );
  });

  test('without a transport stat the nominated working pair is the selected one', () => {
    const report = statsReport(pairOf({ local: 'host', remote: 'host', transport: false }));
    assert.equal(selectedPair(report).id, 'CP1');
    assert.equal(readStats(report, 0).rttMs, 23);
  });

  test('no RTT on the pair: the remote-inbound-rtp one', () => {
    const report = statsReport([...pairOf({ local: 'host', remote: 'host', rtt: null }), ...mediaOf()]);
    assert.equal(readStats(report, 0).rttMs, 31);
  });

  test('an empty report (not connected yet): everything unknown', () => {
    assert.deepEqual(readStats(statsReport([]), 7), {
      at: 7,
      local: null,
      remote: null,
      protocol: null,
      relayProtocol: null,
      rttMs: null,
      bytesIn: null,
      bytesOut: null,
      packetsIn: null,
      lostIn: null,
      packetsOut: null,
      lostOut: null,
      framesDecoded: null,
      framesDropped: null,
    });
  });

  test('audio only: no video frames, and fields a browser leaves out stay unknown', () => {
    const report = statsReport([
      { id: 'IA', type: 'inbound-rtp', kind: 'audio', packetsReceived: 50 },
      { id: 'OA', type: 'outbound-rtp', kind: 'audio', bytesSent: 800 },
    ]);
    const sample = readStats(report, 0);
    assert.deepEqual(
      [sample.packetsIn, sample.bytesIn, sample.lostIn, sample.framesDecoded, sample.bytesOut, sample.packetsOut],
      [50, null, null, null, 800, null],
    );
  });
});

describe('qualityMessage', () => {
  const before = readStats(statsReport([...pairOf({ local: 'host', remote: 'srflx' }), ...mediaOf({
    audioBytes: 15000, videoBytes: 360000, sent: 375000, decoded: 60,
  })]), 0);
  const now = readStats(statsReport([...pairOf({ local: 'host', remote: 'srflx' }), ...mediaOf()]), 10000);

  test('the whole report: bitrates over the interval since the previous sample', () => {
    assert.deepEqual(qualityMessage({ peer: 'pA', final: false, sample: now, previous: before, link: CONNECTED }), {
      type: 'quality',
      peer: 'pA',
      final: false,
      state: 'connected',
      firstFrameMs: 840,
      pair: { local: 'host', remote: 'srflx', protocol: 'udp', relayProtocol: null },
      rttMs: 23,
      // (1,000,000 - 375,000) bytes * 8 / 10 s = 500 kbit/s
      in: { kbps: 500, packets: 2200, lost: 3, framesDecoded: 300, framesDropped: 2 },
      out: { kbps: 500, packets: 2200, lost: 5 },
      iceRestarts: 0,
      iceFailures: { failed: 0, 'disconnected-timeout': 0 },
    });
  });

  test('no previous sample: no bitrate; no sample at all: only what the link knows', () => {
    const first = qualityMessage({ peer: 'pA', final: false, sample: now, link: CONNECTED });
    assert.deepEqual([first.in.kbps, first.out.kbps], [null, null]);
    const link = {
      state: 'failed', firstFrameMs: null, iceRestarts: 2, iceFailures: { failed: 1, 'disconnected-timeout': 1 },
    };
    assert.deepEqual(qualityMessage({ peer: 'pA', final: true, sample: null, link }), {
      type: 'quality',
      peer: 'pA',
      final: true,
      state: 'failed',
      firstFrameMs: null,
      pair: { local: null, remote: null, protocol: null, relayProtocol: null },
      rttMs: null,
      in: { kbps: null, packets: null, lost: null, framesDecoded: null, framesDropped: null },
      out: { kbps: null, packets: null, lost: null },
      iceRestarts: 2,
      iceFailures: { failed: 1, 'disconnected-timeout': 1 },
    });
  });

  test('words the server does not know become null, figures are kept in its ranges', () => {
    const odd = {
      ...now, local: 'mdns', protocol: 'quic', relayProtocol: 'dtls', rttMs: 90000, framesDecoded: 2 ** 40,
    };
    const message = qualityMessage({
      peer: 'pA',
      final: false,
      sample: odd,
      previous: { ...before, bytesIn: 2000000 }, // counters went back (a new stream): not negative
      link: { ...CONNECTED, state: 'weird', firstFrameMs: -5, iceFailures: { failed: 1, unknown: 3 } },
    });
    assert.deepEqual(message.pair, { local: null, remote: 'srflx', protocol: null, relayProtocol: null });
    assert.equal(message.rttMs, 60000);
    assert.equal(message.in.framesDecoded, 2147483647);
    assert.equal(message.in.kbps, 0);
    assert.equal(message.state, null);
    assert.equal(message.firstFrameMs, 0);
    assert.deepEqual(message.iceFailures, { failed: 1, 'disconnected-timeout': 0 });
  });
});

// --- The reporter's schedule --------------------------------------------------------------

const flush = () => new Promise((resolve) => { setImmediate(resolve); });

class FakeClock {
  constructor() {
    this.t = 1000;
    this.timers = new Map();
    this.nextId = 1;
  }

  now() {
    return this.t;
  }

  // The call reads its monotonic time as the page does.
  get performance() {
    return { now: () => this.t };
  }

  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  /** Run every timer due within `ms`, in order, letting each one's promises settle. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, timer]) => timer.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await flush();
    }
    this.t = end;
  }
}

/** A connection whose stats grow with time: no frame before `frameAt`, 125 kB/s each way. */
function growingStats(clock, { frameAt }) {
  return async () => {
    const elapsed = clock.t - 1000;
    const bytes = (elapsed / 1000) * 125000;
    const frames = clock.t >= frameAt ? Math.floor((clock.t - frameAt) / 40) + 1 : 0;
    return statsReport([...pairOf({ local: 'host', remote: 'host' }), ...mediaOf({
      audioBytes: 0, videoBytes: bytes, audioSent: 0, sent: bytes, decoded: frames,
    })]);
  };
}

function reporter({ clock, getStats, state = 'connected' }) {
  const sent = [];
  const info = { state, iceRestarts: 0, iceFailures: { failed: 0, 'disconnected-timeout': 0 } };
  const r = new QualityReporter({
    peerId: 'pA', getStats, send: (message) => sent.push(message), info: () => ({ ...info }), clock,
  });
  return { r, sent, info };
}

describe('QualityReporter', () => {
  test('the first report comes with the first frame, timed to 250 ms; then one every 10 s', async () => {
    const clock = new FakeClock();
    const { r, sent } = reporter({ clock, getStats: growingStats(clock, { frameAt: 1600 }) });
    r.start();
    await clock.advance(500); // samples at +250, +500: no frame yet
    assert.deepEqual(sent, []);
    await clock.advance(250); // +750 (t = 1750): frames
    assert.equal(sent.length, 1);
    assert.equal(sent[0].firstFrameMs, 750);
    assert.equal(sent[0].in.framesDecoded, 4);
    // Over the 500 ms since the first sample: 62.5 kB = 1000 kbit/s.
    assert.deepEqual([sent[0].in.kbps, sent[0].out.kbps], [1000, 1000]);
    // Then samples every 2 s, a report once 10 s have passed since the last.
    await clock.advance(9999);
    assert.equal(sent.length, 1);
    await clock.advance(2001);
    assert.equal(sent.length, 2);
    assert.equal(sent[1].final, false);
    assert.equal(sent[1].firstFrameMs, 750);
    await clock.advance(60000);
    assert.equal(sent.length, 8);
    assert.ok(sent.every((message) => message.final === false && message.in.kbps === 1000));
  });

  test('the final report, once, from the latest sample, with the state the link has; then silence', async () => {
    const clock = new FakeClock();
    const { r, sent, info } = reporter({ clock, getStats: growingStats(clock, { frameAt: 1000 }) });
    r.start();
    await clock.advance(250); // first report
    await clock.advance(3000); // one more sample, 2 s later
    info.state = 'disconnected';
    info.iceFailures = { failed: 0, 'disconnected-timeout': 1 };
    r.finish();
    r.finish();
    assert.equal(sent.length, 2);
    assert.deepEqual(
      [sent[1].final, sent[1].state, sent[1].iceFailures, sent[1].in.kbps],
      [true, 'disconnected', { failed: 0, 'disconnected-timeout': 1 }, 1000],
    );
    assert.equal(clock.timers.size, 0);
    await clock.advance(60000);
    assert.equal(sent.length, 2);
  });

  test('a final right after a live report repeats its interval rather than inventing one', async () => {
    const clock = new FakeClock();
    const { r, sent } = reporter({ clock, getStats: growingStats(clock, { frameAt: 1000 }) });
    r.start();
    await clock.advance(250);
    await clock.advance(10000); // the sample at +10.25 s is reported at once
    assert.equal(sent.length, 2);
    r.finish();
    assert.deepEqual([sent[2].final, sent[2].in.kbps, sent[1].in.kbps], [true, 1000, 1000]);
  });

  test('no picture ever (camera off): a report after 10 s anyway, polling slows after 30 s', async () => {
    const clock = new FakeClock();
    const { r, sent } = reporter({ clock, getStats: growingStats(clock, { frameAt: Infinity }) });
    r.start();
    await clock.advance(10000);
    assert.equal(sent.length, 1);
    assert.deepEqual([sent[0].firstFrameMs, sent[0].in.framesDecoded], [null, 0]);
    await clock.advance(20000);
    const [timer] = clock.timers.values();
    assert.equal(timer.at - clock.t, 2000);
  });

  test('getStats failing (closing under us) is not an error; the final uses what was sampled', async () => {
    const clock = new FakeClock();
    const good = growingStats(clock, { frameAt: 1000 });
    let broken = false;
    const { r, sent } = reporter({ clock, getStats: () => (broken ? Promise.reject(new Error('closed')) : good()) });
    r.start();
    await clock.advance(250);
    broken = true;
    await clock.advance(4000);
    r.finish();
    assert.equal(sent.length, 2);
    assert.equal(sent[1].in.framesDecoded, sent[0].in.framesDecoded);
  });
});

// --- The call sends the final reports while it is still in the room ----------------------

/** A fake link whose final report goes out through the call, as PeerLink's does. */
class ReportingLink extends FakeLink {
  reportFinal() {
    super.reportFinal();
    if (this.finalReports === 1) this.sendSignal({ type: 'quality', peer: this.peerId, final: true });
  }

  close() {
    this.reportFinal();
    super.close();
  }
}

function inCall() {
  const signaling = new FakeSignaling();
  const links = [];
  const call = new Call({
    room: { number: '482913075', name: 'Standup' },
    me: { id: 2 },
    signaling,
    createLink: (options) => {
      const link = new ReportingLink(options);
      links.push(link);
      return link;
    },
    log: { debug: () => {} },
  });
  call.join();
  signaling.open();
  const peer = (peerId) => ({ peerId, user: { id: 9, username: peerId }, media: {}, joinedAt: '2026-01-05T09:00:00Z' });
  signaling.receive({
    type: 'joined', room: { number: '482913075' }, peerId: 'pB', peers: [peer('pA'), peer('pC')],
    created: false, resumeToken: 't', history: [], re: 'c1',
  });
  signaling.sent.length = 0;
  return { call, signaling, links };
}

describe('the call and its final reports', () => {
  test('leaving sends every pair\'s final report first, then leave', () => {
    const { call, signaling } = inCall();
    call.leave();
    assert.deepEqual(signaling.messages(), [
      { type: 'quality', peer: 'pA', final: true },
      { type: 'quality', peer: 'pC', final: true },
      { type: 'leave' },
    ]);
  });

  test('closing the tab does the same', () => {
    const { call, signaling } = inCall();
    call.goodbye();
    assert.deepEqual(signaling.messages(), [
      { type: 'quality', peer: 'pA', final: true },
      { type: 'quality', peer: 'pC', final: true },
      { type: 'leave' },
    ]);
  });

  test('a peer that leaves gets its final report as its link closes', () => {
    const { signaling, links } = inCall();
    signaling.receive({ type: 'peer-left', peerId: 'pA', reason: 'left' });
    assert.deepEqual(signaling.messages(), [{ type: 'quality', peer: 'pA', final: true }]);
    assert.deepEqual([links[0].closed, links[1].closed], [true, false]);
  });

  test('a refused report is logged, not shown to the person; other errors still are', () => {
    const { call, signaling } = inCall();
    const shown = [];
    call.addEventListener('error', ({ detail }) => shown.push(detail.code));
    signaling.receive({ type: 'peer-left', peerId: 'pA', reason: 'left' });
    const [{ id }] = signaling.sent;
    signaling.receive({ type: 'error', code: 'rate-limited', message: 'too many', re: id });
    signaling.receive({ type: 'error', code: 'forbidden', message: 'no', re: 'c99' });
    assert.deepEqual(shown, ['forbidden']);
  });
});

// --- PeerLink: ICE restarts and failures, and the final report on close ------------------

class FakePeerConnection extends EventTarget {
  constructor() {
    super();
    this.connectionState = 'new';
    this.signalingState = 'stable';
    this.restarts = 0;
  }

  getTransceivers() {
    return [];
  }

  restartIce() {
    this.restarts += 1;
  }

  reach(state) {
    this.connectionState = state;
    this.dispatchEvent(new Event('connectionstatechange'));
  }

  getStats() {
    return Promise.resolve(statsReport([]));
  }

  close() {
    this.connectionState = 'closed';
    this.signalingState = 'closed';
  }
}

describe('PeerLink', () => {
  test('counts the restarts it asks for and why the connection broke; reports them at the end', async (t) => {
    globalThis.RTCPeerConnection = FakePeerConnection;
    globalThis.MediaStream = class { getTracks() { return []; } };
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const { PeerLink } = await import('../../static/js/peer.js');
    const sent = [];
    const link = new PeerLink({
      peerId: 'pA', polite: true, config: {}, media: {}, send: (message) => sent.push(message),
    });
    link.pc.reach('connected');
    link.pc.reach('disconnected');
    t.mock.timers.tick(4000); // disconnected too long: restart
    link.pc.reach('connected');
    link.pc.reach('failed');
    t.mock.timers.tick(2500); // the polite side restarts after 2.5 s
    assert.equal(link.pc.restarts, 2);
    link.pc.reach('connected');
    link.close();
    const final = sent.filter((message) => message.type === 'quality');
    assert.equal(final.length, 1);
    assert.deepEqual(
      [final[0].peer, final[0].final, final[0].state, final[0].iceRestarts, final[0].iceFailures],
      ['pA', true, 'connected', 2, { failed: 1, 'disconnected-timeout': 1 }],
    );
    link.close();
    assert.equal(sent.filter((message) => message.type === 'quality').length, 1);
  });
});

// --- The call keeps its links' reports within the server's limits ------------------------

// As the server says them in `joined` (the defaults of config/settings/calls.py).
const QUALITY_LIMITS = Object.freeze({ minInterval: 5, rate: 2, burst: 24, peers: 11 });

/**
 * The server's count of one seat's reports, as signaling/limits.py (QualityLimit:
 * per peer and kind once per `minInterval` on average, one up to an interval
 * early, then a token bucket of `rate` and
 * `burst`, per socket) and rooms/services/quality.py (reports about at most `peers`
 * peers per participant, checked after the bucket took its token) make it.
 * `receive` answers what the server would: 'stored' or 'rate-limited'.
 */
class ServerLimits {
  constructor({ minInterval, rate, burst, peers }, now) {
    this.now = now;
    this.interval = minInterval * 1000;
    this.rate = rate / 1000;
    this.burst = burst;
    this.tokens = burst;
    this.stamp = now();
    this.peerCap = peers;
    this.last = new Map();
    this.peers = new Set();
  }

  receive({ peer, final }) {
    const now = this.now();
    const key = `${final}:${peer}`;
    const due = Math.max(this.last.get(key) ?? now, now);
    if (due - now > this.interval) return 'rate-limited';
    this.tokens = Math.min(this.burst, this.tokens + (now - this.stamp) * this.rate);
    this.stamp = now;
    if (this.tokens < 1) return 'rate-limited';
    this.tokens -= 1;
    this.last.set(key, due + this.interval);
    if (!this.peers.has(peer) && this.peers.size >= this.peerCap) return 'rate-limited';
    this.peers.add(peer);
    return 'stored';
  }
}

/** A link with a real QualityReporter on the test's clock, its pictures from 600 ms on. */
function withReporter(Base, clock) {
  return class extends Base {
    constructor(options) {
      super(options);
      this.quality = new QualityReporter({
        peerId: options.peerId,
        getStats: growingStats(clock, { frameAt: clock.t + 600 }),
        send: (message) => this.sendSignal(message),
        info: () => ({ state: 'connected', iceRestarts: 0, iceFailures: {} }),
        clock,
      });
      this.quality.start();
    }

    reportFinal() {
      super.reportFinal();
      this.quality.finish();
    }

    close() {
      this.quality.finish();
      super.close();
    }
  };
}

/**
 * A call on the fake clock whose every link reports, and what the server made
 * of each report as it arrived: [{at, peer, final, answer}].
 */
function reportingCall({ peers, media }) {
  const clock = new FakeClock();
  const signaling = new FakeSignaling();
  const server = new ServerLimits(QUALITY_LIMITS, () => clock.t);
  const reports = [];
  const send = signaling.send.bind(signaling);
  signaling.send = (message) => {
    if (message.type === 'quality') {
      reports.push({ at: clock.t, peer: message.peer, final: message.final, answer: server.receive(message) });
    }
    return send(message);
  };
  const MeshLink = withReporter(FakeLink, clock);
  const SfuLink = withReporter(FakeSfuLink, clock);
  const call = new Call({
    room: { number: '482913075', name: 'Class' },
    me: { id: 2 },
    signaling,
    createLink: (options) => new MeshLink(options),
    createSfu: (options) => new FakeSfu(options),
    createSfuLink: (options) => new SfuLink(options),
    log: { debug: () => {} },
    clock,
  });
  call.join();
  signaling.open();
  signaling.receive({
    type: 'joined',
    room: { number: '482913075', media },
    peerId: 'me',
    peers: peers.map((peerId) => ({ peerId, user: { id: 9, username: peerId }, media: {}, joinedAt: '2026-01-05T09:00:00Z' })),
    created: false,
    resumeToken: 't',
    history: [],
    qualityLimits: QUALITY_LIMITS,
    re: 'c1',
  });
  return { call, clock, signaling, reports };
}

/** Reports per peer: [live, final]. */
function perPeer(reports) {
  const out = {};
  for (const { peer, final } of reports) {
    out[peer] = out[peer] || [0, 0];
    out[peer][final ? 1 : 0] += 1;
  }
  return out;
}

describe('the call keeps to the server\'s quality limits', () => {
  test('a class of 30 through the SFU: 11 peers reported on, every 10 s, and none refused', async () => {
    const peers = Array.from({ length: 30 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    const { call, clock, reports } = reportingCall({ peers, media: 'sfu' });
    await clock.advance(120000);
    call.leave();
    assert.deepEqual(reports.filter((r) => r.answer !== 'stored'), []);
    // The first eleven peers, each its first report with its pictures, then one
    // every 10 s (the 2 s samples fall 10.0 s after), and its final one.
    assert.deepEqual(perPeer(reports), Object.fromEntries(peers.slice(0, 11).map((p) => [p, [12, 1]])));
  });

  test('the handover: a peer\'s direct and SFU links share its budget, none refused', async () => {
    const { call, clock, signaling, reports } = reportingCall({ peers: ['pA', 'pB', 'pC'], media: 'mesh' });
    await clock.advance(3000);
    // A fifth person: the call moves to the SFU, whose pictures never play
    // here, so each peer keeps both links, both reporting, for 60 s.
    signaling.receive({ type: 'room-updated', room: { number: '482913075', media: 'sfu' } });
    await clock.advance(60000);
    call.leave();
    assert.deepEqual(reports.filter((r) => r.answer !== 'stored'), []);
    // One live report per peer every 10 s, whichever link sent it; one final.
    assert.deepEqual(perPeer(reports), { pA: [7, 1], pB: [7, 1], pC: [7, 1] });
  });

  test('a resumed seat keeps its count; a fresh join starts a new one', () => {
    let t = 0;
    const budget = new QualityBudget(QUALITY_LIMITS, { now: () => t });
    for (let i = 0; i < 11; i += 1) assert.equal(budget.take({ peer: `p${i}`, final: false }), true);
    assert.equal(budget.take({ peer: 'p11', final: false }), false); // the twelfth peer
    assert.equal(budget.take({ peer: 'p0', final: false }), false); // within 5 s (+1 s margin)
    assert.equal(budget.take({ peer: 'p0', final: true }), true); // the final counts apart
    t += 5999;
    assert.equal(budget.take({ peer: 'p0', final: false }), false);
    t += 1;
    assert.equal(budget.take({ peer: 'p0', final: false }), true);
  });

  test('the burst, kept a second\'s worth short of the server\'s', () => {
    let t = 0;
    const budget = new QualityBudget({ ...QUALITY_LIMITS, peers: 100 }, { now: () => t });
    const taken = Array.from({ length: 30 }, (_, i) => budget.take({ peer: `p${i}`, final: true }));
    assert.equal(taken.filter(Boolean).length, 22);
    t += 500; // 2 a second: one more
    assert.deepEqual([budget.take({ peer: 'q1', final: true }), budget.take({ peer: 'q2', final: true })], [true, false]);
  });
});
