// The side panel: chat and people as two tabs, opened from the controls;
// a wide screen opens it on the chat when the call starts.

import { $, show } from '../ui.js';

const WIDE = '(min-width: 900px)';

/** Events (CustomEvent detail): `change` ({panel, open}). */
export function mountSide({ call }) {
  const side = $('side');
  const buttons = { chat: $('btn-chat'), people: $('btn-people') };
  const events = new EventTarget();

  function changed() {
    events.dispatchEvent(new CustomEvent('change', { detail: { panel: side.dataset.panel, open: !side.hidden } }));
  }

  function open(panel) {
    show(side, true);
    side.dataset.panel = panel;
    for (const tab of side.querySelectorAll('[role="tab"]')) {
      const selected = tab.dataset.panel === panel;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    show($('panel-chat'), panel === 'chat');
    show($('panel-people'), panel === 'people');
    buttons.chat.setAttribute('aria-expanded', String(panel === 'chat'));
    buttons.people.setAttribute('aria-expanded', String(panel === 'people'));
    changed();
  }

  function close() {
    show(side, false);
    buttons.chat.setAttribute('aria-expanded', 'false');
    buttons.people.setAttribute('aria-expanded', 'false');
    changed();
  }

  function toggle(panel) {
    if (!side.hidden && side.dataset.panel === panel) close();
    else open(panel);
  }

  buttons.chat.addEventListener('click', () => toggle('chat'));
  buttons.people.addEventListener('click', () => toggle('people'));
  $('btn-close-side').addEventListener('click', close);
  for (const tab of side.querySelectorAll('[role="tab"][data-panel]')) {
    tab.addEventListener('click', () => open(tab.dataset.panel));
  }
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !side.hidden && !window.matchMedia(WIDE).matches) close();
  });
  call.addEventListener('phase', ({ detail }) => {
    if (detail.phase === 'in-call' && window.matchMedia(WIDE).matches) open('chat');
  });

  return {
    /** Whether `panel` is the one showing now. */
    showing: (panel) => !side.hidden && side.dataset.panel === panel,
    addEventListener: (...args) => events.addEventListener(...args),
  };
}
