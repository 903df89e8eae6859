// One RTCPeerConnection per remote peer, negotiated the MDN "perfect negotiation" way.
//
// The newcomer is impolite and makes the first offer; the peer that was
// already in the room is polite: it waits for that offer, answers it with its
// own tracks attached, and on any later collision rolls back its own offer.
// Each link also reports its quality to the server (quality.js).

import { receiverAudioLevel } from './media.js';
import { QualityReporter, selectedPair } from './quality.js';

const DISCONNECTED_GRACE_MS = 4000; // "disconnected" this long: restart ICE
const OFFER_RESEND_MS = 6000; // an offer unanswered this long is sent again
const OFFER_RESEND_MAX = 4;
const KINDS = ['audio', 'video'];

export function rtcConfiguration(sessionConfig) {
  return {
    iceServers: (sessionConfig && sessionConfig.iceServers) || [],
    iceTransportPolicy: (sessionConfig && sessionConfig.iceTransportPolicy) || 'all',
  };
}

/**
 * Events (CustomEvent detail): `track` ({stream}), `state` ({state}) with
 * state one of connecting | connected | reconnecting | failed | closed.
 */
export class PeerLink extends EventTarget {
  constructor({ peerId, polite, config, media, send }) {
    super();
    this.peerId = peerId;
    this.polite = polite;
    this.media = media;
    this.sendSignal = send;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.isSettingRemoteAnswerPending = false;
    this.receivedOffer = false;
    this.pendingCandidates = [];
    this.queue = Promise.resolve();
    this.transceivers = { audio: null, video: null };
    this.remoteStream = new MediaStream();
    this.state = 'connecting';
    this.disconnectedTimer = null;
    this.offerTimer = null;
    this.offerResends = 0;
    this.closed = false;
    this.retiring = false;
    // For the quality reports: ICE restarts we asked for, and why the connection broke.
    this.iceRestarts = 0;
    this.iceFailures = { failed: 0, 'disconnected-timeout': 0 };

    this.pc = new RTCPeerConnection(config);
    this.pc.addEventListener('negotiationneeded', () => this.onNegotiationNeeded());
    this.pc.addEventListener('icecandidate', ({ candidate }) => {
      this.sendSignal({ type: 'candidate', to: this.peerId, candidate: candidate ? candidate.toJSON() : null });
    });
    this.pc.addEventListener('track', ({ track }) => {
      if (!this.remoteStream.getTracks().includes(track)) {
        for (const old of this.remoteStream.getTracks().filter((t) => t.kind === track.kind)) {
          this.remoteStream.removeTrack(old);
        }
        this.remoteStream.addTrack(track);
      }
      this.emit('track', { stream: this.remoteStream, track });
    });
    this.pc.addEventListener('connectionstatechange', () => this.onConnectionState());
    this.pc.addEventListener('signalingstatechange', () => {
      if (this.pc.signalingState === 'stable') this.clearOfferTimer();
    });

    if (!polite) {
      // The impolite newcomer adds one audio and one video transceiver up
      // front (receive-only when it has no such device), so the offer always
      // carries both m-lines and the polite side can answer with its tracks.
      for (const kind of KINDS) this.addTransceiver(kind);
    }

    this.quality = new QualityReporter({
      peerId,
      getStats: () => this.pc.getStats(),
      send: (message) => this.sendSignal(message),
      info: () => ({
        state: this.pc.connectionState,
        iceRestarts: this.iceRestarts,
        iceFailures: { ...this.iceFailures },
      }),
    });
    this.quality.start();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  addTransceiver(kind) {
    const track = this.media.outgoing(kind);
    this.transceivers[kind] = this.pc.addTransceiver(track || kind, {
      direction: track ? 'sendrecv' : 'recvonly',
      streams: [this.media.stream],
    });
  }

  /** The polite side, given an offer: attach our tracks to the transceivers it created. */
  bindTransceivers() {
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.receiver.track.kind;
      if (this.transceivers[kind] || transceiver.mid === null || transceiver.stopped) continue;
      this.transceivers[kind] = transceiver;
      const track = this.media.outgoing(kind);
      transceiver.sender.replaceTrack(track);
      if (transceiver.sender.setStreams) transceiver.sender.setStreams(this.media.stream);
      transceiver.direction = track ? 'sendrecv' : 'recvonly';
    }
  }

