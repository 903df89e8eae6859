// The room page: pre-join (devices, levels, PIN), then the call itself.
//
// State lives in this module; the signaling socket (signaling.js), the
// per-peer connections (peer.js) and local media (media.js) report to it by
// events, and every server message comes in through the one dispatch table
// built at the bottom of this file with createDispatcher (protocol.js).

import { api, ApiError, pinStore, readJsonScript } from './api.js';
import { LevelMeter, LocalMedia, problemText } from './media.js';
import { formatStats, PeerLink, rtcConfiguration, summarizeStats } from './peer.js';
import {
  CLOSE_CODES, createDispatcher, errorText, formatRoomNumber, LEFT_REASON_TEXT,
} from './protocol.js';
import { SignalingClient, signalingUrl } from './signaling.js';
import {
  $, copyText, displayName, formatTime, h, initials, setError, show, toast,
} from './ui.js';

const SPEAKING_LEVEL_REMOTE = 0.04;
const SPEAKING_LEVEL_LOCAL = 0.08;
const CONFIG_REFRESH_MARGIN_MS = 5 * 60 * 1000; // fetch TURN credentials this long before they expire
const CONFIG_REFRESH_MIN_MS = 15 * 1000;

let sessionConfig = readJsonScript('session-config') || {};
let room = readJsonScript('room-data') || {};
const me = sessionConfig.user || {};

const media = new LocalMedia();
const peers = new Map(); // peerId -> {info, link, tile, stats, lastStats}
let rtcConfig = rtcConfiguration(sessionConfig);
let signaling = null;
let phase = 'prejoin'; // prejoin | joining | in-call | ended
let myPeerId = null;
let myMedia = { audio: false, video: false, screen: false };
let resumeToken = null;
let joinRequestId = null;
let joinWasResume = false;
let localMeter = null;
let statsOn = false;
let statsTimer = 0;
let configTimer = 0;
let unread = 0;
let joinCount = 0;
const seenChats = new Set();

// --- Pre-join ---------------------------------------------------------------------------

const preview = $('preview-video');
const joinForm = $('prejoin-form');
const joinButton = $('join-button');
const joinError = $('join-error');

function isOwner() {
  return Boolean(room.owner && me.id !== undefined && room.owner.id === me.id);
}

function describeRoom() {
  for (const el of document.querySelectorAll('[data-bind="room-name"]')) el.textContent = room.name || 'Room';
  for (const el of document.querySelectorAll('[data-bind="room-number"]')) {
    el.textContent = formatRoomNumber(room.number);
  }
  const here = $('prejoin-here');
  if (here) {
    const n = room.participants || 0;
    here.textContent = n === 0 ? 'Nobody is here yet.' : `${n} ${n === 1 ? 'person is' : 'people are'} here.`;
  }
  show($('pin-field'), Boolean(room.hasPin));
  for (const badge of document.querySelectorAll('#locked-badge, [data-bind-locked]')) show(badge, Boolean(room.locked));
  renderOwnerControls();
}

async function fillDeviceLists() {
  const devices = await media.devices();
  const lists = {
    videoinput: [$('select-video'), media.track('video')],
    audioinput: [$('select-audio'), media.track('audio')],
    audiooutput: [$('select-speaker'), null],
  };
  for (const [kind, [select, track]] of Object.entries(lists)) {
    if (!select) continue;
    const current = track ? track.getSettings().deviceId : select.value;
    select.replaceChildren();
    const found = devices.filter((d) => d.kind === kind && d.deviceId);
    found.forEach((device, i) => {
      const label = device.label || `${kind === 'videoinput' ? 'Camera' : kind === 'audioinput' ? 'Microphone' : 'Speaker'} ${i + 1}`;
      select.append(h('option', { value: device.deviceId, selected: device.deviceId === current }, label));
    });
    if (!found.length) select.append(h('option', { value: '' }, 'None found'));
    select.disabled = !found.length;
  }
  // Choosing the speaker needs setSinkId (not in every browser).
  const speakerField = $('speaker-field');
  if (speakerField && !('setSinkId' in HTMLMediaElement.prototype)) show(speakerField, false);
}

