// The signaling WebSocket: one socket, reconnected with backoff, kept alive by ping.

import { CLIENT_TYPES } from './wire.js';

const PING_INTERVAL_MS = 15000; // protocol.md: heartbeat every 15 s
const PONG_TIMEOUT_MS = 40000; // no answer for this long: the socket is dead
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;

/** The socket URL: absolute, and `wss:` whenever the page itself is https. */
export function signalingUrl(config) {
  const given = config && config.signaling && config.signaling.url;
  const url = new URL(given || '/ws/signaling/', window.location.href);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (window.location.protocol === 'https:') url.protocol = 'wss:';
  return url.toString();
}

/**
 * A WebSocket that comes back.
 *
 * Events (CustomEvent detail): `open` (every (re)connection), `message`
 * (a parsed server message), `state` ({state: connecting|open|reconnecting|closed}),
 * `closed` ({code, reason}: closed for good, by a close code in
 * `finalCloseCodes`; the caller decides which codes those are).
 */
export class SignalingClient extends EventTarget {
  constructor(url, { finalCloseCodes = new Set() } = {}) {
    super();
    this.url = url;
    this.finalCloseCodes = finalCloseCodes;
    this.ws = null;
    this.state = 'idle';
    this.attempt = 0;
    this.stopped = false;
    this.nextId = 1;
    this.lastSeen = 0;
    this.pingTimer = null;
    this.retryTimer = null;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', { state });
  }

  get isOpen() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  connect() {
    this.stopped = false;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return;
    clearTimeout(this.retryTimer);
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      this.attempt = 0;
      this.lastSeen = Date.now();
      this.startHeartbeat();
      this.setState('open');
      this.emit('open', {});
    });
    ws.addEventListener('message', (event) => {
      if (ws !== this.ws) return;
      this.lastSeen = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        console.warn('signaling: ignoring a frame that is not JSON');
        return;
      }
      this.emit('message', message);
    });
    ws.addEventListener('close', (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.stopHeartbeat();
      if (this.stopped || this.finalCloseCodes.has(event.code)) {
        this.stopped = true;
        this.setState('closed');
        this.emit('closed', { code: event.code, reason: event.reason });
        return;
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    // Exponential backoff with full jitter, so a restarted worker is not
    // hit by every client in the same instant.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = BACKOFF_MIN_MS / 2 + Math.random() * ceiling;
    this.attempt += 1;
    this.setState('reconnecting');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastSeen > PONG_TIMEOUT_MS) {
        // Half-open socket (laptop slept, NAT dropped it): start over.
        this.drop();
        return;
      }
      this.send({ type: CLIENT_TYPES.PING });
    }, PING_INTERVAL_MS);
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  /** Close the current socket and reconnect, as if the network had dropped it. */
  drop() {
    if (!this.ws) return;
    const ws = this.ws;
    this.ws = null;
    this.stopHeartbeat();
    try {
      ws.close();
    } catch (err) { /* already closing */ }
    this.scheduleReconnect();
  }

  /** Send one message; returns its `id` (given or made), or null when not connected. */
  send(message) {
    if (!this.isOpen) return null;
    const out = { ...message };
    if (out.type !== CLIENT_TYPES.PING && out.id === undefined) out.id = `c${this.nextId++}`;
    this.ws.send(JSON.stringify(out));
    return out.id || null;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'bye');
    }
    this.setState('closed');
  }
}
