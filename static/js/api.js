// The JSON API (protocol.md section 1) and the data the server puts in the page.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'http-error';
  }
}

export function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return '';
}

/** Read a value the server rendered with Django's `json_script`. */
export function readJsonScript(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRFToken'] = readCookie('csrftoken');
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network', 'The server cannot be reached. Check your connection.');
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code, error.message);
  }
  return data;
}

export const api = {
  createRoom: ({ name, capacity, pin, media }) => request('POST', '/api/rooms', { name, capacity, pin, media }),
  getRoom: (number) => request('GET', `/api/rooms/${encodeURIComponent(number)}`),
  logout: () => request('POST', '/api/auth/logout'),
};

/** Remember a room's PIN for this tab only, so its creator is not asked again. */
export const pinStore = {
  set(number, pin) {
    try {
      if (pin) sessionStorage.setItem(`room-pin:${number}`, pin);
    } catch (err) { /* storage disabled: the PIN is asked again */ }
  },
  get(number) {
    try {
      return sessionStorage.getItem(`room-pin:${number}`) || '';
    } catch (err) {
      return '';
    }
  },
};
