// Media through the SFU (Janus), relayed by our server: one PeerConnection
// that publishes our camera and microphone once (simulcast), and one that
// receives everyone else's streams (Janus multistream). The browser never
// talks to Janus; every SDP and candidate goes over the signaling socket
// (docs/protocol.md section 4).
//
// `SfuSession` owns the two PeerConnections; `SfuLink` is one remote
// peer's view of it, with the interface of a mesh PeerLink (peer.js), so the
// call state and the views have one code path for both kinds of call.

import { receiverAudioLevel } from './media.js';
import { QualityReporter } from './quality.js';

// Highest first, as janus.js adds them (Janus' default rid_order "hml").
// From a 640x360 camera Chromium sends the top two; from 960x540 up, all three.
export const SIMULCAST_ENCODINGS = Object.freeze([
  { rid: 'h', maxBitrate: 900000 },
  { rid: 'm', maxBitrate: 300000, scaleResolutionDownBy: 2 },
  { rid: 'l', maxBitrate: 100000, scaleResolutionDownBy: 4 },
]);
const KINDS = ['audio', 'video'];
// How often a peer's receivers are checked until its pictures play.
const PLAYING_POLL_MS = 200;
// A peer whose camera is off plays once its audio has flowed this long.
const AUDIO_ONLY_PLAYING_MS = 2500;

// The watchdog of both SFU connections (docs/sfu.md, "The watchdog"): one not
// `connected` this long after its description was set, or `disconnected` for
// longer than the grace, or `failed`, is restarted: first an ICE restart (if it
// had been connected: its DTLS is still good), then a fresh connection, each
// further attempt after twice the wait of the one before, at most RETRY_MAX_MS.
// Measured on the 2-core test machine with five browsers and a busy loop beside
// them (load ~33; docs/sfu.md "The watchdog"): from its description a connection
// came up in 3.5 s at the median, 12.7 s at p95 and 14.2 s at most, and from
// the start of its ICE checks in at most 6.0 s; Chromium itself reports
// `disconnected` after about 2.5 s without a packet.
export const SETUP_TIMEOUT_MS = 15000;
export const SETUP_TIMEOUT_MAX_MS = 60000;
// A connection whose ICE checks began only just before the setup time ran out
// (a page so busy that applying the description took most of it) gets this long
// from the start of its checks; one stuck in DTLS has been checking for long.
export const CONNECTING_GRACE_MS = 8000;
export const DISCONNECTED_GRACE_MS = 3000;
export const RETRY_MAX_MS = 30000;
const ROLES = ['publisher', 'subscriber'];

/**
 * Our answer to Janus' subscriber offer, with us as the DTLS server
 * (`a=setup:passive`; browsers answer `active` by default). The browser's ICE
 * comes up as soon as Janus answers its checks, which Janus does before our
 * answer has reached it through the server; a DTLS client's first
 * ClientHello then arrives before Janus can take it, and the browser's
 * retransmissions back off to seconds apart (on a loaded machine the DTLS
 * handshake of the others' first subscriptions at a handover did not finish
 * in 15 s). As the server we wait for Janus' ClientHello, which Janus sends
 * once it has our answer and its ICE is up: no retransmission backoff to
 * sit out. Every answer on the connection says the same (the role may not
 * change in a renegotiation).
 */
export function asDtlsServer(sdp) {
  return sdp.replace(/^a=setup:active(?=\r?$)/gm, 'a=setup:passive');
}

/**
 * Which simulcast layer a tile `width` CSS pixels wide wants (0 lowest).
 * The layers of a 640-wide camera are 640, 320 and 160 wide.
 */
export function layerForWidth(width) {
  if (width >= 480) return 2;
  if (width >= 240) return 1;
  return 0;
}

/**
 * Events (CustomEvent detail): `track` ({peerId, stream, track}), `streams`
 * ({peerIds}: who the subscription carries now), `state` ({role, state}: a
 * connection's state, `recovering` while the watchdog restarts it),
 * `restart` ({reason}).
 */
