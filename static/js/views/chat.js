// The chat: the log (lines, and notices of who came and went), the form,
// and the unread count while the chat is not showing.

import { $, displayName, formatTime, h, show, toast } from '../ui.js';

export function mountChat({ call, side }) {
  const form = $('chat-form');
  const input = $('chat-input');
  const log = $('chat-log');
  const badge = $('chat-unread');
  let unread = 0;

  function renderUnread() {
    badge.textContent = unread ? String(unread) : '';
    show(badge, unread > 0);
  }

  function appendLine(line, mine) {
    const item = h('li', { class: `chat-line${mine ? ' mine' : ''}`, dataset: { testid: 'chat-message', from: line.from || '' } },
      h('span', { class: 'chat-meta' },
        h('strong', { class: 'chat-name' }, mine ? 'You' : displayName(line.user)), ' ',
        h('time', { datetime: line.ts || '' }, formatTime(line.ts))),
      h('span', { class: 'chat-text' }, line.text));
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(item);
    if (atBottom || mine) log.scrollTop = log.scrollHeight;
    if (!mine && !side.showing('chat')) {
      unread += 1;
      renderUnread();
    }
  }

  function appendNotice(text) {
    log.append(h('li', { class: 'chat-line system', dataset: { testid: 'chat-system' } }, text));
    log.scrollTop = log.scrollHeight;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (!call.sendChat(text)) {
      toast('Not connected: the message was not sent.', { kind: 'error' });
      return;
    }
    input.value = '';
  });
  input.addEventListener('keydown', (event) => {
    // Enter sends, Shift+Enter makes a new line.
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  call.addEventListener('chat', ({ detail }) => appendLine(detail.line, detail.mine));
  call.addEventListener('notice', ({ detail }) => appendNotice(detail.text));
  side.addEventListener('change', ({ detail }) => {
    if (detail.open && detail.panel === 'chat') {
      unread = 0;
      renderUnread();
    }
  });
}