function showMediaProblems() {
  const lines = ['audio', 'video'].map((kind) => problemText(kind, media.problems[kind])).filter(Boolean);
  const warning = $('media-warning');
  if (!warning) return;
  if (!media.track('audio') && !media.track('video') && lines.length) {
    lines.push('You can still join as a listener: you will see and hear the others.');
  }
  warning.textContent = lines.join(' ');
  show(warning, lines.length > 0);
  updatePreviewOff();
}

function showPreview() {
  // Only a stream with a video track: an empty one would never load, and an
  // unloaded media element holds back the page's load event.
  const track = media.track('video');
  preview.srcObject = track ? new MediaStream([track]) : null;
}

function updatePreviewOff() {
  const off = !media.track('video') || $('start-camera-off').checked;
  show($('preview-off'), off);
}

function startLocalMeter() {
  if (localMeter) localMeter.close();
  localMeter = new LevelMeter(media.track('audio'));
}

function meterLoop() {
  const bar = $('mic-level');
  const level = localMeter && media.isEnabled('audio') ? localMeter.level() : 0;
  if (bar && phase === 'prejoin') {
    bar.style.transform = `scaleX(${Math.min(1, level * 1.5).toFixed(3)})`;
    bar.parentElement.setAttribute('aria-valuenow', String(Math.round(level * 100)));
  }
  const local = $('local-tile');
  if (local) local.classList.toggle('speaking', level > SPEAKING_LEVEL_LOCAL);
  requestAnimationFrame(meterLoop);
}

async function prepareMedia() {
  await media.start();
  showPreview();
  startLocalMeter();
  showMediaProblems();
  await fillDeviceLists();
  $('select-video').addEventListener('change', (e) => switchDevice('video', e.target.value));
  $('select-audio').addEventListener('change', (e) => switchDevice('audio', e.target.value));
  $('select-speaker').addEventListener('change', (e) => applySpeaker(e.target.value));
  $('start-camera-off').addEventListener('change', updatePreviewOff);
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    // A headset plugged in while on the pre-join page shows up in the lists.
    navigator.mediaDevices.addEventListener('devicechange', () => fillDeviceLists().catch(() => {}));
  }
  joinButton.disabled = false;
  joinButton.textContent = 'Join now';
}

async function switchDevice(kind, deviceId) {
  if (!deviceId) return;
  try {
    await media.useDevice(kind, deviceId);
    if (kind === 'audio') startLocalMeter();
  } catch (err) {
    toast(problemText(kind, 'error'), { kind: 'error' });
  }
}

function applySpeaker(deviceId) {
  for (const video of document.querySelectorAll('video.remote-video')) {
    if (video.setSinkId) video.setSinkId(deviceId).catch(() => {});
  }
}

// A new camera/mic track, a screen share starting or ending: every peer gets it.
media.addEventListener('trackchange', ({ detail }) => {
  for (const { link } of peers.values()) link.setTrack(detail.kind, media.outgoing(detail.kind));
  if (detail.kind === 'video') {
    if (phase === 'prejoin') showPreview();
    else applyLocalVideo();
  }
});
media.addEventListener('screenended', () => {
  updateControls();
  sendMedia();
});

joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (phase !== 'prejoin') return;
  const pinInput = $('pin-input');
  if (room.hasPin && pinInput && !pinInput.value.trim()) {
    setError(joinError, 'This room needs a PIN. Ask the person who invited you for it.');
    pinInput.focus();
    return;
  }
  setError(joinError, '');
  media.setEnabled('audio', !$('start-muted').checked);
  media.setEnabled('video', !$('start-camera-off').checked);
  phase = 'joining';
  joinButton.disabled = true;
  joinButton.textContent = 'Joining…';
  connectSignaling();
});

// --- Signaling ------------------------------------------------------------------------------

function connectSignaling() {
  if (!signaling) {
    signaling = new SignalingClient(signalingUrl(sessionConfig));
    signaling.addEventListener('open', () => {
      if (phase === 'joining' || phase === 'in-call') sendJoin();
    });
    signaling.addEventListener('message', ({ detail }) => dispatch(detail));
    signaling.addEventListener('state', ({ detail }) => showSignalingState(detail.state));
    signaling.addEventListener('closed', ({ detail }) => onSignalingClosed(detail));
  }
  if (signaling.isOpen) sendJoin();
  else signaling.connect();
}

