// The people panel: everyone in the call with what they send, the count on
// its tab, and the owner's "Remove" buttons.

import { $, displayName, h, initials } from '../ui.js';
import { STATE_TEXT } from './tiles.js';

export function mountParticipants({ call }) {
  const list = $('participants');
  const count = $('people-count');

  function row(info, { self = false, state = '', canKick = false }) {
    const who = displayName(info.user);
    const m = info.media || {};
    const owner = call.room.owner;
    const bits = [];
    if (owner && info.user && owner.id === info.user.id) bits.push('owner');
    if (m.audio === false) bits.push('muted');
    if (m.video === false) bits.push('camera off');
    if (m.screen) bits.push('presenting');
    if (state && state !== 'connected') bits.push(STATE_TEXT[state] || state);
    const kick = canKick && !self
      ? h('button', {
        type: 'button', class: 'small danger', dataset: { testid: 'kick-button', peerId: info.peerId },
        'aria-label': `Remove ${who} from the room`, onclick: () => call.kick(info.peerId),
      }, 'Remove')
      : null;
    return h('li', { class: 'participant', dataset: { peerId: info.peerId || '', testid: 'participant' } },
      h('span', { class: 'avatar small', 'aria-hidden': 'true' }, initials(who)),
      h('span', { class: 'participant-name' }, self ? `${who} (you)` : who),
      h('span', { class: 'participant-bits' }, bits.join(' · ')),
      kick);
  }

  function render() {
    const rows = [row({ peerId: call.peerId, user: call.me, media: call.localMedia }, { self: true })];
    for (const peer of call.peers.values()) {
      rows.push(row(peer.info, { state: peer.link.state, canKick: call.isOwner }));
    }
    list.replaceChildren(...rows);
    count.textContent = String(call.peers.size + 1);
  }

  for (const type of ['peer-added', 'peer-changed', 'peer-removed', 'peer-state', 'local-media', 'room', 'joined']) {
    call.addEventListener(type, render);
  }
}
