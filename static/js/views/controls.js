// The call's controls: microphone, camera, screen, leave, the owner's lock,
// media mode and "End for all", and copying the room's number or link.

import { formatRoomNumber } from '../protocol.js';
import { $, copyText, setPressed, show, toast } from '../ui.js';

const END_ARMED_MS = 4000;

export function mountControls({ call, media }) {
  const mic = $('btn-mic');
  const camera = $('btn-camera');
  const screen = $('btn-screen');
  const lock = $('btn-lock');
  const end = $('btn-end');
  const modeControl = $('media-mode-control');
  const mode = $('media-mode');

  function renderMedia() {
    const hasMic = Boolean(media.track('audio'));
    const hasCam = Boolean(media.track('video'));
    mic.disabled = !hasMic;
    camera.disabled = !hasCam;
    setPressed(mic, hasMic && !media.isEnabled('audio'), !hasMic ? 'No microphone' : media.isEnabled('audio') ? 'Mute' : 'Unmute');
    setPressed(camera, hasCam && !media.isEnabled('video'), !hasCam ? 'No camera' : media.isEnabled('video') ? 'Stop camera' : 'Start camera');
    screen.disabled = !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
    setPressed(screen, Boolean(media.screenTrack), media.screenTrack ? 'Stop presenting' : 'Present screen');
  }

  function renderOwner() {
    const owner = call.isOwner;
    show(lock, owner);
    setPressed(lock, Boolean(call.room.locked), call.room.locked ? 'Unlock room' : 'Lock room');
    show(end, owner);
    show(modeControl, owner);
    // What the room is, until the server says otherwise (a refused change snaps back).
    if (call.room.mode) mode.value = call.room.mode;
  }

  mic.addEventListener('click', () => media.setEnabled('audio', !media.isEnabled('audio')));
  camera.addEventListener('click', () => media.setEnabled('video', !media.isEnabled('video')));
  screen.addEventListener('click', async () => {
    if (media.screenTrack) {
      media.stopScreen();
      return;
    }
    try {
      await media.startScreen();
    } catch (err) {
      if (err.name !== 'NotAllowedError') toast('Screen sharing is not available here.', { kind: 'error' });
    }
  });
  $('btn-leave').addEventListener('click', () => call.leave());
  lock.addEventListener('click', () => call.toggleLock());
  mode.addEventListener('change', () => {
    const wanted = mode.value;
    mode.value = call.room.mode;
    call.setMode(wanted);
  });
  end.addEventListener('click', () => {
    // Two steps instead of a confirm() dialog: keyboard- and screen-reader-friendly.
    if (end.dataset.armed !== 'true') {
      end.dataset.armed = 'true';
      end.querySelector('.label').textContent = 'Click again to end for all';
      setTimeout(() => {
        end.dataset.armed = 'false';
        end.querySelector('.label').textContent = 'End for all';
      }, END_ARMED_MS);
      return;
    }
    call.endForEveryone();
  });
  $('btn-copy-number').addEventListener('click', async () => {
    const ok = await copyText(formatRoomNumber(call.room.number));
    toast(ok ? 'Room number copied.' : 'Copy failed: select the number and copy it.');
  });
  $('btn-copy-link').addEventListener('click', async () => {
    const link = new URL(`/rooms/${call.room.number}/`, window.location.href).toString();
    const ok = await copyText(link);
    toast(ok ? 'Link copied. Anyone with an account and the link can join.' : `Copy failed: the link is ${link}`);
  });

  media.addEventListener('change', () => {
    if (call.phase === 'in-call') renderMedia();
  });
  call.addEventListener('room', renderOwner);
  call.addEventListener('phase', ({ detail }) => {
    if (detail.phase !== 'in-call') return;
    renderMedia();
    mic.focus();
  });
  renderOwner();
}
