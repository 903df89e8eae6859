// Test-only instrumentation: conftest.py adds it to every browser context
// with add_init_script, so it runs before any script of the page. The product
// ships nothing like it; this file is the tests' own window into the page.
//
// It wraps WebSocket and RTCPeerConnection to keep references (subclasses, so
// `instanceof`, WebSocket.OPEN and friends are untouched) and exposes
// `window.__e2e`: the signaling sockets and every message they carried, the
// peer connections with the remote peer each one talks to, figures from
// getStats(), the ICE servers each would use next, and a few actions (drop
// the signaling socket, restart ICE, add a resume token to the next join).
(() => {
  'use strict';

  const NativeWebSocket = window.WebSocket;
  const NativePeerConnection = window.RTCPeerConnection;
  const sockets = [];
  const received = [];
  const sent = [];
  const connections = [];
  // [ms since the page started, what, detail]: what the timing figures are made of.
  const timeline = [];
  const at = () => Math.round(performance.now());
  let nextJoinResume = null;
  // The next receiving connection from the SFU gets no candidates either way
  // (`sabotageNextSubscription()`): it stays `connecting`, as one did when Janus
  // lost the browser's candidates (docs/sfu.md), until the watchdog replaces it.
  let sabotageNextSubscription = false;
  let sabotageSdp = null;
  const sabotaged = new WeakSet();
  const withoutCandidates = (sdp) => sdp.split(/\r\n/).filter((line) => !line.startsWith('a=candidate:')).join('\r\n');

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch (err) {
      return null;
    }
  }

  // The remote peer of a connection: the `to` of the offer or answer that
  // carried its local description.
  function notePeer(message) {
    const sfuRoles = { 'sfu-offer': 'sfu-publisher', 'sfu-answer': 'sfu-subscriber' };
    if (!message || !['offer', 'answer', ...Object.keys(sfuRoles)].includes(message.type)) return;
    for (const pc of connections) {
      if (!pc.localDescription || pc.localDescription.sdp !== message.sdp) continue;
      if (sfuRoles[message.type]) pc.e2eRoleName = sfuRoles[message.type];
      else pc.e2ePeerId = message.to;
    }
  }

  class InstrumentedWebSocket extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
      this.e2eCloseCode = null;
      this.addEventListener('close', (event) => {
        this.e2eCloseCode = event.code;
      });
      this.addEventListener('message', (event) => {
        const message = parse(event.data);
        if (message) {
          received.push(message);
          timeline.push(message.type === 'error'
            ? [at(), 'received', 'error', message.code, (sent.find((m) => m.id && m.id === message.re) || {}).type || null]
            : [at(), 'received', message.type]);
          if (sabotageNextSubscription && message.type === 'sfu-offer' && message.fresh) {
            sabotageNextSubscription = false;
            sabotageSdp = message.sdp;
          }
        }
      });
    }

    send(data) {
      let message = parse(data);
      if (message && message.type === 'join' && nextJoinResume) {
        message = { ...message, resume: nextJoinResume };
        nextJoinResume = null;
        data = JSON.stringify(message);
      }
      if (message) {
        if (message.type === 'sfu-candidate' && message.role === 'subscriber'
            && connections.some((pc) => sabotaged.has(pc) && pc.signalingState !== 'closed')) {
          return undefined; // the sabotaged connection's candidates never leave
        }
        sent.push(message);
        timeline.push(message.type === 'quality'
          ? [at(), 'sent', 'quality', message.peer, message.final]
          : [at(), 'sent', message.type]);
        notePeer(message);
      }
      return super.send(data);
    }
  }

  class InstrumentedPeerConnection extends NativePeerConnection {
    constructor(...args) {
      super(...args);
      connections.push(this);
      this.e2ePeerId = null;
      // Which side offered first: the impolite newcomer does, the polite peer answers.
      this.e2eFirstDescription = null;
      this.addEventListener('signalingstatechange', () => {
        if (this.e2eFirstDescription) return;
        if (this.signalingState === 'have-local-offer') this.e2eFirstDescription = 'offer';
        if (this.signalingState === 'have-remote-offer') this.e2eFirstDescription = 'answer';
      });
      this.e2eIndex = connections.length - 1;
      this.addEventListener('connectionstatechange', () => {
        timeline.push([at(), 'connection', this.e2eIndex, this.e2eRole(), this.connectionState]);
      });
      this.addEventListener('iceconnectionstatechange', () => {
        timeline.push([at(), 'ice', this.e2eIndex, this.e2eRole(), this.iceConnectionState]);
      });
      this.addEventListener('signalingstatechange', () => {
        timeline.push([at(), 'signaling', this.e2eIndex, this.e2eRole(), this.signalingState]);
      });
    }

    /** `sfu-publisher`, `sfu-subscriber` (by the SFU message that carried its SDP), else `direct`. */
    e2eRole() {
      return this.e2eRoleName || 'direct';
    }

    setRemoteDescription(description, ...rest) {
      if (description && description.type === 'offer' && description.sdp === sabotageSdp) sabotaged.add(this);
      if (sabotaged.has(this) && description && description.type === 'offer') {
        return super.setRemoteDescription({ type: 'offer', sdp: withoutCandidates(description.sdp) }, ...rest);
      }
      return super.setRemoteDescription(description, ...rest);
    }
  }

  window.WebSocket = InstrumentedWebSocket;
  window.RTCPeerConnection = InstrumentedPeerConnection;

  const live = () => connections.filter((pc) => pc.signalingState !== 'closed');
  const connectionOf = (peerId) => live().find((pc) => pc.e2ePeerId === peerId) || null;

  window.__e2e = {
    sockets,
    received,
    sent,

    /** The close code of every socket that has closed, in the order they were made. */
    closeCodes: () => sockets.map((ws) => ws.e2eCloseCode).filter((code) => code !== null),
    /** Signaling sockets connecting or open now. */
    openSockets: () => sockets.filter((ws) => ws.readyState <= NativeWebSocket.OPEN).length,
    /** Server messages of one type, oldest first. */
    receivedOf: (type) => received.filter((m) => m.type === type),

    /** The live peer connections: remote peer, state, and who offered first. */
    peers: () => live().map((pc) => ({
      peerId: pc.e2ePeerId,
      connectionState: pc.connectionState,
      firstDescription: pc.e2eFirstDescription,
    })),

    /** What getStats() says about the connection to one peer. */
    async stats(peerId) {
      const pc = connectionOf(peerId);
      if (!pc) return null;
      const report = await pc.getStats();
      const out = {
        audioPacketsReceived: 0, videoFramesDecoded: 0, localCandidateType: null, remoteCandidateType: null,
      };
      let pair = null;
      report.forEach((stat) => {
        if (stat.type === 'transport' && stat.selectedCandidatePairId) {
          pair = report.get(stat.selectedCandidatePairId) || pair;
        }
      });
      report.forEach((stat) => {
        if (stat.type === 'candidate-pair' && !pair && stat.nominated && stat.state === 'succeeded') pair = stat;
        if (stat.type === 'inbound-rtp' && stat.kind === 'audio') out.audioPacketsReceived += stat.packetsReceived || 0;
        if (stat.type === 'inbound-rtp' && stat.kind === 'video') out.videoFramesDecoded += stat.framesDecoded || 0;
      });
      if (pair) {
        const local = report.get(pair.localCandidateId);
        const remote = report.get(pair.remoteCandidateId);
        out.localCandidateType = local ? local.candidateType : null;
        out.remoteCandidateType = remote ? remote.candidateType : null;
      }
      return out;
    },

    /**
     * Every outbound video stream of the page's live connections (getStats
     * outbound-rtp): which connection (index), m-line, simulcast rid, frames sent.
     */
    async outboundVideo() {
      const out = [];
      const pcs = live();
      for (let index = 0; index < pcs.length; index += 1) {
        const report = await pcs[index].getStats();
        report.forEach((stat) => {
          if (stat.type === 'outbound-rtp' && stat.kind === 'video') {
            out.push({ pc: index, mid: stat.mid || null, rid: stat.rid || null, framesSent: stat.framesSent || 0, width: stat.frameWidth || 0 });
          }
        });
      }
      return out;
    },
    /** The live peer connections themselves, and how many there are. */
    connections: () => live(),
    connectionCount: () => live().length,

    /**
     * Start watching every remote tile's pictures: every 25 ms, a tile whose
     * decoded-frame count (or stream) changed got a new frame; `frameGaps()`
     * then says, per peer, the longest time without one since the start.
     *
     * When this page's own main thread stalls (a starved CPU), the watcher
     * cannot tell when within the stall frames arrived: a tile that did get
     * frames meanwhile is not counted as frozen for it; one that did not is.
     * `watcherStall()` says the page's longest stall.
     */
    watchFrames() {
      const seen = new Map(); // peerId -> {key, at, maxGap}
      let lastTick = performance.now();
      let maxStall = 0;
      const tick = () => {
        const now = performance.now();
        const stalled = now - lastTick > 150;
        maxStall = Math.max(maxStall, now - lastTick);
        lastTick = now;
        for (const video of document.querySelectorAll('[data-testid="remote-video"]')) {
          const key = `${video.srcObject ? video.srcObject.id : ''}:${video.getVideoPlaybackQuality().totalVideoFrames}`;
          const entry = seen.get(video.dataset.peerId);
          if (!entry) {
            seen.set(video.dataset.peerId, { key, at: now, maxGap: 0 });
          } else if (entry.key !== key) {
            if (!stalled) entry.maxGap = Math.max(entry.maxGap, now - entry.at);
            entry.key = key;
            entry.at = now;
          }
        }
      };
      clearInterval(window.__e2eFrameTimer);
      window.__e2eFrameSeen = seen;
      window.__e2eWatcherStall = () => Math.round(maxStall);
      window.__e2eFrameTimer = setInterval(tick, 25);
    },
    /** Per peer, the longest time in ms a tile showed no new frame (till now) since watchFrames(). */
    frameGaps() {
      const now = performance.now();
      const seen = window.__e2eFrameSeen || new Map();
      return Object.fromEntries([...seen].map(([peerId, e]) => [peerId, Math.round(Math.max(e.maxGap, now - e.at))]));
    },
    /** The longest this page's watcher went without running (its main thread busy), in ms. */
    watcherStall: () => (window.__e2eWatcherStall ? window.__e2eWatcherStall() : 0),

    /** Each live connection's configuration (what its next ICE gathering uses). */
    configurations: () => live().map((pc) => pc.getConfiguration()),
    /** The TURN usernames each live connection would use next (they carry the expiry). */
    iceUsernames: () => live().map((pc) => pc.getConfiguration().iceServers
      .map((server) => server.username || '').filter(Boolean)),

    /** What happened when (ms since the page started): sockets' messages, connections' states. */
    timeline: () => timeline,
    /** Starve the next receiving connection from the SFU of candidates (see above). */
    sabotageNextSubscription: () => {
      sabotageNextSubscription = true;
    },
    /** Per remote tile, when its first frame was presented (ms since the page started). */
    watchFirstFrames() {
      const first = {};
      window.__e2eFirstFrames = first;
      const tick = () => {
        for (const video of document.querySelectorAll('[data-testid="remote-video"]')) {
          const id = video.dataset.peerId;
          if (first[id] === undefined && video.getVideoPlaybackQuality().totalVideoFrames > 0) first[id] = at();
        }
      };
      clearInterval(window.__e2eFirstFrameTimer);
      window.__e2eFirstFrameTimer = setInterval(tick, 20);
    },
    firstFrames: () => window.__e2eFirstFrames || {},

    /** Restart ICE on every live connection. */
    restartIce: () => live().forEach((pc) => pc.restartIce()),
    /** Close the open signaling socket from this side, as a dropped network would. */
    dropSignaling: () => sockets.filter((ws) => ws.readyState === NativeWebSocket.OPEN).forEach((ws) => ws.close()),
    /** Send the next `join` with this resume token, as a second tab holding it would. */
    resumeNextJoinWith: (token) => {
      nextJoinResume = token;
    },
  };
})();