export class SfuSession extends EventTarget {
  constructor({
    config, media, send, RTCPeerConnectionImpl = globalThis.RTCPeerConnection, clock = globalThis,
    now = () => performance.now(),
  }) {
    super();
    this.config = config;
    this.media = media;
    this.send = send;
    this.RTCPeerConnection = RTCPeerConnectionImpl;
    this.clock = clock;
    this.now = now;
    this.publisher = null;
    this.subscriber = null;
    this.senders = { audio: null, video: null };
    this.mids = new Map(); // subscriber mid -> {peerId, kind}
    this.streams = new Map(); // peerId -> MediaStream
    this.wantedLayers = new Map(); // peerId -> the substream its tile wants
    this.sentLayers = new Map(); // peerId -> the substream asked of the server
    this.publishId = null; // the id of our sfu-offer, which the answer echoes
    this.offerSdp = null; // the last subscriber offer applied
    // Its id: our answer and the receiving connection's candidates name it, so the
    // server can tell them from those of a subscription it has since replaced.
    this.offerId = null;
    this.pending = Promise.resolve();
    this.retryTimer = null;
    // Per connection: the watchdog's timer, whether it was ever connected (an ICE
    // restart can help), whether this outage had its ICE restart, failures in a row.
    this.watch = Object.fromEntries(ROLES.map((role) => [role, {
      timer: null, connectedOnce: false, iceRestarted: false, failures: 0, connectingSince: null,
    }]));
    this.closed = false;
    this.started = false;
    this.watching = true;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** The way back to direct: the connections only bridge; nothing is restarted any more. */
  stopWatching() {
    this.watching = false;
    for (const role of ROLES) this.clock.clearTimeout(this.watch[role].timer);
    this.clock.clearTimeout(this.retryTimer);
  }

  startWatching() {
    this.watching = true;
  }

  /** Serialize signaling work, as perfect negotiation does per link. */
  enqueue(task) {
    this.pending = this.pending.then(task).catch((err) => {
      if (!this.closed) console.warn('sfu: signal failed', err);
    });
    return this.pending;
  }

  // --- Publishing ------------------------------------------------------------------

  /** Publish our media to the SFU on a new connection (again, after a restart). */
  start() {
    if (this.closed) return;
    this.started = true;
    this.clock.clearTimeout(this.retryTimer);
    this.enqueue(async () => {
      if (this.closed) return;
      if (this.publisher) this.publisher.close();
      const pc = new this.RTCPeerConnection(this.config);
      this.publisher = pc;
      Object.assign(this.watch.publisher, { connectedOnce: false, iceRestarted: false, connectingSince: null });
      pc.addEventListener('icecandidate', ({ candidate }) => {
        if (pc !== this.publisher) return;
        this.send({ type: 'sfu-candidate', role: 'publisher', candidate: candidate ? candidate.toJSON() : null });
      });
      pc.addEventListener('connectionstatechange', () => this.onState('publisher', pc));
      for (const kind of KINDS) {
        const track = this.media.outgoing(kind);
        const init = { direction: 'sendonly', streams: [this.media.stream] };
        if (kind === 'video') init.sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
        this.senders[kind] = pc.addTransceiver(track || kind, init).sender;
      }
      await pc.setLocalDescription();
      this.publishId = this.send({ type: 'sfu-offer', sdp: pc.localDescription.sdp });
      this.arm('publisher', this.setupWait('publisher'));
    });
  }

  /** An ICE restart of the publishing connection (its DTLS and media go on). */
  restartPublisherIce() {
    this.enqueue(async () => {
      const pc = this.publisher;
      if (!pc || this.closed || pc.signalingState !== 'stable') return;
      await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
      this.publishId = this.send({ type: 'sfu-offer', sdp: pc.localDescription.sdp });
      this.arm('publisher', this.setupWait('publisher'));
    });
  }

  /** The server's answer to our publisher offer. */
  handleAnswer({ sdp, re }) {
    return this.enqueue(async () => {
      const pc = this.publisher;
      if (!pc || pc.signalingState !== 'have-local-offer' || (re && this.publishId && re !== this.publishId)) return;
      await pc.setRemoteDescription({ type: 'answer', sdp });
    });
  }

  /** Our publish was refused (the SFU is unreachable): try again shortly. */
  publishRefused(id) {
    if (id !== this.publishId || this.closed) return false;
    this.scheduleRestart('unavailable', 1500);
    return true;
  }

  scheduleRestart(reason, ms) {
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.clock.setTimeout(() => this.restart(reason), ms);
  }

  /**
   * Publish anew on a new connection: the server lost our Janus session (it
   * answers with a fresh subscription too), or the watchdog gave up on ours.
   * The receiving connection is left to its own watchdog and to the server.
   */
  restart(reason = 'lost') {
    if (this.closed) return;
    this.emit('restart', { reason });
    this.start();
  }

  /** Send a different local track (device switch, screen share, camera back). */
  async setTrack(kind, track) {
    const sender = this.senders[kind];
    if (sender && !this.closed) await sender.replaceTrack(track);
  }

  /** New ICE servers (fresh TURN credentials) for both connections' next gathering. */
  setIceServers(config) {
    this.config = { ...this.config, ...config };
    for (const pc of [this.publisher, this.subscriber]) {
      if (!pc) continue;
      try {
        pc.setConfiguration({ ...pc.getConfiguration(), ...config });
      } catch (err) {
        console.warn('sfu: setConfiguration failed', err);
      }
    }
  }

  // --- The watchdog -------------------------------------------------------------------

  onState(role, pc) {
    if (pc !== this[role] || this.closed) return;
    const state = pc.connectionState;
    const watch = this.watch[role];
    this.emit('state', { role, state });
    if (state === 'connected') {
      this.clock.clearTimeout(watch.timer);
      watch.timer = null;
      // A new connection the watchdog scheduled is not wanted any more: this one made it.
      if (role === 'publisher') this.clock.clearTimeout(this.retryTimer);
      Object.assign(watch, { connectedOnce: true, iceRestarted: false, failures: 0, connectingSince: null });
    } else if (state === 'connecting') {
      if (watch.connectingSince === null) watch.connectingSince = this.now();
    } else if (state === 'disconnected') {
      watch.connectingSince = null;
      this.arm(role, DISCONNECTED_GRACE_MS);
    } else if (state === 'failed') {
      watch.connectingSince = null;
      this.recover(role);
    }
  }

  /**
   * How long `role`'s connection may take to come up: doubled after each
   * failure in a row, so that a machine too busy to set one up in time is not
   * made busier by tearing down connections that were about to connect.
   */
  setupWait(role) {
    return Math.min(SETUP_TIMEOUT_MS * 2 ** this.watch[role].failures, SETUP_TIMEOUT_MAX_MS);
  }

  /** Recover `role`'s connection unless it is connected `ms` from now. */
  arm(role, ms) {
    if (!this.watching) return;
    const watch = this.watch[role];
    this.clock.clearTimeout(watch.timer);
    watch.timer = this.clock.setTimeout(() => {
      watch.timer = null;
      const pc = this[role];
      if (this.closed || (pc && pc.connectionState === 'connected')) return;
      const checking = pc && pc.connectionState === 'connecting' && watch.connectingSince !== null
        ? this.now() - watch.connectingSince : null;
      if (checking !== null && checking < CONNECTING_GRACE_MS) {
        this.arm(role, CONNECTING_GRACE_MS - checking);
        return;
      }
      this.recover(role);
    }, ms);
  }

  /** One step of the watchdog's ladder for `role`. */
  recover(role) {
    if (this.closed || !this.watching) return;
    const watch = this.watch[role];
    this.clock.clearTimeout(watch.timer);
    this.emit('state', { role, state: 'recovering' });
    if (watch.connectedOnce && !watch.iceRestarted) {
      watch.iceRestarted = true;
      if (role === 'publisher') {
        this.restartPublisherIce();
      } else {
        this.send(this.named({ type: 'sfu-resubscribe', iceRestart: true }));
        this.arm(role, this.setupWait(role));
      }
      return;
    }
    watch.failures += 1;
    const wait = Math.min(1000 * 2 ** (watch.failures - 1), RETRY_MAX_MS);
    if (role === 'publisher') {
      this.scheduleRestart('stalled', wait);
    } else {
      // The fresh offer makes a new connection (handleOffer); until it comes, this
      // timer asks again (a refusal, rate-limited or SFU away, needs no other answer).
      watch.timer = this.clock.setTimeout(() => {
        watch.timer = null;
        if (this.closed) return;
        this.send(this.named({ type: 'sfu-resubscribe', iceRestart: false }));
        this.arm(role, this.setupWait(role));
      }, wait);
    }
  }

  // --- Receiving ---------------------------------------------------------------------

  /** The server's offer for our receiving connection: which peer each m-line carries. */
  handleOffer({ sdp, streams, fresh, id }) {
    return this.enqueue(async () => {
      if (this.closed) return;
      // The same offer again after a resume (our answer may have been lost with
      // the old socket): answer it again on the connection that applied it.
      const pc0 = this.subscriber;
      if (pc0 && sdp === this.offerSdp && pc0.signalingState === 'stable' && pc0.localDescription) {
        this.send(this.named({ type: 'sfu-answer', sdp: pc0.localDescription.sdp }));
        return;
      }
      this.offerSdp = sdp;
      // Only a fresh subscription is a new connection: an update of the one we
      // have must not land on another (its DTLS would not match Janus').
      if (fresh || !this.subscriber) this.newSubscriber();
      const pc = this.subscriber;
      const before = new Set([...this.mids.values()].map((s) => s.peerId));
      this.mids = new Map((streams || []).map((s) => [s.mid, { peerId: s.peerId, kind: s.kind }]));
      this.offerId = id || null;
      await pc.setRemoteDescription({ type: 'offer', sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription({ type: 'answer', sdp: asDtlsServer(answer.sdp) });
      this.send(this.named({ type: 'sfu-answer', sdp: pc.localDescription.sdp }));
      if (pc.connectionState !== 'connected' && !this.watch.subscriber.timer) this.arm('subscriber', this.setupWait('subscriber'));
      // Tracks of m-lines that went inactive leave their peer's stream.
      const now = new Set([...this.mids.values()].map((s) => s.peerId));
      for (const transceiver of pc.getTransceivers()) {
        if (!this.mids.has(transceiver.mid) && transceiver.receiver.track) {
          for (const stream of this.streams.values()) stream.removeTrack(transceiver.receiver.track);
        }
      }
      for (const peerId of before) if (!now.has(peerId)) this.streams.delete(peerId);
      this.emit('streams', { peerIds: [...now] });
      this.sendLayers();
    });
  }

  /** `message` naming the subscriber offer it is for (`re`), when the server gave it an id. */
  named(message) {
    return this.offerId ? { ...message, re: this.offerId } : message;
  }

  newSubscriber() {
    if (this.subscriber) this.subscriber.close();
    const pc = new this.RTCPeerConnection(this.config);
    this.subscriber = pc;
    this.streams = new Map();
    this.sentLayers = new Map();
    const watch = this.watch.subscriber;
    this.clock.clearTimeout(watch.timer);
    Object.assign(watch, { timer: null, connectedOnce: false, iceRestarted: false, connectingSince: null });
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (pc !== this.subscriber) return;
      this.send(this.named({ type: 'sfu-candidate', role: 'subscriber', candidate: candidate ? candidate.toJSON() : null }));
    });
    pc.addEventListener('connectionstatechange', () => this.onState('subscriber', pc));
    pc.addEventListener('track', ({ track, transceiver }) => {
      if (pc !== this.subscriber) return;
      const owner = this.mids.get(transceiver.mid);
      if (!owner) return;
      const stream = this.streamOf(owner.peerId);
      for (const old of stream.getTracks().filter((t) => t.kind === track.kind && t !== track)) stream.removeTrack(old);
      if (!stream.getTracks().includes(track)) stream.addTrack(track);
      this.emit('track', { peerId: owner.peerId, stream, track });
    });
  }

  streamOf(peerId) {
    let stream = this.streams.get(peerId);
    if (!stream) {
      stream = new MediaStream();
      this.streams.set(peerId, stream);
    }
    return stream;
  }

  /** The receivers carrying `peerId`'s media now. */
  receiversOf(peerId) {
    if (!this.subscriber) return [];
    return this.subscriber.getTransceivers()
      .filter((t) => t.mid !== null && (this.mids.get(t.mid) || {}).peerId === peerId)
      .map((t) => t.receiver);
  }

  /** getStats() for one peer's receivers, as one report (a Map, like RTCStatsReport). */
  async statsOf(peerId) {
    const merged = new Map();
    for (const receiver of this.receiversOf(peerId)) {
      const report = await receiver.getStats();
      report.forEach((stat, id) => merged.set(id, stat));
    }
    return merged;
  }

  /** Ask for simulcast layer `substream` of `peerId`'s video (sent once its stream is there). */
  setLayer(peerId, substream) {
    this.wantedLayers.set(peerId, substream);
    this.sendLayers();
  }

  sendLayers() {
    const present = new Set([...this.mids.values()].map((s) => s.peerId));
    for (const [peerId, substream] of this.wantedLayers) {
      if (!present.has(peerId) || this.sentLayers.get(peerId) === substream) continue;
      this.sentLayers.set(peerId, substream);
      this.send({ type: 'sfu-layer', peer: peerId, substream });
    }
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.retryTimer);
    for (const role of ROLES) this.clock.clearTimeout(this.watch[role].timer);
    if (this.publisher) this.publisher.close();
    if (this.subscriber) this.subscriber.close();
    this.publisher = null;
    this.subscriber = null;
  }
}

