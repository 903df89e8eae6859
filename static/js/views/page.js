// The page around the call: which screen shows in which phase (the body's
// data-phase, which the stylesheet reads too), the room's name, number and
// lock badges, and the banner while the server is out of reach.

import { MEDIA_PATH_TEXT } from '../call.js';
import { formatRoomNumber } from '../protocol.js';
import { $, show } from '../ui.js';

export function mountPage({ call }) {
  const banner = $('signaling-banner');

  function renderPhase() {
    const { phase } = call;
    document.body.dataset.phase = phase;
    show($('prejoin'), phase === 'prejoin' || phase === 'joining');
    show($('call'), phase === 'in-call');
    show($('ended'), phase === 'ended');
  }

  function renderRoom() {
    const { room } = call;
    for (const el of document.querySelectorAll('[data-bind="room-name"]')) el.textContent = room.name || 'Room';
    for (const el of document.querySelectorAll('[data-bind="room-number"]')) {
      el.textContent = formatRoomNumber(room.number);
    }
    for (const badge of document.querySelectorAll('[data-bind-locked]')) show(badge, Boolean(room.locked));
  }

  function renderBanner(state) {
    const text = state === 'reconnecting' && call.phase === 'in-call'
      ? 'Connection to the server lost. Reconnecting…' : '';
    banner.textContent = text;
    show(banner, Boolean(text));
    banner.dataset.state = state;
  }

  // Whether the call is direct (end-to-end encrypted) or through the server.
  function renderMediaPath() {
    const badge = $('media-path');
    badge.dataset.path = call.mediaPath;
    badge.textContent = MEDIA_PATH_TEXT[call.mediaPath];
  }

  call.addEventListener('media-path', renderMediaPath);
  call.addEventListener('phase', renderPhase);
  call.addEventListener('room', renderRoom);
  call.addEventListener('signaling', ({ detail }) => renderBanner(detail.state));
  renderRoom();
  renderPhase();
  renderMediaPath();
}