  /** Send a different local track (device switch, screen share, camera back). */
  async setTrack(kind, track) {
    const transceiver = this.transceivers[kind];
    if (!transceiver || this.closed) return; // bound when the first offer arrives
    await transceiver.sender.replaceTrack(track);
    const wanted = track ? 'sendrecv' : 'recvonly';
    if (track && transceiver.direction !== wanted) {
      // We had nothing to send on this m-line: this renegotiates.
      transceiver.direction = wanted;
    }
  }

  async onNegotiationNeeded() {
    if (this.closed || (this.retiring && this.pc.remoteDescription)) return;
    // The newcomer makes the first offer; until it arrives the polite side
    // holds its own, which keeps the first exchange free of glare.
    if (this.polite && !this.receivedOffer) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.sendOffer();
    } catch (err) {
      console.warn(`peer ${this.peerId}: offer failed`, err);
    } finally {
      this.makingOffer = false;
    }
  }

  sendOffer() {
    const description = this.pc.localDescription;
    if (!description || description.type !== 'offer') return;
    this.sendSignal({ type: 'offer', to: this.peerId, sdp: description.sdp });
    this.clearOfferTimer();
    // A signal lost while the socket was reconnecting must not stall the
    // call: the same offer is sent again until it is answered.
    this.offerTimer = setTimeout(() => {
      if (this.retiring && this.pc.remoteDescription) return;
      if (this.pc.signalingState === 'have-local-offer' && this.offerResends < OFFER_RESEND_MAX) {
        this.offerResends += 1;
        this.sendOffer();
      }
    }, OFFER_RESEND_MS);
  }

  clearOfferTimer() {
    clearTimeout(this.offerTimer);
    this.offerTimer = null;
  }

  /** Incoming signals are handled one at a time, in the order they came. */
  enqueue(task) {
    this.queue = this.queue.then(task).catch((err) => {
      if (!this.closed) console.warn(`peer ${this.peerId}: signal failed`, err);
    });
    return this.queue;
  }

  handleDescription(type, sdp) {
    return this.enqueue(async () => {
      if (this.closed) return;
      const pc = this.pc;
      const readyForOffer = !this.makingOffer
        && (pc.signalingState === 'stable' || this.isSettingRemoteAnswerPending);
      const offerCollision = type === 'offer' && !readyForOffer;
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;
      if (type === 'answer' && pc.signalingState !== 'have-local-offer') return; // duplicate
      this.isSettingRemoteAnswerPending = type === 'answer';
      await pc.setRemoteDescription({ type, sdp }); // rolls back our own offer if needed
      this.isSettingRemoteAnswerPending = false;
      if (type === 'offer') {
        this.receivedOffer = true;
        this.bindTransceivers();
        await pc.setLocalDescription();
        this.sendSignal({ type: 'answer', to: this.peerId, sdp: pc.localDescription.sdp });
      } else {
        this.offerResends = 0;
      }
      const pending = this.pendingCandidates.splice(0);
      for (const candidate of pending) await this.addCandidate(candidate);
    });
  }

  handleCandidate(candidate) {
    return this.enqueue(async () => {
      if (this.closed || candidate === null) return; // end-of-candidates: nothing to do
      if (!this.pc.remoteDescription) {
        this.pendingCandidates.push(candidate);
        return;
      }
      await this.addCandidate(candidate);
    });
  }

  async addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      if (!this.ignoreOffer) console.warn(`peer ${this.peerId}: bad candidate`, err);
    }
  }

  onConnectionState() {
    const state = this.pc.connectionState;
    clearTimeout(this.disconnectedTimer);
    if (state === 'connected') {
      this.setState('connected');
    } else if (state === 'disconnected') {
      this.setState('reconnecting');
      this.disconnectedTimer = setTimeout(() => {
        this.iceFailures['disconnected-timeout'] += 1;
        this.restartIce();
      }, DISCONNECTED_GRACE_MS);
    } else if (state === 'failed') {
      this.iceFailures.failed += 1;
      this.setState('failed');
      // The impolite side restarts at once; the polite side only if that
      // does not happen, so the two restarts rarely collide.
      this.disconnectedTimer = setTimeout(() => this.restartIce(), this.polite ? 2500 : 0);
    } else if (state === 'closed') {
      this.setState('closed');
    } else {
      this.setState('connecting');
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', { state });
  }

  /**
   * The call went through the SFU: this link only bridges the handover, so once
   * negotiated it is never restarted or renegotiated (the peer may have closed
   * its end: an ICE-restart offer would go unanswered). One retired before its
   * first exchange still completes it.
   */
  retire() {
    this.retiring = true;
    clearTimeout(this.disconnectedTimer);
    if (this.pc.remoteDescription) this.clearOfferTimer();
  }

  restartIce() {
    if (this.closed || this.retiring || this.pc.connectionState === 'connected') return;
    this.setState('reconnecting');
    this.receivedOffer = true; // after a restart either side may offer
    this.iceRestarts += 1;
    this.pc.restartIce();
  }

  /** New ICE servers (fresh TURN credentials), used by the next ICE gathering. */
  setIceServers(config) {
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), ...config });
    } catch (err) {
      console.warn(`peer ${this.peerId}: setConfiguration failed`, err);
    }
  }

  /** The receiver's current audio level (0..1), cheap enough to poll for the speaking ring. */
  audioLevel() {
    const transceiver = this.transceivers.audio;
    const receiver = transceiver ? transceiver.receiver
      : this.pc.getReceivers().find((r) => r.track && r.track.kind === 'audio');
    return receiverAudioLevel(receiver);
  }

  /** The pair is ending (the peer left, we leave, the page goes away): its final quality report. */
  reportFinal() {
    this.quality.finish();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.disconnectedTimer);
    this.clearOfferTimer();
    // Before the connection closes: the final report says how it was at the end.
    this.quality.finish();
    this.pc.close();
    this.setState('closed');
  }
}

