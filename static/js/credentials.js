// TURN credentials: fetch fresh ones before they expire, so an ICE restart
// late in a long call can still allocate a relay (docs/protocol.md, session config).

// Fetch half-way through the credentials' life, or this long before they
// expire if that comes sooner, but never sooner than REFRESH_MIN_MS from now.
const REFRESH_MARGIN_MS = 5 * 60 * 1000;
const REFRESH_MIN_MS = 15 * 1000;
const RETRY_MS = 30 * 1000; // after a failed fetch
const TIMER_MAX_MS = 2 ** 31 - 1; // setTimeout's limit

const realClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer),
};

/** Milliseconds to wait before refreshing a config that expires at `expiresAt`; null if it never does. */
export function refreshDelay(expiresAt, now) {
  const expires = Date.parse(expiresAt || '');
  if (Number.isNaN(expires)) return null;
  const left = expires - now;
  return Math.min(TIMER_MAX_MS, Math.max(REFRESH_MIN_MS, Math.min(left - REFRESH_MARGIN_MS, left / 2)));
}

/**
 * Keeps the session config fresh while a call lasts.
 *
 * `fetchConfig()` resolves to a new session config (GET /api/config) or
 * rejects with an error whose `status` is 401 when the session is gone.
 * Events (CustomEvent detail): `config` ({config}), `signed-out` ({}).
 */
export class CredentialRefresher extends EventTarget {
  constructor({ config, fetchConfig, clock = realClock }) {
    super();
    this.config = config || {};
    this.fetchConfig = fetchConfig;
    this.clock = clock;
    this.timer = null;
    this.running = false;
  }

  start() {
    this.running = true;
    this.schedule();
  }

  stop() {
    this.running = false;
    this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  schedule(delay = refreshDelay(this.config.expiresAt, this.clock.now())) {
    this.clock.clearTimeout(this.timer);
    this.timer = null;
    if (!this.running || delay === null) return;
    this.timer = this.clock.setTimeout(() => this.refresh(), delay);
  }

  async refresh() {
    let config;
    try {
      config = await this.fetchConfig();
    } catch (err) {
      if (!this.running) return;
      if (err && err.status === 401) {
        this.stop();
        this.dispatchEvent(new CustomEvent('signed-out', { detail: {} }));
        return;
      }
      this.schedule(RETRY_MS);
      return;
    }
    if (!this.running) return;
    this.config = config;
    this.dispatchEvent(new CustomEvent('config', { detail: { config } }));
    this.schedule();
  }
}
