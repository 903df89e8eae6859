// Call quality, without DOM: what getStats() says about the connection to one
// remote peer, summarised into the `quality` report the server keeps
// (docs/protocol.md, an extension), and the schedule that sends it.
//
// Each PeerLink owns a QualityReporter: it samples getStats() every 2 s (every
// 250 ms until the first remote video frame is decoded, so that time is
// precise), sends a live report every 10 s, and the final one once, when the
// pair ends (the peer left, we leave, the page goes away). The final report
// is built from the latest sample, synchronously: by then the connection may
// be closing, and a page being unloaded does not wait for promises.

import { CLIENT_TYPES, LIMITS, QUALITY_ENUMS } from './wire.js';

export const REPORT_MS = 10000; // a live report this often (the server refuses more than one per 5 s)
export const SAMPLE_MS = 2000; // getStats() this often: the final report is at most this old
export const FIRST_FRAME_POLL_MS = 250; // ...and this often until the first frame
export const FIRST_FRAME_POLL_FOR_MS = 30000; // but not for longer than this

const NO_FAILURES = Object.freeze(Object.fromEntries(QUALITY_ENUMS.ICE_FAILURE_CAUSES.map((c) => [c, 0])));

/** The selected candidate pair of a stats report, or null. */
export function selectedPair(report) {
  let pair = null;
  report.forEach((stat) => {
    if (stat.type === 'transport' && stat.selectedCandidatePairId) {
      pair = report.get(stat.selectedCandidatePairId) || pair;
    }
  });
  if (pair) return pair;
  report.forEach((stat) => {
    if (pair || stat.type !== 'candidate-pair') return;
    // Firefox marks it `selected`; else the nominated pair that works.
    if (stat.selected || (stat.nominated && stat.state === 'succeeded')) pair = stat;
  });
  return pair;
}

function add(total, value) {
  if (typeof value !== 'number') return total;
  return (total === null ? 0 : total) + Math.max(0, value);
}

/**
 * The figures of one `RTCStatsReport`, taken at `at` (ms, any monotonic clock).
 * Counters are summed over audio and video; null where the report has none.
 */
export function readStats(report, at) {
  const sample = {
    at,
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
  };
  let remoteRtt = null;
  report.forEach((stat) => {
    if (stat.type === 'inbound-rtp') {
      sample.bytesIn = add(sample.bytesIn, stat.bytesReceived);
      sample.packetsIn = add(sample.packetsIn, stat.packetsReceived);
      // RTCP counts duplicates against losses, so packetsLost can be negative.
      sample.lostIn = add(sample.lostIn, stat.packetsLost);
      if (stat.kind === 'video') {
        sample.framesDecoded = add(sample.framesDecoded, stat.framesDecoded);
        sample.framesDropped = add(sample.framesDropped, stat.framesDropped);
      }
    } else if (stat.type === 'outbound-rtp') {
      sample.bytesOut = add(sample.bytesOut, stat.bytesSent);
      sample.packetsOut = add(sample.packetsOut, stat.packetsSent);
    } else if (stat.type === 'remote-inbound-rtp') {
      // What the remote peer says of our packets.
      sample.lostOut = add(sample.lostOut, stat.packetsLost);
      if (typeof stat.roundTripTime === 'number' && remoteRtt === null) remoteRtt = stat.roundTripTime;
    }
  });
  const pair = selectedPair(report);
  if (pair) {
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    sample.local = local ? local.candidateType || null : null;
    sample.remote = remote ? remote.candidateType || null : null;
    sample.protocol = local ? local.protocol || null : null;
    // The relay's own transport to the TURN server (udp, tcp, tls).
    if (local && local.candidateType === 'relay') sample.relayProtocol = local.relayProtocol || null;
  }
  const rtt = pair && typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime : remoteRtt;
  if (rtt !== null) sample.rttMs = Math.round(rtt * 1000);
  return sample;
}

function oneOf(values, value) {
  return values.includes(value) ? value : null;
}

