// The call itself, without any DOM: joining and resuming, the peers, the
// phase, and every decision taken on a server message.
//
// A Call talks to the world through what it is given: a signaling client
// (signaling.js, or a fake in tests/js), a factory for peer links (peer.js)
// and a PIN store. It reports by events; the views (views/*.js) render from
// its state and call its methods (join, leave, sendChat, ...) for what the
// person asks. Every server message goes through the one dispatch table in
// the constructor.

import { CLIENT_TYPES as C, CLOSE_CODES, SERVER_TYPES as S } from './wire.js';
import { closeText, createDispatcher, errorText, LEFT_REASON_TEXT } from './protocol.js';
import { displayName } from './names.js';
import { QualityBudget } from './quality.js';

// Close codes after which reconnecting cannot help: the signaling client
// stops, and the call ends (or, before joining, 4401 sends the person to sign in).
export const FINAL_CLOSE_CODES = new Set([
  CLOSE_CODES.ROOM_CLOSED,
  CLOSE_CODES.KICKED,
  CLOSE_CODES.BAD_INPUT,
  CLOSE_CODES.UNAUTHENTICATED,
  CLOSE_CODES.FORBIDDEN_ORIGIN,
  // Another tab or device has this seat now; coming back would take it from
  // them, and they would take it back: a loop.
  CLOSE_CODES.REPLACED,
  CLOSE_CODES.RATE_LIMITED,
]);

// Close codes that ask to come back: reconnect with backoff and resume.
// 4408: this tab stopped reading for a while (a frozen tab, a stalled network);
// the server dropped what it could not take, and the peer waits for a resume.
export const RECONNECT_CLOSE_CODES = new Set([CLOSE_CODES.RECONNECT, CLOSE_CODES.NOT_READING]);

// How a call can end, and what the person is told.
export const ENDINGS = Object.freeze({
  left: {
    title: 'You left the room', message: 'You can rejoin while the room is open.', rejoin: true,
  },
  kicked: { title: 'You were removed', message: closeText(CLOSE_CODES.KICKED) },
  closed: { title: 'The room was closed', message: closeText(CLOSE_CODES.ROOM_CLOSED) },
  lost: {
    title: 'Disconnected',
    message: 'The connection to the server was lost and could not be restored.',
    rejoin: true,
  },
  replaced: {
    title: 'The call continues elsewhere', message: closeText(CLOSE_CODES.REPLACED), rejoin: true,
  },
  'signed-out': {
    title: 'You were signed out', message: closeText(CLOSE_CODES.UNAUTHENTICATED), signIn: true,
  },
});

const ENDING_FOR_CLOSE = Object.freeze({
  [CLOSE_CODES.ROOM_CLOSED]: 'closed',
  [CLOSE_CODES.KICKED]: 'kicked',
  [CLOSE_CODES.REPLACED]: 'replaced',
});

const NO_PINS = Object.freeze({ get: () => '', set: () => {} });
// During the handover, a direct connection is closed at the latest this long
// after its peer's pictures play through the SFU, even if the peer never says
// it receives ours through the SFU too.
export const HANDOVER_LINGER_MS = 10000;
// Once both sides play each other through the SFU, the direct link goes this
// much later: the tile's player shows the new source by then (views/tiles.js
// swaps at its first frame, 3 s at the latest).
export const HANDOVER_SWAP_MS = 3000;
// On the way back to direct, the SFU session ends at the latest this long after
// `room-updated` (inside the server's SFU_RETURN_GRACE, 30 s by default).
export const RETURN_DEADLINE_MS = 20000;

// Where the call's media goes, as the page says it.
export const MEDIA_PATH_TEXT = Object.freeze({
  direct: 'Direct: peer to peer, end-to-end encrypted',
  server: 'Through the server (SFU): encrypted to the server, not end to end',
});
// Quality reports get no answer, only an error when refused; the ids of the
// last few are kept so such an error is logged, not shown (they are ours, not
// the person's).
const REPORT_IDS_KEPT = 64;

/** Where to sign in and come back to this room. */
export function loginUrl(number) {
  return `/accounts/login/?next=${encodeURIComponent(`/rooms/${number}/`)}`;
}

