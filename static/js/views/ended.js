// The screen after the call: why it ended, and the way back (rejoin, or sign in).

import { $, show } from '../ui.js';

export function mountEnded({ call }) {
  const title = $('ended-title');
  const rejoin = $('rejoin-button');
  const signIn = $('sign-in-link');

  rejoin.addEventListener('click', () => window.location.reload());
  call.addEventListener('phase', ({ detail: { phase, ended } }) => {
    if (phase !== 'ended') return;
    title.textContent = ended.title;
    $('ended-message').textContent = ended.message;
    $('ended').dataset.reason = ended.reason;
    show(rejoin, ended.rejoin);
    if (ended.signIn) signIn.href = ended.signIn;
    show(signIn, Boolean(ended.signIn));
    title.focus();
  });
}
