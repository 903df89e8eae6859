// Small DOM helpers shared by the pages. No framework: elements are built
// with textContent only, so nothing a user types is ever parsed as HTML.

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

let toastTimer = 0;

/** A short notice in the corner, read out by screen readers. */
export function toast(text, { kind = 'info', ms = 4000 } = {}) {
  const box = $('toasts');
  if (!box) return;
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  box.append(item);
  toastTimer += 1;
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

export function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || '?').slice(0, 2)).toUpperCase();
}

export function displayName(user) {
  if (!user) return 'Someone';
  return user.displayName || user.username || 'Someone';
}

export function formatTime(iso) {
  const date = iso ? new Date(iso) : new Date();
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
