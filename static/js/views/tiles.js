// The video grid: our own tile, one tile per remote peer, the layout, the
// speaking rings.

import { layerForWidth } from '../sfu.js';
import { $, displayName, h, initials, show } from '../ui.js';

const SPEAKING_LEVEL_REMOTE = 0.04;
const SPEAKING_LEVEL_LOCAL = 0.08;
const SPEAKING_POLL_MS = 250;
// A tile's next source replaces the one on screen when its first frame is in,
// or this long after it came, whichever is first.
const SWAP_AT_LATEST_MS = 3000;

// A peer link's state in words (tiles and the participant list).
export const STATE_TEXT = Object.freeze({
  connecting: 'Connecting…', connected: '', reconnecting: 'Reconnecting…', failed: 'Connection failed', closed: '',
});

export function mountTiles({ call, media, localLevel = () => 0, speaker = () => '' }) {
  const grid = $('grid');
  const local = {
    root: $('local-tile'), video: $('local-video'), avatar: $('local-avatar'), name: $('local-name'),
  };
  const tiles = new Map(); // peerId -> the tile's elements
  let ringTimer = 0;

  // --- Our own tile ---------------------------------------------------------------------

  function applyLocalVideo() {
    const track = media.outgoing('video');
    local.video.srcObject = track ? new MediaStream([track]) : null;
    local.video.classList.toggle('mirrored', Boolean(track) && !media.screenTrack);
    updateLocalTile();
  }

  function updateLocalTile() {
    const videoOn = Boolean(media.screenTrack) || media.isEnabled('video');
    local.root.classList.toggle('video-off', !videoOn);
    local.root.classList.toggle('audio-off', !media.isEnabled('audio'));
    local.avatar.textContent = initials(displayName(call.me));
    show(local.root.querySelector('[data-testid="muted-indicator"]'), !media.isEnabled('audio'));
  }

  // --- Remote tiles -----------------------------------------------------------------------

  function remoteVideo(peer) {
    const video = h('video', {
      class: 'remote-video', autoplay: true, playsinline: true, dataset: { testid: 'remote-video', peerId: peer.peerId },
    });
    video.playsInline = true;
    return video;
  }

  function createTile(peer) {
    const video = remoteVideo(peer);
    const name = h('span', { class: 'tile-name', dataset: { testid: 'tile-name' } });
    const muted = h('span', { class: 'badge badge-muted', dataset: { testid: 'muted-indicator' }, hidden: true, title: 'Microphone off' }, 'Muted');
    const cameraOff = h('span', { class: 'badge badge-camera', dataset: { testid: 'camera-off-indicator' }, hidden: true, title: 'Camera off' }, 'Camera off');
    const screen = h('span', { class: 'badge badge-screen', dataset: { testid: 'screen-indicator' }, hidden: true }, 'Presenting');
    const state = h('span', { class: 'tile-state', dataset: { testid: 'connection-state' }, role: 'status' }, 'Connecting…');
    const avatar = h('div', { class: 'avatar', 'aria-hidden': 'true' });
    const unmute = h('button', { type: 'button', class: 'tile-unmute', hidden: true }, 'Click to hear this person');
    unmute.addEventListener('click', () => {
      video.muted = false;
      video.play().catch(() => {});
      show(unmute, false);
    });
    const root = h('figure', {
      class: 'tile', dataset: { testid: 'tile', peerId: peer.peerId, state: 'connecting' },
    }, video, avatar, unmute, h('figcaption', { class: 'tile-caption' }, name, muted, cameraOff, screen, state));
    return { root, video, name, muted, cameraOff, screen, state, avatar, unmute };
  }

  function updateTile(peer) {
    const tile = tiles.get(peer.peerId);
    if (!tile) return;
    const mediaState = peer.info.media || {};
    const who = displayName(peer.info.user);
    tile.name.textContent = who;
    tile.avatar.textContent = initials(who);
    tile.root.setAttribute('aria-label', `${who}${mediaState.audio === false ? ', muted' : ''}${mediaState.video === false ? ', camera off' : ''}`);
    show(tile.muted, mediaState.audio === false);
    show(tile.cameraOff, mediaState.video === false && !mediaState.screen);
    show(tile.screen, Boolean(mediaState.screen));
    tile.root.classList.toggle('video-off', mediaState.video === false && !mediaState.screen);
    tile.root.classList.toggle('audio-off', mediaState.audio === false);
    tile.root.dataset.audio = String(mediaState.audio !== false);
    tile.root.dataset.video = String(mediaState.video !== false);
  }

  function play(video, unmute) {
    const sink = speaker();
    if (sink && video.setSinkId) video.setSinkId(sink).catch(() => {});
    video.play().catch((err) => {
      if (err.name !== 'NotAllowedError') return;
      // Autoplay with sound refused: play muted and offer a click to hear.
      video.muted = true;
      video.play().catch(() => {});
      show(unmute, true);
    });
  }

  function attachRemoteStream(peer, stream) {
    const tile = tiles.get(peer.peerId);
    if (!tile || tile.video.srcObject === stream || (tile.next && tile.next.srcObject === stream)) return;
    const showing = tile.video.srcObject && tile.video.videoWidth > 0;
    if (!showing) {
      tile.video.srcObject = stream;
      play(tile.video, tile.unmute);
      return;
    }
    // Another source for a picture on screen (the handover, a new connection):
    // a fresh player takes a moment to show its first frame, so it loads out of
    // sight, muted, and takes the old one's place once it has one.
    if (tile.next) tile.next.remove();
    const next = remoteVideo(peer);
    next.dataset.testid = 'remote-video-next';
    next.classList.add('pending');
    next.muted = true;
    next.srcObject = stream;
    tile.next = next;
    tile.video.after(next);
    const swap = () => {
      clearTimeout(timer);
      if (tile.next !== next || !tiles.has(peer.peerId)) return;
      tile.next = null;
      if (resizes) resizes.unobserve(tile.video);
      const old = tile.video;
      next.dataset.testid = 'remote-video';
      next.classList.remove('pending');
      next.muted = old.muted;
      tile.video = next;
      old.srcObject = null;
      old.remove();
      if (resizes) resizes.observe(next);
    };
    const timer = setTimeout(swap, SWAP_AT_LATEST_MS);
    next.addEventListener('loadeddata', swap, { once: true });
    play(next, tile.unmute);
  }

  function showState(peer, state) {
    const tile = tiles.get(peer.peerId);
    if (!tile) return;
    tile.root.dataset.state = state;
    tile.state.textContent = STATE_TEXT[state] || '';
  }

  function layout() {
    grid.dataset.count = String(Math.min(tiles.size + 1, 12));
  }

  // Speaking rings: remote ones from the receivers' audio levels, ours from the meter.
  function rings() {
    for (const peer of call.peers.values()) {
      const tile = tiles.get(peer.peerId);
      if (!tile) continue;
      const level = peer.info.media && peer.info.media.audio === false ? 0 : peer.link.audioLevel();
      tile.root.classList.toggle('speaking', level > SPEAKING_LEVEL_REMOTE);
    }
    local.root.classList.toggle('speaking', localLevel() > SPEAKING_LEVEL_LOCAL);
  }

  // Through the SFU, each tile asks for the simulcast layer its size needs.
  function askLayer(peer) {
    const tile = tiles.get(peer.peerId);
    if (tile && peer.link && peer.link.setLayer) peer.link.setLayer(layerForWidth(tile.video.clientWidth));
  }
  const resizes = typeof ResizeObserver === 'function' ? new ResizeObserver(() => {
    for (const peer of call.peers.values()) askLayer(peer);
  }) : null;

  call.addEventListener('peer-added', ({ detail: { peer } }) => {
    const tile = createTile(peer);
    tiles.set(peer.peerId, tile);
    grid.append(tile.root);
    updateTile(peer);
    layout();
    if (resizes) resizes.observe(tile.video);
  });
  call.addEventListener('peer-link', ({ detail: { peer } }) => askLayer(peer));
  call.addEventListener('peer-changed', ({ detail: { peer } }) => updateTile(peer));
  call.addEventListener('peer-state', ({ detail: { peer, state } }) => showState(peer, state));
  call.addEventListener('peer-track', ({ detail: { peer, stream } }) => attachRemoteStream(peer, stream));
  call.addEventListener('peer-removed', ({ detail: { peer } }) => {
    const tile = tiles.get(peer.peerId);
    if (!tile) return;
    tiles.delete(peer.peerId);
    if (resizes) resizes.unobserve(tile.video);
    tile.video.srcObject = null;
    if (tile.next) tile.next.srcObject = null;
    tile.root.remove();
    layout();
  });
  call.addEventListener('joined', ({ detail }) => {
    local.root.dataset.peerId = detail.peerId;
  });
  call.addEventListener('phase', ({ detail }) => {
    if (detail.phase === 'in-call') {
      applyLocalVideo();
      local.name.textContent = `${displayName(call.me)} (you)`;
      ringTimer = setInterval(rings, SPEAKING_POLL_MS);
    } else if (detail.phase === 'ended') {
      clearInterval(ringTimer);
    }
  });
  media.addEventListener('trackchange', ({ detail }) => {
    if (detail.kind === 'video' && call.phase !== 'prejoin') applyLocalVideo();
  });
  media.addEventListener('change', () => {
    if (call.phase === 'in-call') updateLocalTile();
  });

  return {
    /** The tile element of a remote peer (the stats overlay goes on it). */
    tile: (peerId) => (tiles.get(peerId) || {}).root || null,
    /** Play every remote tile on this audio output. */
    setSpeaker(deviceId) {
      for (const { video } of tiles.values()) {
        if (video.setSinkId) video.setSinkId(deviceId).catch(() => {});
      }
    },
  };
}