function send(message) {
  return signaling ? signaling.send(message) : null;
}

function sendJoin() {
  const message = { type: 'join', room: room.number };
  const pin = ($('pin-input') && $('pin-input').value.trim()) || pinStore.get(room.number);
  if (pin) message.pin = pin;
  joinWasResume = Boolean(resumeToken && myPeerId);
  if (joinWasResume) message.resume = resumeToken;
  joinRequestId = send(message);
}

function showSignalingState(state) {
  const banner = $('signaling-banner');
  if (!banner) return;
  const text = state === 'reconnecting' && phase === 'in-call' ? 'Connection to the server lost. Reconnecting…' : '';
  banner.textContent = text;
  show(banner, Boolean(text));
  banner.dataset.state = state;
}

function onSignalingClosed({ code }) {
  if (code === CLOSE_CODES.UNAUTHENTICATED) {
    window.location.assign(`/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`);
    return;
  }
  if (phase === 'ended') return;
  if (code === CLOSE_CODES.KICKED) endCall('kicked');
  else if (code === CLOSE_CODES.ROOM_CLOSED) endCall('closed');
  else if (phase === 'in-call' || phase === 'joining') {
    endCall('lost', code === CLOSE_CODES.RATE_LIMITED ? errorText('rate-limited') : '');
  }
}

// --- The call ------------------------------------------------------------------------------

const grid = $('grid');

function enterCall() {
  if (phase === 'in-call') return;
  phase = 'in-call';
  show($('prejoin'), false);
  show($('call'), true);
  document.body.classList.add('in-call');
  if (window.matchMedia('(min-width: 900px)').matches) openSide('chat');
  applyLocalVideo();
  $('local-name').textContent = `${displayName(me)} (you)`;
  updateControls();
  scheduleConfigRefresh();
  $('btn-mic').focus();
}

function applyLocalVideo() {
  const video = $('local-video');
  if (!video) return;
  const track = media.outgoing('video');
  video.srcObject = track ? new MediaStream([track]) : null;
  video.classList.toggle('mirrored', Boolean(track) && !media.screenTrack);
  updateLocalTile();
}

function updateLocalTile() {
  const tile = $('local-tile');
  if (!tile) return;
  const videoOn = Boolean(media.screenTrack) || media.isEnabled('video');
  tile.classList.toggle('video-off', !videoOn);
  tile.classList.toggle('audio-off', !media.isEnabled('audio'));
  $('local-avatar').textContent = initials(displayName(me));
  show(tile.querySelector('[data-testid="muted-indicator"]'), !media.isEnabled('audio'));
}

function sendMedia() {
  myMedia = {
    audio: media.isEnabled('audio'),
    video: media.isEnabled('video'),
    screen: Boolean(media.screenTrack),
  };
  send({ type: 'media', ...myMedia });
  updateLocalTile();
  renderParticipants();
}

function closeAllPeers() {
  for (const peerId of [...peers.keys()]) removePeer(peerId);
}

function addPeer(info, polite) {
  const existing = peers.get(info.peerId);
  if (existing) {
    updatePeer(info);
    return existing;
  }
  const link = new PeerLink({ peerId: info.peerId, polite, config: rtcConfig, media, send });
  const entry = { info, link, tile: createTile(info), stats: null };
  peers.set(info.peerId, entry);
  link.addEventListener('track', ({ detail }) => attachRemoteStream(entry, detail.stream));
  link.addEventListener('state', ({ detail }) => showPeerState(entry, detail.state));
  grid.append(entry.tile.root);
  updateTile(entry);
  layoutGrid();
  renderParticipants();
  return entry;
}

function updatePeer(info) {
  const entry = peers.get(info.peerId);
  if (!entry) return;
  entry.info = { ...entry.info, ...info };
  updateTile(entry);
  renderParticipants();
}

function removePeer(peerId) {
  const entry = peers.get(peerId);
  if (!entry) return;
  peers.delete(peerId);
  entry.link.close();
  entry.tile.video.srcObject = null;
  entry.tile.root.remove();
  layoutGrid();
  renderParticipants();
}