/**
 * One remote peer's media from the SFU, with a mesh PeerLink's interface.
 *
 * Events: `track` ({stream}), `state` ({state}), and `playing` (once: its
 * pictures are being decoded, or its sound flows when it sends no video):
 * the handover waits for it before it closes the direct connection.
 */
export class SfuLink extends EventTarget {
  constructor({ peerId, session, send, clock = globalThis }) {
    super();
    this.peerId = peerId;
    this.session = session;
    this.polite = true;
    this.kind = 'sfu';
    this.closed = false;
    this.playing = false;
    this.state = 'connecting';
    this.clock = clock;
    this.firstAudioAt = null;
    this.playTimer = null;
    // The stats overlay and the quality reports read `pc.getStats()`.
    this.pc = { getStats: () => session.statsOf(peerId) };
    this.onTrack = ({ detail }) => {
      if (detail.peerId !== this.peerId || this.closed) return;
      this.emit('track', { stream: detail.stream, track: detail.track });
      this.watchPlaying();
    };
    this.onState = ({ detail }) => {
      if (detail.role !== 'subscriber' || this.closed) return;
      // Never a silent frozen tile: a connection the watchdog is restarting, or one
      // that dropped, says so; one still coming up is "connecting" until it played.
      const broken = ['disconnected', 'failed', 'recovering'].includes(detail.state);
      let state = this.playing ? 'reconnecting' : 'connecting';
      if (detail.state === 'connected') state = this.playing ? 'connected' : 'connecting';
      else if (broken) state = 'reconnecting';
      this.setState(state);
    };
    session.addEventListener('track', this.onTrack);
    session.addEventListener('state', this.onState);
    const stream = session.streams.get(peerId);
    if (stream && stream.getTracks().length) {
      this.clock.setTimeout(() => this.onTrack({ detail: { peerId, stream, track: stream.getTracks()[0] } }), 0);
    }
    this.quality = new QualityReporter({
      peerId,
      getStats: () => this.pc.getStats(),
      send,
      info: () => ({
        state: session.subscriber ? session.subscriber.connectionState : 'new',
        iceRestarts: 0,
        iceFailures: { failed: 0, 'disconnected-timeout': 0 },
      }),
    });
    this.quality.start();
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', { state });
  }

