// The stats overlay: figures from getStats() on every remote tile, each second.

import { formatStats, summarizeStats } from '../peer.js';
import { $, h, setPressed, show } from '../ui.js';

const REFRESH_MS = 1000;

export function mountStats({ call, tiles }) {
  const button = $('btn-stats');
  const overlays = new Map(); // peerId -> {box, last}
  let on = false;
  let timer = 0;

  function overlay(peer) {
    let entry = overlays.get(peer.peerId);
    const tile = tiles.tile(peer.peerId);
    if (!entry && tile) {
      entry = { box: h('pre', { class: 'tile-stats', dataset: { testid: 'stats' }, hidden: !on }), last: null };
      tile.append(entry.box);
      overlays.set(peer.peerId, entry);
    }
    return entry || null;
  }

  async function refresh() {
    for (const peer of call.peers.values()) {
      const entry = overlay(peer);
      if (!entry) continue;
      try {
        entry.last = await summarizeStats(peer.link.pc, entry.last);
        entry.box.textContent = formatStats(entry.last);
        tiles.tile(peer.peerId).dataset.candidateType = entry.last.localCandidateType || '';
      } catch (err) {
        // The connection closed between two refreshes.
      }
    }
  }

  function render() {
    setPressed(button, on, on ? 'Hide stats' : 'Show stats');
  }

  button.addEventListener('click', () => {
    on = !on;
    for (const peer of call.peers.values()) overlay(peer);
    for (const { box } of overlays.values()) show(box, on);
    clearInterval(timer);
    if (on) {
      refresh();
      timer = setInterval(refresh, REFRESH_MS);
    }
    render();
  });
  call.addEventListener('peer-added', ({ detail: { peer } }) => overlay(peer));
  call.addEventListener('peer-removed', ({ detail: { peer } }) => overlays.delete(peer.peerId));
  call.addEventListener('phase', ({ detail }) => {
    if (detail.phase === 'ended') clearInterval(timer);
  });
  render();
}