function createTile(info) {
  const video = h('video', {
    class: 'remote-video', autoplay: true, playsinline: true, dataset: { testid: 'remote-video', peerId: info.peerId },
  });
  video.playsInline = true;
  const name = h('span', { class: 'tile-name', dataset: { testid: 'tile-name' } });
  const muted = h('span', { class: 'badge badge-muted', dataset: { testid: 'muted-indicator' }, hidden: true, title: 'Microphone off' }, 'Muted');
  const cameraOff = h('span', { class: 'badge badge-camera', dataset: { testid: 'camera-off-indicator' }, hidden: true, title: 'Camera off' }, 'Camera off');
  const screen = h('span', { class: 'badge badge-screen', dataset: { testid: 'screen-indicator' }, hidden: true }, 'Presenting');
  const state = h('span', { class: 'tile-state', dataset: { testid: 'connection-state' }, role: 'status' }, 'Connecting…');
  const avatar = h('div', { class: 'avatar', 'aria-hidden': 'true' });
  const stats = h('pre', { class: 'tile-stats', dataset: { testid: 'stats' }, hidden: !statsOn });
  const unmute = h('button', { type: 'button', class: 'tile-unmute', hidden: true }, 'Click to hear this person');
  unmute.addEventListener('click', () => {
    video.muted = false;
    video.play().catch(() => {});
    show(unmute, false);
  });
  const root = h('figure', {
    class: 'tile', dataset: { testid: 'tile', peerId: info.peerId, state: 'connecting' },
  }, video, avatar, stats, unmute, h('figcaption', { class: 'tile-caption' }, name, muted, cameraOff, screen, state));
  return { root, video, name, muted, cameraOff, screen, state, avatar, stats, unmute };
}

function updateTile(entry) {
  const { info, tile } = entry;
  const mediaState = info.media || {};
  const who = displayName(info.user);
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

function attachRemoteStream(entry, stream) {
  const { video, unmute } = entry.tile;
  if (video.srcObject !== stream) video.srcObject = stream;
  const speaker = $('select-speaker');
  if (speaker && speaker.value && video.setSinkId) video.setSinkId(speaker.value).catch(() => {});
  video.play().catch((err) => {
    if (err.name !== 'NotAllowedError') return;
    // Autoplay with sound refused: play muted and offer a click to hear.
    video.muted = true;
    video.play().catch(() => {});
    show(unmute, true);
  });
}

const STATE_TEXT = {
  connecting: 'Connecting…', connected: '', reconnecting: 'Reconnecting…', failed: 'Connection failed', closed: '',
};

function showPeerState(entry, state) {
  entry.tile.root.dataset.state = state;
  entry.tile.state.textContent = STATE_TEXT[state] || '';
  renderParticipants();
}

function layoutGrid() {
  const count = peers.size + 1;
  grid.dataset.count = String(Math.min(count, 12));
  const n = $('people-count');
  if (n) n.textContent = String(count);
}

// Speaking ring for remote peers, from the receivers' audio levels.
setInterval(() => {
  for (const { link, tile, info } of peers.values()) {
    const level = info.media && info.media.audio === false ? 0 : link.audioLevel();
    tile.root.classList.toggle('speaking', level > SPEAKING_LEVEL_REMOTE);
  }
}, 250);

// --- Controls ---------------------------------------------------------------------------------

function setPressed(button, pressed, label) {
  button.setAttribute('aria-pressed', String(pressed));
  const text = button.querySelector('.label');
  if (text) text.textContent = label;
  button.setAttribute('aria-label', label);
  button.title = label;
}

function updateControls() {
  const mic = $('btn-mic');
  const cam = $('btn-camera');
  const screen = $('btn-screen');
  const hasMic = Boolean(media.track('audio'));
  const hasCam = Boolean(media.track('video'));
  mic.disabled = !hasMic;
  cam.disabled = !hasCam;
  setPressed(mic, hasMic && !media.isEnabled('audio'), !hasMic ? 'No microphone' : media.isEnabled('audio') ? 'Mute' : 'Unmute');
  setPressed(cam, hasCam && !media.isEnabled('video'), !hasCam ? 'No camera' : media.isEnabled('video') ? 'Stop camera' : 'Start camera');
  const canShare = Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  screen.disabled = !canShare;
  setPressed(screen, Boolean(media.screenTrack), media.screenTrack ? 'Stop presenting' : 'Present screen');
  setPressed($('btn-stats'), statsOn, statsOn ? 'Hide stats' : 'Show stats');
}

$('btn-mic').addEventListener('click', () => {
  media.setEnabled('audio', !media.isEnabled('audio'));
  updateControls();
  sendMedia();
});

$('btn-camera').addEventListener('click', () => {
  media.setEnabled('video', !media.isEnabled('video'));
  updateControls();
  sendMedia();
});

$('btn-screen').addEventListener('click', async () => {
  if (media.screenTrack) {
    media.stopScreen();
    return;
  }
  try {
    await media.startScreen();
  } catch (err) {
    if (err.name !== 'NotAllowedError') toast('Screen sharing is not available here.', { kind: 'error' });
    return;
  }
  updateControls();
  sendMedia();
});

$('btn-stats').addEventListener('click', () => {
  statsOn = !statsOn;
  for (const { tile } of peers.values()) show(tile.stats, statsOn);
  clearInterval(statsTimer);
  if (statsOn) {
    refreshStats();
    statsTimer = setInterval(refreshStats, 1000);
  }
  updateControls();
});

async function refreshStats() {
  for (const entry of peers.values()) {
    try {
      const summary = await summarizeStats(entry.link.pc, entry.stats);
      entry.stats = summary;
      entry.tile.stats.textContent = formatStats(summary);
      entry.tile.root.dataset.candidateType = summary.localCandidateType || '';
    } catch (err) {
      // The connection closed between two refreshes.
    }
  }
}

$('btn-leave').addEventListener('click', () => {
  send({ type: 'leave' });
  endCall('left');
});

$('btn-chat').addEventListener('click', () => toggleSide('chat'));
$('btn-people').addEventListener('click', () => toggleSide('people'));
$('btn-close-side').addEventListener('click', () => closeSide());
for (const tab of document.querySelectorAll('[role="tab"][data-panel]')) {
  tab.addEventListener('click', () => openSide(tab.dataset.panel));
}
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && !$('side').hidden && !window.matchMedia('(min-width: 900px)').matches) closeSide();
});

