// Fakes for the call state's dependencies: a signaling client and peer links
// that record what they are asked to do. No DOM, no network.

// Node 18 has EventTarget and Event but not always CustomEvent.
if (typeof globalThis.CustomEvent !== 'function') {
  globalThis.CustomEvent = class CustomEvent extends Event {
    constructor(type, init = {}) {
      super(type, init);
      this.detail = init.detail === undefined ? null : init.detail;
    }
  };
}

/** Stands in for SignalingClient: `sent` holds every message, ids c1, c2, ... */
export class FakeSignaling extends EventTarget {
  constructor() {
    super();
    this.state = 'idle';
    this.isOpen = false;
    this.sent = [];
    this.connects = 0;
    this.closes = 0;
    this.nextId = 1;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state) {
    this.state = state;
    this.emit('state', { state });
  }

  connect() {
    this.connects += 1;
    this.setState('connecting');
  }

  send(message) {
    if (!this.isOpen) return null;
    const id = message.type === 'ping' ? null : `c${this.nextId++}`;
    this.sent.push(id ? { ...message, id } : { ...message });
    return id;
  }

  close() {
    this.closes += 1;
    this.isOpen = false;
    this.setState('closed');
  }

  // --- What the test makes happen -------------------------------------------------------

  /** The socket (re)opens. */
  open() {
    this.isOpen = true;
    this.setState('open');
    this.emit('open', {});
  }

  /** The socket dropped and the client is trying again. */
  drop() {
    this.isOpen = false;
    this.setState('reconnecting');
  }

  /** A server message arrives. */
  receive(message) {
    this.emit('message', message);
  }

  /** The server closed the socket with a final code. */
  closedWith(code) {
    this.isOpen = false;
    this.setState('closed');
    this.emit('closed', { code, reason: '' });
  }

  /** Sent messages without their ids (each test checks ids where they matter). */
  messages() {
    return this.sent.map(({ id, ...rest }) => rest);
  }
}

/** Stands in for PeerLink: records the calls made on it. */
export class FakeLink extends EventTarget {
  constructor({ peerId, polite, send }) {
    super();
    this.peerId = peerId;
    this.polite = polite;
    this.sendSignal = send;
    this.state = 'connecting';
    this.calls = [];
    this.closed = false;
    this.finalReports = 0;
  }

  handleDescription(type, sdp) {
    this.calls.push(['description', type, sdp]);
  }

  handleCandidate(candidate) {
    this.calls.push(['candidate', candidate]);
  }

  restartIce() {
    this.calls.push(['restartIce']);
  }

  retire() {
    this.calls.push(['retire']);
  }

  setIceServers(config) {
    this.calls.push(['setIceServers', config]);
  }

  reportFinal() {
    this.finalReports += 1;
  }

  close() {
    this.closed = true;
    this.calls.push(['close']);
  }

  /** The connection reaches a state, as RTCPeerConnection would report it. */
  reach(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state } }));
  }
}

/** A PIN store in memory. */
export function memoryPins(initial = {}) {
  const pins = { ...initial };
  return {
    pins,
    get: (number) => pins[number] || '',
    set: (number, pin) => {
      if (pin) pins[number] = pin;
    },
  };
}

/** Every event of the given types a target emits, as [type, detail]. */
export function record(target, types) {
  const events = [];
  for (const type of types) target.addEventListener(type, (event) => events.push([type, event.detail]));
  return events;
}

/** Stands in for SfuSession: records what the call asks of it. */
export class FakeSfu extends EventTarget {
  constructor({ send }) {
    super();
    this.send = send;
    this.calls = [];
    this.refusedIds = new Set();
  }

  start() { this.calls.push(['start']); }

  restart(reason) { this.calls.push(['restart', reason]); }

  handleAnswer(message) { this.calls.push(['answer', message.sdp]); }

  handleOffer(message) { this.calls.push(['offer', message.sdp, message.streams]); }

  publishRefused(id) {
    if (!this.refusedIds.has(id)) return false;
    this.calls.push(['refused', id]);
    return true;
  }

  setTrack(kind, track) { this.calls.push(['setTrack', kind, track]); }

  close() { this.calls.push(['close']); }
}

/** Stands in for SfuLink: a FakeLink that can say its pictures play. */
export class FakeSfuLink extends FakeLink {
  constructor({ peerId, session, send }) {
    super({ peerId, polite: true, send });
    this.session = session;
    this.kind = 'sfu';
  }

  /** Its first frames were decoded. */
  play() {
    this.state = 'connected';
    this.dispatchEvent(new CustomEvent('playing', { detail: {} }));
  }
}
