// Small DOM helpers shared by the pages. No framework: elements are built
// with textContent only, so nothing a user types is ever parsed as HTML.

export { displayName, initials } from './names.js';

export const $ = (id) => document.getElementById(id);

/** h('button', {class: 'x', dataset: {peerId}, onclick}, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function show(el, visible = true) {
  if (el) el.hidden = !visible;
}

export function setError(el, text) {
  if (!el) return;
  el.textContent = text || '';
  el.hidden = !text;
}

/** A short notice in the corner, read out by screen readers. */
export function toast(text, { kind = 'info', ms = 4000 } = {}) {
  const box = $('toasts');
  if (!box) return;
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  box.append(item);
  setTimeout(() => item.remove(), ms);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (err) {
    // Older browsers and some embedded views: select-and-copy fallback.
    const area = h('textarea', { class: 'visually-hidden', readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (err2) {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

export function formatTime(iso) {
  const date = iso ? new Date(iso) : new Date();
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** A toggle button's pressed state and its label (text, aria-label and title alike). */
export function setPressed(button, pressed, label) {
  button.setAttribute('aria-pressed', String(pressed));
  const text = button.querySelector('.label');
  if (text) text.textContent = label;
  button.setAttribute('aria-label', label);
  button.title = label;
}