function openSide(panel) {
  const side = $('side');
  show(side, true);
  side.dataset.panel = panel;
  for (const tab of side.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.panel === panel;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  show($('panel-chat'), panel === 'chat');
  show($('panel-people'), panel === 'people');
  $('btn-chat').setAttribute('aria-expanded', String(panel === 'chat'));
  $('btn-people').setAttribute('aria-expanded', String(panel === 'people'));
  if (panel === 'chat') {
    unread = 0;
    renderUnread();
  }
}

function closeSide() {
  show($('side'), false);
  $('btn-chat').setAttribute('aria-expanded', 'false');
  $('btn-people').setAttribute('aria-expanded', 'false');
}

function toggleSide(panel) {
  const side = $('side');
  if (!side.hidden && side.dataset.panel === panel) closeSide();
  else openSide(panel);
}

function renderUnread() {
  const badge = $('chat-unread');
  badge.textContent = unread ? String(unread) : '';
  show(badge, unread > 0);
}

$('btn-copy-number').addEventListener('click', async () => {
  const ok = await copyText(formatRoomNumber(room.number));
  toast(ok ? 'Room number copied.' : 'Copy failed: select the number and copy it.');
});

$('btn-copy-link').addEventListener('click', async () => {
  const link = new URL(`/rooms/${room.number}/`, window.location.href).toString();
  const ok = await copyText(link);
  toast(ok ? 'Link copied. Anyone with an account and the link can join.' : `Copy failed: the link is ${link}`);
});

// --- Owner controls ------------------------------------------------------------------------------

function renderOwnerControls() {
  const owner = isOwner();
  const lock = $('btn-lock');
  if (lock) {
    show(lock, owner);
    setPressed(lock, Boolean(room.locked), room.locked ? 'Unlock room' : 'Lock room');
  }
  show($('btn-end'), owner);
}

$('btn-lock').addEventListener('click', () => send({ type: room.locked ? 'unlock' : 'lock' }));
$('btn-end').addEventListener('click', () => {
  const button = $('btn-end');
  // Two steps instead of a confirm() dialog: keyboard- and screen-reader-friendly.
  if (button.dataset.armed !== 'true') {
    button.dataset.armed = 'true';
    button.querySelector('.label').textContent = 'Click again to end for all';
    setTimeout(() => {
      button.dataset.armed = 'false';
      button.querySelector('.label').textContent = 'End for all';
    }, 4000);
    return;
  }
  send({ type: 'close' });
});

function renderParticipants() {
  const list = $('participants');
  if (!list) return;
  const owner = isOwner();
  const rows = [
    participantRow({ peerId: myPeerId, user: me, media: myMedia }, { self: true }),
  ];
  for (const entry of peers.values()) {
    rows.push(participantRow(entry.info, { state: entry.link.state, canKick: owner }));
  }
  list.replaceChildren(...rows);
}

function participantRow(info, { self = false, state = '', canKick = false }) {
  const who = displayName(info.user);
  const m = info.media || {};
  const isRoomOwner = room.owner && info.user && room.owner.id === info.user.id;
  const bits = [];
  if (isRoomOwner) bits.push('owner');
  if (m.audio === false) bits.push('muted');
  if (m.video === false) bits.push('camera off');
  if (m.screen) bits.push('presenting');
  if (state && state !== 'connected') bits.push(STATE_TEXT[state] || state);
  const kick = canKick && !self
    ? h('button', {
      type: 'button', class: 'small danger', dataset: { testid: 'kick-button', peerId: info.peerId },
      'aria-label': `Remove ${who} from the room`, onclick: () => send({ type: 'kick', peer: info.peerId }),
    }, 'Remove')
    : null;
  return h('li', { class: 'participant', dataset: { peerId: info.peerId || '', testid: 'participant' } },
    h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initials(who)),
    h('span', { class: 'participant-name' }, self ? `${who} (you)` : who),
    h('span', { class: 'participant-bits' }, bits.join(' · ')),
    kick);
}