function bounded(value, max) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  return Math.min(max, Math.max(0, Math.round(value)));
}

function kbps(bytes, before, ms) {
  if (bytes === null || before === null || before === undefined || !(ms > 0)) return null;
  // bytes * 8 bits / ms = kbit/s
  return bounded(((bytes - before) * 8) / ms, LIMITS.QUALITY_KBPS_MAX);
}

/**
 * The `quality` message about `peer`: `sample` (readStats; may be null) and
 * `previous`, the sample of the report before (for the bitrates), plus what
 * the link itself knows: `link` = {state, firstFrameMs, iceRestarts, iceFailures}.
 * Every value is one the server accepts: unknown words and figures are null.
 */
export function qualityMessage({ peer, final, sample, previous = null, link }) {
  const counter = (value) => bounded(value, LIMITS.QUALITY_COUNTER_MAX);
  const s = sample || readStats(new Map(), 0);
  const ms = previous && sample ? sample.at - previous.at : 0;
  const failures = { ...NO_FAILURES };
  for (const cause of Object.keys(failures)) {
    failures[cause] = counter((link.iceFailures || {})[cause] || 0);
  }
  return {
    type: CLIENT_TYPES.QUALITY,
    peer,
    final: Boolean(final),
    state: oneOf(QUALITY_ENUMS.CONNECTION_STATES, link.state),
    firstFrameMs: bounded(link.firstFrameMs, LIMITS.QUALITY_MS_MAX),
    pair: {
      local: oneOf(QUALITY_ENUMS.CANDIDATE_TYPES, s.local),
      remote: oneOf(QUALITY_ENUMS.CANDIDATE_TYPES, s.remote),
      protocol: oneOf(QUALITY_ENUMS.TRANSPORT_PROTOCOLS, s.protocol),
      relayProtocol: oneOf(QUALITY_ENUMS.RELAY_PROTOCOLS, s.relayProtocol),
    },
    rttMs: bounded(s.rttMs, LIMITS.QUALITY_RTT_MAX),
    in: {
      kbps: kbps(s.bytesIn, previous && previous.bytesIn, ms),
      packets: counter(s.packetsIn),
      lost: counter(s.lostIn),
      framesDecoded: counter(s.framesDecoded),
      framesDropped: counter(s.framesDropped),
    },
    out: {
      kbps: kbps(s.bytesOut, previous && previous.bytesOut, ms),
      packets: counter(s.packetsOut),
      lost: counter(s.lostOut),
    },
    iceRestarts: counter(link.iceRestarts),
    iceFailures: failures,
  };
}

// What the client keeps in hand for the network: a report may arrive up to
// this much later or sooner than it was sent, relative to the one before.
export const BUDGET_MARGIN_MS = 1000;

/**
 * The server's limits on one seat's quality reports, kept by the client so
 * that none is refused (docs/protocol.md, Call quality). `limits` is
 * `joined.qualityLimits`: per remote peer one live and one final report per
 * `minInterval` s, `rate` reports a second with bursts of `burst`
 * (signaling/limits.py QualityLimit, per socket), reports about at most `peers`
 * peers (rooms/services/quality.py, per participant). Mesh and SFU links are counted
 * alike, by the peer they report on, as the server counts them: during the
 * handover a peer's two links share its budget.
 *
 * `take(message)` says whether a `quality` message may go now and, if so,
 * counts it. It is stricter than the server by BUDGET_MARGIN_MS (the
 * interval is that much longer, the burst that many seconds' worth smaller),
 * so reports delayed or bunched in transit are still taken.
 */
export class QualityBudget {
  constructor({ minInterval, rate, burst, peers }, { now = () => performance.now() } = {}) {
    this.now = now;
    this.intervalMs = minInterval * 1000 + BUDGET_MARGIN_MS;
    this.rate = rate / 1000; // tokens a millisecond
    this.capacity = Math.max(1, burst - Math.ceil(rate * (BUDGET_MARGIN_MS / 1000)));
    this.tokens = this.capacity;
    this.stamp = now();
    this.maxPeers = peers;
    this.peers = new Set(); // the peers reported on, ever, by this participant
    this.last = new Map(); // `${final}:${peer}` -> when its last report went
  }

