// The screen after the call: why it ended, and the way back.

import { $, show } from '../ui.js';

export function mountEnded({ call }) {
  const title = $('ended-title');
  const rejoin = $('rejoin-button');

  rejoin.addEventListener('click', () => window.location.reload());
  call.addEventListener('phase', ({ detail: { phase, ended } }) => {
    if (phase !== 'ended') return;
    title.textContent = ended.title;
    $('ended-message').textContent = ended.message;
    $('ended').dataset.reason = ended.reason;
    show(rejoin, ended.rejoin);
    title.focus();
  });
}