// --- Chat -------------------------------------------------------------------------------------------

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('chat-input');
  const text = input.value.trim();
  if (!text) return;
  if (!send({ type: 'chat', text })) {
    toast('Not connected: the message was not sent.', { kind: 'error' });
    return;
  }
  input.value = '';
});

$('chat-input').addEventListener('keydown', (event) => {
  // Enter sends, Shift+Enter makes a new line.
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    $('chat-form').requestSubmit();
  }
});

function appendChat(line) {
  const key = `${line.ts}|${line.from}|${line.text}`;
  if (seenChats.has(key)) return; // history replayed after a reconnect
  seenChats.add(key);
  const log = $('chat-log');
  const mine = line.from === myPeerId || (line.user && line.user.id === me.id && line.from === myPeerId);
  const item = h('li', { class: `chat-line${mine ? ' mine' : ''}`, dataset: { testid: 'chat-message', from: line.from || '' } },
    h('span', { class: 'chat-meta' },
      h('strong', { class: 'chat-name' }, mine ? 'You' : displayName(line.user)), ' ',
      h('time', { datetime: line.ts || '' }, formatTime(line.ts))),
    h('span', { class: 'chat-text' }, line.text));
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  if (atBottom || mine) log.scrollTop = log.scrollHeight;
  const side = $('side');
  if (!mine && (side.hidden || side.dataset.panel !== 'chat')) {
    unread += 1;
    renderUnread();
  }
}

function systemLine(text) {
  const log = $('chat-log');
  log.append(h('li', { class: 'chat-line system', dataset: { testid: 'chat-system' } }, text));
  log.scrollTop = log.scrollHeight;
}

// --- Ending -----------------------------------------------------------------------------------------

const END_TEXT = {
  left: ['You left the room', 'You can rejoin while the room is open.'],
  kicked: ['You were removed', 'The room owner removed you from this room.'],
  closed: ['The room was closed', 'The meeting has ended. Thanks for joining.'],
  lost: ['Disconnected', 'The connection to the server was lost and could not be restored.'],
};

