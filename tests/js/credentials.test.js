// TURN credential refresh (static/js/credentials.js) with a fake clock.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import './fakes.js';
import { CredentialRefresher, refreshDelay } from '../../static/js/credentials.js';

const NOW = Date.parse('2026-01-05T09:00:00Z');

function fakeClock() {
  const clock = {
    now: () => NOW,
    timers: [],
    setTimeout(fn, ms) {
      const timer = { fn, ms, cleared: false };
      clock.timers.push(timer);
      return timer;
    },
    clearTimeout(timer) {
      if (timer) timer.cleared = true;
    },
    pending: () => clock.timers.filter((t) => !t.cleared).map((t) => t.ms),
    async fire() {
      const timer = clock.timers.find((t) => !t.cleared);
      timer.cleared = true;
      await timer.fn();
    },
  };
  return clock;
}

test('refresh half-way, or five minutes before expiry when sooner, never within 15 s', () => {
  assert.equal(refreshDelay('2026-01-05T10:00:00Z', NOW), 30 * 60 * 1000);
  assert.equal(refreshDelay('2026-01-05T09:08:00Z', NOW), 3 * 60 * 1000);
  assert.equal(refreshDelay('2026-01-05T09:01:00Z', NOW), 15 * 1000);
  assert.equal(refreshDelay('2026-01-05T08:00:00Z', NOW), 15 * 1000);
  assert.equal(refreshDelay('', NOW), null);
  assert.equal(refreshDelay(undefined, NOW), null);
});

test('a fresh config is passed on and the next refresh scheduled from its expiry', async () => {
  const clock = fakeClock();
  const fresh = { iceServers: [{ urls: ['turn:x'], username: '1767610800:2' }], expiresAt: '2026-01-05T11:00:00Z' };
  const refresher = new CredentialRefresher({
    config: { expiresAt: '2026-01-05T10:00:00Z' }, fetchConfig: async () => fresh, clock,
  });
  const configs = [];
  refresher.addEventListener('config', ({ detail }) => configs.push(detail.config));
  refresher.start();
  assert.deepEqual(clock.pending(), [30 * 60 * 1000]);
  await clock.fire();
  assert.deepEqual(configs, [fresh]);
  assert.deepEqual(clock.pending(), [60 * 60 * 1000]);
  refresher.stop();
  assert.deepEqual(clock.pending(), []);
});

test('a failed fetch is tried again in 30 s; a 401 stops and says the session is gone', async () => {
  const clock = fakeClock();
  const failures = [Object.assign(new Error('offline'), { status: 0 }), Object.assign(new Error('gone'), { status: 401 })];
  const refresher = new CredentialRefresher({
    config: { expiresAt: '2026-01-05T10:00:00Z' },
    fetchConfig: async () => {
      throw failures.shift();
    },
    clock,
  });
  const signedOut = [];
  refresher.addEventListener('signed-out', () => signedOut.push(true));
  refresher.start();
  await clock.fire();
  assert.deepEqual(clock.pending(), [30 * 1000]);
  await clock.fire();
  assert.deepEqual(clock.pending(), []);
  assert.deepEqual(signedOut, [true]);
});

test('a config without expiry is never refreshed', () => {
  const clock = fakeClock();
  new CredentialRefresher({ config: {}, fetchConfig: async () => ({}), clock }).start();
  assert.deepEqual(clock.pending(), []);
});
