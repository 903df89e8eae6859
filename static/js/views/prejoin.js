// The pre-join screen: camera preview, device lists, the microphone level,
// the PIN, and "Join now".

import { ERROR_CODES } from '../wire.js';
import { LevelMeter, problemText } from '../media.js';
import { $, h, setError, show, toast } from '../ui.js';

const DEVICE_WORD = { videoinput: 'Camera', audioinput: 'Microphone', audiooutput: 'Speaker' };

export function mountPrejoin({ call, media, pins, onSpeakerChange = () => {} }) {
  const preview = $('preview-video');
  const form = $('prejoin-form');
  const button = $('join-button');
  const error = $('join-error');
  const pinInput = $('pin-input');
  const startMuted = $('start-muted');
  const startCameraOff = $('start-camera-off');
  const selects = { video: $('select-video'), audio: $('select-audio'), speaker: $('select-speaker') };
  const bar = $('mic-level');
  let meter = null;

  function describeRoom() {
    const n = call.room.participants || 0;
    $('prejoin-here').textContent = n === 0
      ? 'Nobody is here yet.' : `${n} ${n === 1 ? 'person is' : 'people are'} here.`;
    show($('pin-field'), Boolean(call.room.hasPin));
  }

  function ready() {
    button.disabled = false;
    button.textContent = 'Join now';
  }

  async function fillDeviceLists() {
    const devices = await media.devices();
    const lists = {
      videoinput: [selects.video, media.track('video')],
      audioinput: [selects.audio, media.track('audio')],
      audiooutput: [selects.speaker, null],
    };
    for (const [kind, [select, track]] of Object.entries(lists)) {
      const current = track ? track.getSettings().deviceId : select.value;
      select.replaceChildren();
      const found = devices.filter((d) => d.kind === kind && d.deviceId);
      found.forEach((device, i) => {
        const label = device.label || `${DEVICE_WORD[kind]} ${i + 1}`;
        select.append(h('option', { value: device.deviceId, selected: device.deviceId === current }, label));
      });
      if (!found.length) select.append(h('option', { value: '' }, 'None found'));
      select.disabled = !found.length;
    }
    // Choosing the speaker needs setSinkId (not in every browser).
    if (!('setSinkId' in HTMLMediaElement.prototype)) show($('speaker-field'), false);
  }

  function showMediaProblems() {
    const lines = ['audio', 'video'].map((kind) => problemText(kind, media.problems[kind])).filter(Boolean);
    const warning = $('media-warning');
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
    show($('preview-off'), !media.track('video') || startCameraOff.checked);
  }

  /** The microphone's loudness now (0..1), 0 while it is muted. */
  function level() {
    return meter && media.isEnabled('audio') ? meter.level() : 0;
  }

  function drawLevel() {
    if (call.phase === 'ended') return;
    if (call.phase === 'prejoin') {
      const value = level();
      bar.style.transform = `scaleX(${Math.min(1, value * 1.5).toFixed(3)})`;
      bar.parentElement.setAttribute('aria-valuenow', String(Math.round(value * 100)));
    }
    requestAnimationFrame(drawLevel);
  }

  async function switchDevice(kind, deviceId) {
    if (!deviceId) return;
    try {
      await media.useDevice(kind, deviceId);
    } catch (err) {
      toast(problemText(kind, 'error'), { kind: 'error' });
    }
  }

  async function prepareMedia() {
    await media.start();
    showPreview();
    showMediaProblems();
    await fillDeviceLists();
    selects.video.addEventListener('change', (e) => switchDevice('video', e.target.value));
    selects.audio.addEventListener('change', (e) => switchDevice('audio', e.target.value));
    selects.speaker.addEventListener('change', (e) => onSpeakerChange(e.target.value));
    startCameraOff.addEventListener('change', updatePreviewOff);
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      // A headset plugged in while on the pre-join page shows up in the lists.
      navigator.mediaDevices.addEventListener('devicechange', () => fillDeviceLists().catch(() => {}));
    }
    ready();
  }

  media.addEventListener('trackchange', ({ detail }) => {
    if (detail.kind === 'audio') {
      // The meter follows the microphone (a device switch replaces the track).
      if (meter) meter.close();
      meter = new LevelMeter(detail.track);
    }
    if (detail.kind === 'video' && call.phase === 'prejoin') showPreview();
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (call.phase !== 'prejoin') return;
    const pin = pinInput.value.trim();
    if (call.room.hasPin && !pin) {
      setError(error, 'This room needs a PIN. Ask the person who invited you for it.');
      pinInput.focus();
      return;
    }
    setError(error, '');
    media.setEnabled('audio', !startMuted.checked);
    media.setEnabled('video', !startCameraOff.checked);
    button.disabled = true;
    button.textContent = 'Joining…';
    call.join({ pin });
  });

  call.addEventListener('join-error', ({ detail }) => {
    ready();
    setError(error, detail.text);
    error.dataset.code = detail.code;
    if (detail.code === ERROR_CODES.BAD_PIN) pinInput.select();
  });
  call.addEventListener('room', describeRoom);
  call.addEventListener('phase', ({ detail }) => {
    if (detail.phase === 'ended' && meter) meter.close();
  });

  const storedPin = pins.get(call.room.number);
  if (storedPin) pinInput.value = storedPin;
  describeRoom();

  return {
    level,
    speaker: () => selects.speaker.value,
    /** Open the camera and microphone, then let the person join. */
    async start() {
      requestAnimationFrame(drawLevel);
      try {
        await prepareMedia();
      } catch (err) {
        console.warn('media setup failed', err);
        ready();
      }
    },
  };
}