function endCall(kind, detail = '') {
  if (phase === 'ended') return;
  phase = 'ended';
  closeAllPeers();
  if (signaling) signaling.close();
  media.stop();
  if (localMeter) localMeter.close();
  clearInterval(statsTimer);
  clearTimeout(configTimer);
  const [title, text] = END_TEXT[kind] || END_TEXT.lost;
  $('ended-title').textContent = title;
  $('ended-message').textContent = detail || text;
  $('ended').dataset.reason = kind;
  show($('rejoin-button'), kind === 'left' || kind === 'lost');
  show($('prejoin'), false);
  show($('call'), false);
  show($('ended'), true);
  document.body.classList.remove('in-call');
  $('ended-title').focus();
}

$('rejoin-button').addEventListener('click', () => window.location.reload());

// Closing the tab says goodbye, so the others' tile goes at once rather than
// when the server notices the socket is gone.
window.addEventListener('pagehide', () => {
  if (phase === 'in-call' && signaling) signaling.send({ type: 'leave' });
});

// --- TURN credentials ----------------------------------------------------------------------------------

function scheduleConfigRefresh() {
  clearTimeout(configTimer);
  const expires = Date.parse(sessionConfig.expiresAt || '');
  if (Number.isNaN(expires)) return;
  const left = expires - Date.now();
  const delay = Math.max(CONFIG_REFRESH_MIN_MS, Math.min(left - CONFIG_REFRESH_MARGIN_MS, left / 2));
  configTimer = setTimeout(refreshConfig, Math.min(delay, 2 ** 31 - 1));
}

async function refreshConfig() {
  try {
    sessionConfig = await api.config();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      toast('Your session has ended. Sign in again to keep calling after a network change.', { kind: 'error', ms: 10000 });
      return;
    }
    configTimer = setTimeout(refreshConfig, 30000);
    return;
  }
  rtcConfig = rtcConfiguration(sessionConfig);
  // New TURN credentials for every connection: an ICE restart later in a
  // long call must still be able to allocate a relay.
  for (const { link } of peers.values()) link.setIceServers(rtcConfig);
  scheduleConfigRefresh();
}

// --- Server messages: the one dispatch table ----------------------------------------------------------------

function onJoined(message) {
  joinRequestId = null;
  joinCount += 1;
  const resumed = Boolean(myPeerId) && message.peerId === myPeerId;
  if (!resumed) closeAllPeers();
  myPeerId = message.peerId;
  resumeToken = message.resumeToken || null;
  if (message.room) room = message.room;
  if (Array.isArray(message.iceServers)) {
    rtcConfig = { ...rtcConfig, iceServers: message.iceServers };
    for (const { link } of peers.values()) link.setIceServers(rtcConfig);
  }
  pinStore.set(room.number, ($('pin-input') && $('pin-input').value.trim()) || pinStore.get(room.number));
  const first = phase !== 'in-call';
  enterCall();
  const present = new Set((message.peers || []).map((p) => p.peerId));
  if (resumed) {
    for (const peerId of [...peers.keys()]) if (!present.has(peerId)) removePeer(peerId);
    for (const info of message.peers || []) {
      const known = peers.get(info.peerId);
      // Someone who came while we were away is newer: they offer, we are polite.
      if (known) {
        updatePeer(info);
        if (!known.link.polite && known.link.state !== 'connected') known.link.restartIce();
      } else {
        addPeer(info, true);
      }
    }
  } else {
    // We are the newcomer: impolite, and we make the offers.
    for (const info of message.peers || []) addPeer(info, false);
  }
  for (const line of message.history || message.chat || []) appendChat(line);
  sendMedia();
  describeRoom();
  layoutGrid();
  if (first) systemLine(message.created ? 'You created this room.' : 'You joined the room.');
}

function onJoinError(message) {
  joinRequestId = null;
  if (joinWasResume) {
    // The server could not resume us (not supported yet, or the grace
    // period is over): join afresh with a new peer id.
    joinWasResume = false;
    resumeToken = null;
    myPeerId = null;
    closeAllPeers();
    sendJoin();
    return;
  }
  if (phase === 'joining') {
    phase = 'prejoin';
    joinButton.disabled = false;
    joinButton.textContent = 'Join now';
    setError(joinError, errorText(message.code, message.message));
    joinError.dataset.code = message.code || '';
    if (message.code === 'bad-pin') $('pin-input').select();
    return;
  }
  endCall('lost', errorText(message.code, message.message));
}