/**
 * Summarise `getStats()` into what the overlay shows. `previous` is the last
 * summary (for bitrates); returns a new one.
 */
export async function summarizeStats(pc, previous) {
  const report = await pc.getStats();
  const now = performance.now();
  const out = {
    at: now,
    bytesIn: 0,
    bytesOut: 0,
    rttMs: null,
    bitrateInKbps: null,
    bitrateOutKbps: null,
    packetsLost: 0,
    packetsReceived: 0,
    lossPercent: null,
    width: null,
    height: null,
    fps: null,
    localCandidateType: null,
    remoteCandidateType: null,
    audioPacketsReceived: 0,
    videoFramesDecoded: 0,
  };
  const pair = selectedPair(report);
  report.forEach((stat) => {
    if (stat.type === 'inbound-rtp') {
      out.bytesIn += stat.bytesReceived || 0;
      out.packetsLost += Math.max(0, stat.packetsLost || 0);
      out.packetsReceived += stat.packetsReceived || 0;
      if (stat.kind === 'audio') out.audioPacketsReceived += stat.packetsReceived || 0;
      if (stat.kind === 'video') {
        out.width = stat.frameWidth || out.width;
        out.height = stat.frameHeight || out.height;
        out.fps = stat.framesPerSecond || out.fps;
        out.videoFramesDecoded += stat.framesDecoded || 0;
      }
    }
    if (stat.type === 'outbound-rtp') out.bytesOut += stat.bytesSent || 0;
  });
  if (pair) {
    if (typeof pair.currentRoundTripTime === 'number') out.rttMs = Math.round(pair.currentRoundTripTime * 1000);
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    out.localCandidateType = local ? local.candidateType : null;
    out.remoteCandidateType = remote ? remote.candidateType : null;
  }
  const total = out.packetsLost + out.packetsReceived;
  out.lossPercent = total ? Math.round((1000 * out.packetsLost) / total) / 10 : null;
  if (previous) {
    const seconds = (now - previous.at) / 1000;
    if (seconds > 0) {
      out.bitrateInKbps = Math.max(0, Math.round(((out.bytesIn - previous.bytesIn) * 8) / seconds / 1000));
      out.bitrateOutKbps = Math.max(0, Math.round(((out.bytesOut - previous.bytesOut) * 8) / seconds / 1000));
    }
  }
  return out;
}

export function formatStats(s) {
  const dash = '–';
  const lines = [
    `path ${s.localCandidateType || dash}${s.remoteCandidateType ? ` → ${s.remoteCandidateType}` : ''}`,
    `rtt ${s.rttMs === null ? dash : `${s.rttMs} ms`}`,
    `in ${s.bitrateInKbps === null ? dash : `${s.bitrateInKbps} kbit/s`}`,
    `out ${s.bitrateOutKbps === null ? dash : `${s.bitrateOutKbps} kbit/s`}`,
    `loss ${s.lossPercent === null ? dash : `${s.lossPercent} %`}`,
    `video ${s.width ? `${s.width}×${s.height}` : dash} ${s.fps ? `@ ${Math.round(s.fps)} fps` : ''}`.trim(),
  ];
  return lines.join('\n');
}