/**
 * `phase` is prejoin -> joining -> in-call -> ended (joining goes back to
 * prejoin when the server refuses); `ended` says why, once it has.
 *
 * Events (CustomEvent detail):
 * `phase` ({phase, ended}), `room` ({room}), `joined` ({peerId, created, resumed}),
 * `peer-added` / `peer-changed` / `peer-removed` ({peer}), `peer-state` ({peer, state}),
 * `peer-track` ({peer, stream}), `local-media` ({media}), `chat` ({line, mine}),
 * `notice` ({text}), `join-error` ({code, text}), `error` ({code, text}),
 * `signaling` ({state}), `navigate` ({url}).
 *
 * `media-path` ({path}: direct | server).
 *
 * A peer is {peerId, info, link, mesh}: `info` is the server's peer object,
 * `link` what the views use: in a direct call what `createLink({peerId,
 * polite, send})` returned (a PeerLink), once the call goes through the SFU
 * what `createSfuLink({peerId, session, send})` returned (an SfuLink, same
 * interface). `mesh` is the direct link while there is one (during the
 * handover both exist: the tile keeps the direct pictures until the SFU's play).
 */
export class Call extends EventTarget {
  constructor({
    room, me, signaling, createLink, createSfu = null, createSfuLink = null, pins = NO_PINS, log = console,
    clock = globalThis,
  }) {
    super();
    this.createSfu = createSfu;
    this.createSfuLink = createSfuLink;
    this.clock = clock;
    this.sfu = null; // the SfuSession while the call goes through the SFU
    this.returning = false; // the room went back to direct; the SFU still bridges
    this.returnTimer = null;
    this.mediaPath = 'direct';
    this.room = { ...room };
    this.me = me || {};
    this.signaling = signaling;
    this.createLink = createLink;
    this.pins = pins;
    this.log = log;
    this.phase = 'prejoin';
    this.ended = null; // {reason, title, message, rejoin, signIn}
    this.peerId = null;
    this.resumeToken = null;
    this.joins = 0;
    this.pin = '';
    this.joinRequest = null; // {id, resume}: the join the next `error` with this `re` answers
    this.reportIds = new Set(); // ids of the latest quality reports sent by the links
    this.qualityBudget = null; // what the server takes of them (joined.qualityLimits)
    this.localMedia = { audio: false, video: false, screen: false };
    this.peers = new Map();
    this.chat = []; // every line shown, oldest first
    this.chatKeys = new Set();
    this.signalingState = signaling.state || 'idle';

    this.handle = createDispatcher({
      [S.JOINED]: (message) => this.onJoined(message),
      [S.PEER_JOINED]: ({ peer }) => {
        if (!peer || peer.peerId === this.peerId || this.phase !== 'in-call') return;
        const known = this.peers.has(peer.peerId);
        // The peer already here is polite; the newcomer will send the offer.
        this.addPeer(peer, true);
        if (!known) this.notice(`${displayName(peer.user)} joined.`);
      },
      [S.PEER_LEFT]: ({ peerId, reason }) => {
        const peer = this.peers.get(peerId);
        if (!peer) return;
        this.removePeer(peerId);
        this.notice(`${displayName(peer.info.user)} ${LEFT_REASON_TEXT[reason] || 'left'}.`);
      },
      [S.PEER_UPDATED]: ({ peer }) => {
        if (peer && peer.peerId !== this.peerId) this.updatePeer(peer);
      },
      [S.OFFER]: (message) => {
        if (this.phase !== 'in-call') return;
        // An offer can overtake the peer-joined that announces its sender.
        const peer = this.peers.get(message.from)
          || this.addPeer({ peerId: message.from, user: null, media: {} }, true);
        if (!peer.mesh && this.returning) this.addReturnLink(peer);
        if (peer.mesh) peer.mesh.handleDescription('offer', message.sdp);
      },
      [S.ANSWER]: (message) => {
        const peer = this.peers.get(message.from);
        if (peer && peer.mesh) peer.mesh.handleDescription('answer', message.sdp);
      },
      [S.CANDIDATE]: (message) => {
        const peer = this.peers.get(message.from);
        if (peer && peer.mesh) peer.mesh.handleCandidate(message.candidate);
      },
      [S.HANDOVER]: ({ from, closed }) => {
        const peer = this.peers.get(from);
        if (!peer) return;
        // They receive us through the SFU: the direct connection serves only us now.
        peer.theyMoved = true;
        // With `closed` they closed it (we never said we play them through the
        // SFU): the tile goes to the SFU link, which says how far it got.
        if (closed && peer.mesh && peer.sfuLink) {
          this.useLink(peer, peer.sfuLink);
          this.closeMesh(peer);
        } else if (peer.link !== peer.mesh) {
          this.closeMeshSoon(peer);
        }
      },
      [S.SFU_ANSWER]: (message) => {
        if (this.sfu) this.sfu.handleAnswer(message);
      },
      [S.SFU_OFFER]: (message) => {
        if (this.sfu) this.sfu.handleOffer(message);
      },
      [S.SFU_RESTART]: ({ reason }) => {
        if (this.sfu) this.sfu.restart(reason);
      },
      [S.CHAT]: (line) => this.addChat(line),
      [S.ROOM_UPDATED]: ({ room: updated }) => {
        const wasLocked = this.room.locked;
        this.setRoom({ ...this.room, ...updated });
        if (this.phase === 'in-call' && this.room.media === 'sfu') {
          if (this.returning) this.stayOnSfu();
          else if (!this.sfu) this.enterSfu({ handover: true });
        }
        if (this.phase === 'in-call' && this.room.media === 'mesh' && this.sfu && !this.returning) this.returnToMesh();
        if (this.phase === 'in-call' && wasLocked !== this.room.locked) {
          this.notice(this.room.locked ? 'The room is locked: nobody else can join.' : 'The room is open again.');
        }
      },
      [S.ROOM_CLOSED]: ({ reason }) => {
        this.end('closed', reason === 'owner' ? 'The owner ended the meeting for everyone.' : '');
      },
      [S.KICKED]: () => this.end('kicked'),
      [S.ERROR]: (message) => {
        if (this.joinRequest && message.re && message.re === this.joinRequest.id) {
          this.onJoinError(message);
          return;
        }
        if (message.re && this.reportIds.delete(message.re)) {
          this.log.debug('quality report refused:', message.code, message.message);
          return;
        }
        // Our publish was refused while the SFU is away: the session tries again by itself.
        if (message.re && this.sfu && this.sfu.publishRefused(message.re)) {
          this.log.debug('sfu: publish refused:', message.code, message.message);
          return;
        }
        this.emit('error', { code: message.code, text: errorText(message.code, message.message) });
      },
      [S.PONG]: () => {},
      // Fresh TURN credentials while we hold a seat (the ones in `joined` expire).
      [S.ICE_SERVERS]: (message) => this.emit('ice-servers', { config: message }),
      // To the owner: someone was guessing the PIN; joining with it is paused until `until`.
      [S.PIN_LOCKED]: ({ until }) => {
        const at = new Date(until).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
        this.notice(`Too many wrong PINs were tried for this room: nobody can join with the PIN until ${at}.`);
      },
    }, { onUnknown: (message) => this.log.debug('signaling: ignoring', message && message.type) });

    signaling.addEventListener('open', () => {
      if (this.phase === 'joining' || this.phase === 'in-call') this.sendJoin();
    });
    signaling.addEventListener('message', ({ detail }) => this.handle(detail));
    signaling.addEventListener('state', ({ detail }) => {
      this.signalingState = detail.state;
      this.emit('signaling', { state: detail.state });
    });
    signaling.addEventListener('closed', ({ detail }) => this.onClosed(detail.code));
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  get isOwner() {
    return Boolean(this.room.owner && this.me.id !== undefined && this.room.owner.id === this.me.id);
  }

  get loginUrl() {
    return loginUrl(this.room.number);
  }

  setPhase(phase) {
    if (this.phase === phase) return;
    this.phase = phase;
    this.emit('phase', { phase, ended: this.ended });
  }

  setRoom(room) {
    this.room = room;
    this.emit('room', { room });
  }

  notice(text) {
    this.emit('notice', { text });
  }

  send(message) {
    return this.signaling.send(message);
  }

  // --- What the person asks for -----------------------------------------------------

  /** Join the room (from the pre-join screen); false when not in a state to. */
  join({ pin = '' } = {}) {
    if (this.phase !== 'prejoin') return false;
    this.pin = pin || this.pins.get(this.room.number) || '';
    this.setPhase('joining');
    if (this.signaling.isOpen) this.sendJoin();
    else this.signaling.connect();
    return true;
  }

  leave() {
    if (this.phase === 'ended') return;
    this.reportFinal();
    this.send({ type: C.LEAVE });
    this.end('left');
  }

  /** Closing the tab says goodbye, so the others' tile goes at once. */
  goodbye() {
    if (this.phase !== 'in-call') return;
    this.reportFinal();
    this.send({ type: C.LEAVE });
  }

  /** Every link's final quality report, while we are still in the room to send it. */
  reportFinal() {
    if (this.phase !== 'in-call') return;
    for (const peer of this.peers.values()) peer.link.reportFinal();
  }

  /** What a link sends: signals, and its quality reports (whose refusals stay quiet). */
  sendFromLink(message) {
    if (message.type === C.QUALITY && this.qualityBudget && !this.qualityBudget.take(message)) return null;
    const id = this.send(message);
    if (id && message.type === C.QUALITY) {
      this.reportIds.add(id);
      if (this.reportIds.size > REPORT_IDS_KEPT) this.reportIds.delete(this.reportIds.values().next().value);
    }
    return id;
  }

  /** Send a chat line; its request id, or null when not connected. */
  sendChat(text) {
    return this.send({ type: C.CHAT, text });
  }

  /** What we send (mute, camera off, screen); told to the others once in the call. */
  setMedia({ audio, video, screen }) {
    const media = { audio: Boolean(audio), video: Boolean(video), screen: Boolean(screen) };
    const was = this.localMedia;
    if (media.audio === was.audio && media.video === was.video && media.screen === was.screen) return;
    this.localMedia = media;
    if (this.phase === 'in-call') this.send({ type: C.MEDIA, ...media });
    this.emit('local-media', { media });
  }

  kick(peerId) {
    return this.send({ type: C.KICK, peer: peerId });
  }

  toggleLock() {
    return this.send({ type: this.room.locked ? C.UNLOCK : C.LOCK });
  }

  /** The owner: how the call's media goes from now on (mesh, sfu, auto). */
  setMode(mode) {
    if (mode === this.room.mode) return null;
    return this.send({ type: C.MODE, mode });
  }

  endForEveryone() {
    return this.send({ type: C.CLOSE });
  }

  /** New ICE servers (fresh TURN credentials) for every link's next gathering. */
  setIceServers(config) {
    for (const peer of this.peers.values()) if (peer.mesh) peer.mesh.setIceServers(config);
    if (this.sfu && this.sfu.setIceServers) this.sfu.setIceServers(config);
  }

  /** A new local track (device switch, screen share) for everything that sends ours. */
  setTrack(kind, track) {
    for (const peer of this.peers.values()) if (peer.mesh) peer.mesh.setTrack(kind, track);
    if (this.sfu) this.sfu.setTrack(kind, track);
  }

  // --- Through the SFU --------------------------------------------------------------------

  setMediaPath(path) {
    if (this.mediaPath === path) return;
    this.mediaPath = path;
    this.emit('media-path', { path });
  }

  /**
   * The call goes through the SFU from now on: publish there, and receive
   * each peer there. With `handover` (a direct call growing past the mesh
   * limit) every peer keeps its direct link until its SFU pictures play.
   */
  enterSfu({ handover }) {
    if (this.sfu || !this.createSfu) return;
    this.sfu = this.createSfu({ send: (message) => this.sendFromLink(message) });
    this.setMediaPath('server');
    if (handover) {
      this.notice('More people joined: the call now goes through the server, no longer end-to-end encrypted.');
    }
    for (const peer of this.peers.values()) {
      // A direct link only bridges the handover from now on: never restarted.
      if (peer.mesh && peer.mesh.retire) peer.mesh.retire();
      this.attachSfuLink(peer);
    }
    this.sfu.start();
  }

  attachSfuLink(peer) {
    const link = this.createSfuLink({ peerId: peer.peerId, session: this.sfu, send: (m) => this.sendFromLink(m) });
    peer.sfuLink = link;
    this.listen(peer, link);
    link.addEventListener('playing', () => this.onSfuPlaying(peer, link));
    if (!peer.mesh) {
      this.useLink(peer, link);
    }
  }

  /** A peer's pictures play through the SFU: the tile moves to them, the direct link goes. */
  onSfuPlaying(peer, link) {
    if (this.peers.get(peer.peerId) !== peer || peer.sfuLink !== link || !peer.mesh) return;
    this.useLink(peer, link);
    this.send({ type: C.HANDOVER, to: peer.peerId });
    if (peer.theyMoved) {
      this.closeMeshSoon(peer);
      return;
    }
    // They still watch us on the direct link: it stays until they say they play
    // us through the SFU, or at most the linger time; then they hear it closed.
    peer.lingerTimer = this.clock.setTimeout(() => {
      if (!peer.mesh) return;
      this.closeMesh(peer);
      if (this.peers.get(peer.peerId) === peer) this.send({ type: C.HANDOVER, to: peer.peerId, closed: true });
    }, HANDOVER_LINGER_MS);
  }

  /**
   * A direct link that broke during the handover (the peer closed its end, or
   * the network dropped it): it is not restarted; the tile goes to the SFU link.
   */
  onMeshBroken(peer, link) {
    if (this.mediaPath !== 'server' || peer.mesh !== link || !peer.sfuLink) return;
    if (peer.link === link) this.useLink(peer, peer.sfuLink);
    this.closeMesh(peer);
  }

  /** Make `link` the one the views show for `peer`. */
  useLink(peer, link) {
    peer.link = link;
    if (link.stream) this.emit('peer-track', { peer, stream: link.stream });
    this.emit('peer-state', { peer, state: link.state });
    this.emit('peer-link', { peer });
  }

  /**
   * Close the direct link once the tile had time to show the SFU's pictures
   * (a new source takes a video player a moment: views/tiles.js keeps the old
   * one on screen until then, and it should still be moving).
   */
  closeMeshSoon(peer) {
    if (!peer.mesh) return;
    this.clock.clearTimeout(peer.lingerTimer);
    peer.lingerTimer = this.clock.setTimeout(() => this.closeMesh(peer), HANDOVER_SWAP_MS);
  }

  closeMesh(peer) {
    const { mesh } = peer;
    if (!mesh) return;
    this.clock.clearTimeout(peer.lingerTimer);
    peer.mesh = null;
    mesh.close();
  }

  // --- Back to direct (docs/protocol.md, "The way back") --------------------------------

  /**
   * The room went back to direct: build a direct link to everyone while still
   * receiving through the SFU; each tile moves to its direct pictures when they
   * come; once all have (or at the latest RETURN_DEADLINE_MS later, inside the
   * server's grace) the SFU session ends with `sfu-leave`.
   */
  returnToMesh() {
    this.returning = true;
    this.setMediaPath('direct');
    this.notice('The call is direct again: peer to peer, end-to-end encrypted.');
    // Nothing to mend on the SFU any more: its connections only bridge now.
    if (this.sfu.stopWatching) this.sfu.stopWatching();
    for (const peer of this.peers.values()) this.addReturnLink(peer);
    this.returnTimer = this.clock.setTimeout(() => this.finishReturn(), RETURN_DEADLINE_MS);
  }

  /** A direct link for the way back: the greater peer id offers, the other is polite. */
  addReturnLink(peer) {
    if (peer.mesh) return;
    const polite = this.peerId < peer.peerId;
    const link = this.createLink({ peerId: peer.peerId, polite, send: (message) => this.sendFromLink(message) });
    peer.mesh = link;
    this.listen(peer, link);
    link.addEventListener('state', ({ detail }) => {
      if (detail.state === 'connected' && this.returning && peer.mesh === link) this.onDirectAgain(peer);
    });
    if (!peer.sfuLink) this.useLink(peer, link);
  }

  onDirectAgain(peer) {
    if (peer.link !== peer.mesh) this.useLink(peer, peer.mesh);
    if ([...this.peers.values()].every((p) => p.link === p.mesh)) this.finishReturn();
  }

  finishReturn() {
    if (!this.returning) return;
    this.returning = false;
    this.clock.clearTimeout(this.returnTimer);
    for (const peer of this.peers.values()) {
      if (peer.mesh && peer.link !== peer.mesh) this.useLink(peer, peer.mesh);
      if (peer.sfuLink) peer.sfuLink.close();
      peer.sfuLink = null;
    }
    if (this.phase === 'in-call') this.send({ type: C.SFU_LEAVE });
    this.leaveSfu();
  }

  /** Back on the SFU before the way back was done: the direct links go again. */
  stayOnSfu() {
    this.returning = false;
    this.clock.clearTimeout(this.returnTimer);
    this.setMediaPath('server');
    for (const peer of this.peers.values()) {
      if (peer.sfuLink && peer.link !== peer.sfuLink) this.useLink(peer, peer.sfuLink);
      this.closeMesh(peer);
    }
    if (this.sfu && this.sfu.startWatching) this.sfu.startWatching();
  }

  leaveSfu() {
    const { sfu } = this;
    if (!sfu) return;
    this.sfu = null;
    sfu.close();
  }

  /** End the call for `reason` (a key of ENDINGS); `detail` replaces its message. */
  end(reason, detail = '') {
    if (this.phase === 'ended') return;
    const ending = ENDINGS[reason] || ENDINGS.lost;
    this.ended = {
      reason: ENDINGS[reason] ? reason : 'lost',
      title: ending.title,
      message: detail || ending.message,
      rejoin: Boolean(ending.rejoin),
      signIn: ending.signIn ? this.loginUrl : null,
    };
    this.phase = 'ended';
    this.removeAllPeers();
    this.leaveSfu();
    this.signaling.close();
    this.emit('phase', { phase: 'ended', ended: this.ended });
  }

  // --- Joining and resuming ----------------------------------------------------------------

  sendJoin() {
    const message = { type: C.JOIN, room: this.room.number };
    if (this.pin) message.pin = this.pin;
    // Back after a dropped socket: ask for our old peer, so the others see nothing.
    const resume = Boolean(this.resumeToken && this.peerId);
    if (resume) message.resume = this.resumeToken;
    const id = this.send(message);
    this.joinRequest = id ? { id, resume } : null;
  }

  onJoined(message) {
    this.joinRequest = null;
    this.joins += 1;
    // First: the links made below (and every ICE restart after a resume) relay with these.
    if (message.ice) this.emit('ice-servers', { config: message.ice });
    const resumed = Boolean(this.peerId) && message.peerId === this.peerId;
    // A new peer id (a first join, or the resume was refused): we are the newcomer.
    if (!resumed) this.removeAllPeers();
    // The server's limits on quality reports hold per seat: a resume keeps its count.
    if (!resumed || !this.qualityBudget) {
      this.qualityBudget = message.qualityLimits
        ? new QualityBudget(message.qualityLimits, { now: () => (this.clock.performance || performance).now() })
        : null;
    }
    this.peerId = message.peerId;
    this.resumeToken = message.resumeToken || null;
    if (message.room) this.setRoom(message.room);
    if (this.room.media === 'sfu') {
      // A fresh join (not a resume, which the server answers with sfu-restart)
      // of a call we were already receiving through the SFU: publish anew.
      if (this.sfu && !resumed) this.sfu.restart('rejoined');
      else this.enterSfu({ handover: false });
    }
    this.pins.set(this.room.number, this.pin);
    const first = this.phase !== 'in-call';
    this.setPhase('in-call');
    this.emit('joined', { peerId: this.peerId, created: Boolean(message.created), resumed });
    const peers = message.peers || [];
    if (resumed) {
      const present = new Set(peers.map((p) => p.peerId));
      for (const peerId of [...this.peers.keys()]) if (!present.has(peerId)) this.removePeer(peerId);
      for (const info of peers) {
        const known = this.peers.get(info.peerId);
        if (known) {
          this.updatePeer(info);
          // Signals sent to us while away are gone (`replayed: false`): the
          // impolite side restarts ICE on every link that is not connected.
          if (!known.link.polite && known.link.state !== 'connected') known.link.restartIce();
        } else {
          // Someone who came while we were away is newer: they offer, we are polite.
          this.addPeer(info, true);
        }
      }
    } else {
      // We are the newcomer: impolite, and we make the offers.
      for (const info of peers) this.addPeer(info, false);
    }
    for (const line of message.history || []) this.addChat(line);
    this.send({ type: C.MEDIA, ...this.localMedia });
    this.emit('local-media', { media: this.localMedia });
    if (first) this.notice(message.created ? 'You created this room.' : 'You joined the room.');
  }

  onJoinError(message) {
    const { resume } = this.joinRequest;
    this.joinRequest = null;
    if (resume) {
      // The old peer is gone (grace period over, room changed): join afresh
      // with a new peer id, rebuilding every link as the newcomer.
      this.resumeToken = null;
      this.peerId = null;
      this.removeAllPeers();
      this.sendJoin();
      return;
    }
    const text = errorText(message.code, message.message);
    if (this.phase === 'joining') {
      this.setPhase('prejoin');
      this.emit('join-error', { code: message.code || '', text });
      return;
    }
    this.end('lost', text);
  }

  /** The signaling socket closed for good (a final close code). */
  onClosed(code) {
    if (this.phase === 'ended') return;
    if (code === CLOSE_CODES.UNAUTHENTICATED) {
      // In the call: signed out elsewhere (logout, password change, removed by
      // an admin). Before it: the session ran out; sign in and come back.
      if (this.phase === 'in-call') this.end('signed-out');
      else this.emit('navigate', { url: this.loginUrl });
      return;
    }
    const reason = ENDING_FOR_CLOSE[code];
    if (reason) this.end(reason);
    else if (this.phase === 'in-call' || this.phase === 'joining') this.end('lost', closeText(code));
  }

  // --- Peers --------------------------------------------------------------------------------

  addPeer(info, polite) {
    const existing = this.peers.get(info.peerId);
    if (existing) {
      this.updatePeer(info);
      return existing;
    }
    const peer = {
      peerId: info.peerId,
      info,
      link: null,
      mesh: null,
      sfuLink: null,
      theyMoved: false,
      lingerTimer: null,
    };
    this.peers.set(info.peerId, peer);
    if (this.sfu && this.mediaPath === 'server') {
      this.attachSfuLink(peer);
    } else {
      peer.mesh = this.createLink({ peerId: info.peerId, polite, send: (message) => this.sendFromLink(message) });
      this.listen(peer, peer.mesh);
      peer.link = peer.mesh;
    }
    this.emit('peer-added', { peer });
    return peer;
  }

  /** Pass on a link's tracks and states, while it is the one the views show. */
  listen(peer, link) {
    link.addEventListener('track', ({ detail }) => {
      link.stream = detail.stream;
      if (peer.link === link) this.emit('peer-track', { peer, stream: detail.stream });
    });
    link.addEventListener('state', ({ detail }) => {
      if (link === peer.mesh && ['reconnecting', 'failed', 'closed'].includes(detail.state)) {
        this.onMeshBroken(peer, link);
      }
      if (peer.link === link) this.emit('peer-state', { peer, state: detail.state });
    });
  }

  updatePeer(info) {
    const peer = this.peers.get(info.peerId);
    if (!peer) return;
    peer.info = { ...peer.info, ...info };
    this.emit('peer-changed', { peer });
  }

  removePeer(peerId) {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    this.peers.delete(peerId);
    this.clock.clearTimeout(peer.lingerTimer);
    for (const link of [peer.mesh, peer.sfuLink]) if (link) link.close();
    this.emit('peer-removed', { peer });
  }

  removeAllPeers() {
    for (const peerId of [...this.peers.keys()]) this.removePeer(peerId);
  }

  // --- Chat ---------------------------------------------------------------------------------

  addChat(line) {
    const key = `${line.ts}|${line.from}|${line.text}`;
    if (this.chatKeys.has(key)) return; // history replayed after a reconnect
    this.chatKeys.add(key);
    this.chat.push(line);
    this.emit('chat', { line, mine: Boolean(this.peerId) && line.from === this.peerId });
  }
}