  take({ peer, final }) {
    const now = this.now();
    if (!this.peers.has(peer) && this.peers.size >= this.maxPeers) return false;
    const key = `${Boolean(final)}:${peer}`;
    const last = this.last.get(key);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.stamp) * this.rate);
    this.stamp = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    this.last.set(key, now);
    this.peers.add(peer);
    return true;
  }
}

const REAL_CLOCK = Object.freeze({
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
});

/**
 * Samples one connection and sends its reports.
 *
 * `getStats()` resolves to an RTCStatsReport; `send(message)` sends on the
 * signaling socket; `info()` returns what the link knows
 * ({state, iceRestarts, iceFailures}). The first-frame time counts from
 * this reporter's creation, i.e. from when the pair began: our `joined` for
 * the peers already there, their `peer-joined` for those who came after.
 */
export class QualityReporter {
  constructor({ peerId, getStats, send, info, clock = REAL_CLOCK }) {
    this.peerId = peerId;
    this.getStats = getStats;
    this.sendMessage = send;
    this.info = info;
    this.clock = clock;
    this.startedAt = clock.now();
    this.firstFrameAt = null;
    this.latest = null; // the newest sample
    this.reported = null; // the sample the last report was built from
    this.base = null; // and the one its bitrates were measured from
    this.first = null; // the first sample (the bitrates' base until a report is sent)
    this.lastReportAt = null;
    this.timer = null;
    this.finished = false;
  }

  start() {
    this.schedule(FIRST_FRAME_POLL_MS);
  }

  schedule(ms) {
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => this.sample(), ms);
  }

  get firstFrameMs() {
    return this.firstFrameAt === null ? null : Math.round(this.firstFrameAt - this.startedAt);
  }

  /** Take one sample; send a live report when one is due; schedule the next sample. */
  async sample() {
    if (this.finished) return;
    let report = null;
    try {
      report = await this.getStats();
    } catch (err) {
      // The connection closed under us: the final report uses the last sample.
    }
    if (this.finished) return;
    const now = this.clock.now();
    if (report) {
      this.latest = readStats(report, now);
      if (!this.first) this.first = this.latest;
      if (this.firstFrameAt === null && this.latest.framesDecoded > 0) this.firstFrameAt = now;
    }
    // The first report as soon as pictures arrive (or after REPORT_MS without), then every REPORT_MS.
    const due = this.lastReportAt === null
      ? this.firstFrameAt !== null || now - this.startedAt >= REPORT_MS
      : now - this.lastReportAt >= REPORT_MS;
    if (due) this.report(false);
    const polling = this.firstFrameAt === null && now - this.startedAt < FIRST_FRAME_POLL_FOR_MS;
    this.schedule(polling ? FIRST_FRAME_POLL_MS : SAMPLE_MS);
  }

  report(final) {
    // No sample since the last report (a final right after a live one): the
    // same figures over the same interval.
    if (this.latest !== this.reported) {
      this.base = this.reported || (this.first !== this.latest ? this.first : null);
    }
    const link = { ...this.info(), firstFrameMs: this.firstFrameMs };
    this.sendMessage(qualityMessage({
      peer: this.peerId, final, sample: this.latest, previous: this.base, link,
    }));
    this.reported = this.latest;
    this.lastReportAt = this.clock.now();
  }

  /** The pair ended: send the final report, once, and stop. */
  finish() {
    if (this.finished) return;
    this.finished = true;
    this.clock.clearTimeout(this.timer);
    this.report(true);
  }

  /** Stop without a final report. */
  stop() {
    this.finished = true;
    this.clock.clearTimeout(this.timer);
  }
}
