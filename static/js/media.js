// Local media: the camera and microphone, device choice, levels, screen share.

const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };

/** Why getUserMedia failed, in one word the UI can explain. */
function reasonOf(err) {
  if (!err) return null;
  switch (err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'missing';
    case 'NotReadableError':
    case 'AbortError':
      return 'busy';
    default:
      return 'error';
  }
}

/**
 * The user's own stream. `stream` always exists; it holds whatever tracks
 * could be had (none at all makes a listener). `problems` says, per kind,
 * why a track is missing: denied | missing | busy | error.
 *
 * Events: `trackchange` ({kind, track}) whenever the track of a kind is
 * replaced; `change` ({audio, video, screen}: what is sent now) after a track
 * is replaced, enabled or disabled, and when a screen share starts or stops.
 */
export class LocalMedia extends EventTarget {
  constructor() {
    super();
    this.stream = new MediaStream();
    this.problems = { audio: null, video: null };
    this.deviceIds = { audio: '', video: '' };
    this.screenTrack = null;
  }

  track(kind) {
    return (kind === 'audio' ? this.stream.getAudioTracks() : this.stream.getVideoTracks())[0] || null;
  }

  /** What the others receive now: the microphone and camera on, a screen shared. */
  state() {
    return { audio: this.isEnabled('audio'), video: this.isEnabled('video'), screen: Boolean(this.screenTrack) };
  }

  changed() {
    this.dispatchEvent(new CustomEvent('change', { detail: this.state() }));
  }

  /** The track peers should receive for a kind: the screen wins over the camera. */
  outgoing(kind) {
    if (kind === 'video' && this.screenTrack) return this.screenTrack;
    return this.track(kind);
  }

  constraints(kind) {
    const id = this.deviceIds[kind];
    if (kind === 'audio') {
      return id ? { deviceId: { exact: id }, echoCancellation: true, noiseSuppression: true } : true;
    }
    return id ? { ...VIDEO_CONSTRAINTS, deviceId: { exact: id } } : VIDEO_CONSTRAINTS;
  }

  /** Open camera and microphone, falling back to whichever of them works. */
  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.problems = { audio: 'unsupported', video: 'unsupported' };
      return this.stream;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: this.constraints('audio'),
        video: this.constraints('video'),
      });
      for (const track of stream.getTracks()) this.setTrack(track.kind, track);
      this.problems = { audio: null, video: null };
      return this.stream;
    } catch (err) {
      // One of the two may still work: a laptop without camera, a denied mic.
    }
    for (const kind of ['audio', 'video']) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ [kind]: this.constraints(kind) });
        this.setTrack(kind, stream.getTracks()[0]);
        this.problems[kind] = null;
      } catch (err) {
        this.problems[kind] = reasonOf(err);
      }
    }
    return this.stream;
  }

  setTrack(kind, track) {
    const old = this.track(kind);
    if (old === track) return;
    if (old) {
      this.stream.removeTrack(old);
      old.stop();
    }
    if (track) {
      if (old) track.enabled = old.enabled;
      this.stream.addTrack(track);
    }
    this.dispatchEvent(new CustomEvent('trackchange', { detail: { kind, track } }));
    this.changed();
  }

  /** Switch to another camera or microphone; the new track replaces the old everywhere. */
  async useDevice(kind, deviceId) {
    this.deviceIds[kind] = deviceId;
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: this.constraints(kind) });
    this.setTrack(kind, stream.getTracks()[0]);
    this.problems[kind] = null;
  }

  setEnabled(kind, enabled) {
    const track = this.track(kind);
    if (!track || track.enabled === enabled) return;
    track.enabled = enabled;
    this.changed();
  }

  isEnabled(kind) {
    const track = this.track(kind);
    return Boolean(track && track.enabled && track.readyState === 'live');
  }

  async devices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
    return navigator.mediaDevices.enumerateDevices();
  }

  /** Start sharing the screen; resolves to the screen track, or throws. */
  async startScreen() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = stream.getVideoTracks()[0];
    if ('contentHint' in track) track.contentHint = 'detail';
    this.screenTrack = track;
    track.addEventListener('ended', () => this.stopScreen());
    this.dispatchEvent(new CustomEvent('trackchange', { detail: { kind: 'video', track } }));
    this.changed();
    return track;
  }

  stopScreen() {
    if (!this.screenTrack) return;
    const track = this.screenTrack;
    this.screenTrack = null;
    track.stop();
    this.dispatchEvent(new CustomEvent('trackchange', { detail: { kind: 'video', track: this.track('video') } }));
    this.changed();
  }

  stop() {
    this.stopScreen();
    for (const track of this.stream.getTracks()) track.stop();
  }
}

let audioContext = null;

function sharedAudioContext() {
  if (!audioContext) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    audioContext = new Ctx();
  }
  if (audioContext.state === 'suspended') {
    // Without a user gesture yet the context may start suspended (autoplay
    // policy): resume it now if allowed, else on the first click or key.
    audioContext.resume().catch(() => {});
    const resume = () => audioContext.resume().catch(() => {});
    document.addEventListener('pointerdown', resume, { once: true, capture: true });
    document.addEventListener('keydown', resume, { once: true, capture: true });
  }
  return audioContext;
}

/** The loudness (0..1) of an audio track, for the mic meter and the speaking ring. */
/**
 * A remote audio receiver's current level (0..1), from its synchronization
 * sources: cheap enough to poll for the speaking ring, in either media mode.
 */
export function receiverAudioLevel(receiver) {
  if (!receiver || !receiver.getSynchronizationSources) return 0;
  const now = performance.now();
  let level = 0;
  for (const source of receiver.getSynchronizationSources()) {
    if (now - source.timestamp < 500 && typeof source.audioLevel === 'number') {
      level = Math.max(level, source.audioLevel);
    }
  }
  return level;
}

export class LevelMeter {
  constructor(track) {
    this.ctx = sharedAudioContext();
    this.source = null;
    this.analyser = null;
    if (!this.ctx || !track) return;
    this.source = this.ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 512;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  level() {
    if (!this.analyser) return 0;
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const s of this.samples) sum += s * s;
    // RMS scaled so speech at a normal distance reaches about 0.5.
    return Math.min(1, Math.sqrt(sum / this.samples.length) * 4);
  }

  close() {
    if (this.source) this.source.disconnect();
    this.source = null;
    this.analyser = null;
  }
}

/** Explain a missing track in words. */
export function problemText(kind, problem) {
  const what = kind === 'audio' ? 'microphone' : 'camera';
  switch (problem) {
    case 'denied':
      return `You blocked the ${what}. Allow it in the browser's site settings (the icon left of the address) and reload, or join without it.`;
    case 'missing':
      return `No ${what} was found. You can join without it.`;
    case 'busy':
      return `The ${what} is in use by another app. Close that app and reload, or join without it.`;
    case 'unsupported':
      return `This browser cannot use a ${what} here (the page must be served over HTTPS).`;
    case 'error':
      return `The ${what} could not be started. You can join without it.`;
    default:
      return '';
  }
}
