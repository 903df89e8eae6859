// The room page: pre-join, the call, the ended screen.
//
// This entry module only wires things together: the call state (call.js)
// gets the signaling socket, a factory for peer links and the PIN store; the
// views (views/*.js) render from it and send it what the person asks for.

import { pinStore, readJsonScript } from './api.js';
import { Call, FINAL_CLOSE_CODES } from './call.js';
import { LocalMedia } from './media.js';
import { PeerLink, rtcConfiguration } from './peer.js';
import { SfuLink, SfuSession } from './sfu.js';
import { SignalingClient, signalingUrl } from './signaling.js';
import { toast } from './ui.js';
import { mountChat } from './views/chat.js';
import { mountControls } from './views/controls.js';
import { mountEnded } from './views/ended.js';
import { mountPage } from './views/page.js';
import { mountParticipants } from './views/participants.js';
import { mountPrejoin } from './views/prejoin.js';
import { mountSide } from './views/side.js';
import { mountStats } from './views/stats.js';
import { mountTiles } from './views/tiles.js';

const sessionConfig = readJsonScript('session-config') || {};
const media = new LocalMedia();
let rtcConfig = rtcConfiguration(sessionConfig);

const call = new Call({
  room: readJsonScript('room-data') || {},
  me: sessionConfig.user || {},
  signaling: new SignalingClient(signalingUrl(sessionConfig), { finalCloseCodes: FINAL_CLOSE_CODES }),
  createLink: ({ peerId, polite, send }) => new PeerLink({ peerId, polite, config: rtcConfig, media, send }),
  createSfu: ({ send }) => new SfuSession({ config: rtcConfig, media, send }),
  createSfuLink: ({ peerId, session, send }) => new SfuLink({ peerId, session, send }),
  pins: pinStore,
});

// Views, in the order they hear each event (the page shows a screen before others fill it).
mountPage({ call });
const prejoin = mountPrejoin({ call, media, pins: pinStore, onSpeakerChange: (id) => tiles.setSpeaker(id) });
const tiles = mountTiles({ call, media, localLevel: prejoin.level, speaker: prejoin.speaker });
mountStats({ call, tiles });
const side = mountSide({ call });
mountChat({ call, side });
mountParticipants({ call });
mountControls({ call, media });
mountEnded({ call });

// What we send (mute, camera, screen) reaches the call; new tracks reach every link.
media.addEventListener('change', ({ detail }) => call.setMedia(detail));
media.addEventListener('trackchange', ({ detail }) => call.setTrack(detail.kind, media.outgoing(detail.kind)));

// The server hands TURN credentials to a seated socket only (in `joined`, then
// renewed): the links made from now on use them, the live ones at their next
// ICE restart.
call.addEventListener('ice-servers', ({ detail }) => {
  rtcConfig = rtcConfiguration(detail.config);
  call.setIceServers(rtcConfig);
});

call.addEventListener('phase', ({ detail }) => {
  if (detail.phase === 'ended') media.stop();
});
call.addEventListener('error', ({ detail }) => toast(detail.text, { kind: 'error' }));
call.addEventListener('navigate', ({ detail }) => window.location.assign(detail.url));
window.addEventListener('pagehide', () => call.goodbye());

if (call.room.closed) {
  // The link of a meeting that is over: say so instead of opening the camera.
  call.end('closed');
} else {
  prejoin.start();
}