  watchPlaying() {
    if (this.playing || this.playTimer || this.closed) return;
    const check = async () => {
      this.playTimer = null;
      if (this.closed || this.playing) return;
      let frames = 0;
      let audio = 0;
      try {
        (await this.session.statsOf(this.peerId)).forEach((stat) => {
          if (stat.type !== 'inbound-rtp') return;
          if (stat.kind === 'video') frames += stat.framesDecoded || 0;
          if (stat.kind === 'audio') audio += stat.packetsReceived || 0;
        });
      } catch (err) {
        // The connection was replaced meanwhile.
      }
      const now = this.clock.performance ? this.clock.performance.now() : Date.now();
      if (audio && this.firstAudioAt === null) this.firstAudioAt = now;
      if (frames > 0 || (this.firstAudioAt !== null && now - this.firstAudioAt >= AUDIO_ONLY_PLAYING_MS)) {
        this.playing = true;
        this.setState('connected');
        this.emit('playing');
        return;
      }
      this.playTimer = this.clock.setTimeout(check, PLAYING_POLL_MS);
    };
    this.playTimer = this.clock.setTimeout(check, 0);
  }

  // What a mesh link does that the SFU does for everyone, once.
  handleDescription() {}

  handleCandidate() {}

  restartIce() {}

  setIceServers() {}

  setTrack(kind, track) {
    return this.session.setTrack(kind, track);
  }

  setLayer(substream) {
    this.session.setLayer(this.peerId, substream);
  }

  audioLevel() {
    const receiver = this.session.receiversOf(this.peerId).find((r) => r.track && r.track.kind === 'audio');
    return receiverAudioLevel(receiver);
  }

  reportFinal() {
    this.quality.finish();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.playTimer);
    this.quality.finish();
    this.session.removeEventListener('track', this.onTrack);
    this.session.removeEventListener('state', this.onState);
    this.setState('closed');
  }
}