function linkFor(message) {
  const entry = peers.get(message.from);
  return entry ? entry.link : null;
}

const dispatch = createDispatcher({
  joined: onJoined,
  'peer-joined': ({ peer }) => {
    if (!peer || peer.peerId === myPeerId || phase !== 'in-call') return;
    const known = peers.has(peer.peerId);
    // The peer already here is polite; the newcomer will send the offer.
    addPeer(peer, true);
    if (!known) systemLine(`${displayName(peer.user)} joined.`);
  },
  'peer-left': ({ peerId, reason }) => {
    const entry = peers.get(peerId);
    if (!entry) return;
    removePeer(peerId);
    systemLine(`${displayName(entry.info.user)} ${LEFT_REASON_TEXT[reason] || 'left'}.`);
  },
  'peer-updated': ({ peer }) => {
    if (peer && peer.peerId !== myPeerId) updatePeer(peer);
  },
  offer: (message) => {
    if (phase !== 'in-call') return;
    // An offer can overtake the peer-joined that announces its sender.
    const link = linkFor(message) || addPeer({ peerId: message.from, user: null, media: {} }, true).link;
    link.handleDescription('offer', message.sdp);
  },
  answer: (message) => {
    const link = linkFor(message);
    if (link) link.handleDescription('answer', message.sdp);
  },
  candidate: (message) => {
    const link = linkFor(message);
    if (link) link.handleCandidate(message.candidate);
  },
  chat: appendChat,
  'room-updated': ({ room: updated }) => {
    const wasLocked = room.locked;
    room = { ...room, ...updated };
    describeRoom();
    if (phase === 'in-call' && wasLocked !== room.locked) {
      systemLine(room.locked ? 'The room is locked: nobody else can join.' : 'The room is open again.');
    }
  },
  'room-closed': ({ reason }) => endCall('closed', reason === 'owner' ? 'The owner ended the meeting for everyone.' : ''),
  kicked: () => endCall('kicked'),
  error: (message) => {
    if (message.re && message.re === joinRequestId) {
      onJoinError(message);
      return;
    }
    toast(errorText(message.code, message.message), { kind: 'error' });
  },
  pong: () => {},
}, { onUnknown: (message) => console.debug('signaling: ignoring', message && message.type) });

// --- Hooks for the browser tests (and curious developers) --------------------------------------------------

window.videoRoom = {
  get phase() { return phase; },
  get peerId() { return myPeerId; },
  get joins() { return joinCount; },
  get signaling() { return signaling ? signaling.state : 'idle'; },
  get config() { return rtcConfig; },
  peers: () => [...peers.values()].map(({ info, link }) => ({
    peerId: info.peerId, name: displayName(info.user), state: link.state, polite: link.polite,
  })),
  stats: async (peerId) => {
    const entry = peers.get(peerId);
    return entry ? summarizeStats(entry.link.pc) : null;
  },
  dropSignaling: () => signaling && signaling.drop(),
  refreshConfig,
  // What each connection would use for its next ICE gathering (TURN usernames carry the expiry).
  iceUsernames: () => [...peers.values()].map(({ link }) => link.pc.getConfiguration().iceServers
    .map((server) => server.username || '').filter(Boolean)),
  restartIce: () => { for (const { link } of peers.values()) link.pc.restartIce(); },
};

// --- Start ----------------------------------------------------------------------------------------------------

describeRoom();
const storedPin = pinStore.get(room.number);
if (storedPin && $('pin-input')) $('pin-input').value = storedPin;
if (room.closed) {
  // The link of a meeting that is over: say so instead of opening the camera.
  endCall('closed');
} else {
  requestAnimationFrame(meterLoop);
  prepareMedia().catch((err) => {
    console.warn('media setup failed', err);
    joinButton.disabled = false;
    joinButton.textContent = 'Join now';
  });
}
