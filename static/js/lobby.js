// The lobby: create a room, join one by its number, see recent rooms.

import { api, ApiError, pinStore } from './api.js';
import { errorText, formatRoomNumber, isValidPin, normalizeRoomNumber } from './protocol.js';
import { $, setError } from './ui.js';
import { ERROR_CODES } from './wire.js';

const createForm = $('create-form');
const joinForm = $('join-form');

function busy(form, isBusy, label) {
  const button = form.querySelector('button[type="submit"]');
  button.disabled = isBusy;
  if (label) button.textContent = label;
}

function roomPath(number) {
  return `/rooms/${number}/`;
}

createForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = $('create-error');
  setError(error, '');
  const name = $('create-name').value.trim();
  const capacity = Number.parseInt($('create-capacity').value, 10);
  const media = $('create-media').value;
  const pin = $('create-pin').value.trim();
  if (pin && !isValidPin(pin)) {
    setError(error, 'A PIN is 4 to 12 digits, or leave it empty.');
    $('create-pin').focus();
    return;
  }
  busy(createForm, true, 'Creating…');
  try {
    const room = await api.createRoom({ name: name || undefined, capacity, pin: pin || undefined, media });
    pinStore.set(room.number, pin);
    window.location.assign(roomPath(room.number));
  } catch (err) {
    setError(error, err instanceof ApiError && err.code !== 'http-error' ? errorText(err.code, err.message) : err.message);
    busy(createForm, false, 'Create room');
  }
});

const numberInput = $('join-number');

joinForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = $('join-error');
  setError(error, '');
  const number = normalizeRoomNumber(numberInput.value);
  if (!number) {
    setError(error, 'A room number has 9 digits, like 482 913 075.');
    error.dataset.code = 'bad-number';
    numberInput.focus();
    return;
  }
  const pin = $('join-pin').value.trim();
  busy(joinForm, true, 'Checking…');
  try {
    const room = await api.getRoom(number);
    let problem = '';
    if (room.closed) problem = ERROR_CODES.ROOM_CLOSED;
    else if (room.locked) problem = ERROR_CODES.ROOM_LOCKED;
    else if (room.capacity && room.participants >= room.capacity) problem = ERROR_CODES.ROOM_FULL;
    if (problem) {
      setError(error, errorText(problem));
      error.dataset.code = problem;
      busy(joinForm, false, 'Join');
      return;
    }
    pinStore.set(number, pin);
    window.location.assign(roomPath(number));
  } catch (err) {
    const code = err instanceof ApiError ? err.code : 'network';
    const notFound = code === ERROR_CODES.ROOM_NOT_FOUND || err.status === 404;
    setError(error, notFound
      ? `There is no room ${formatRoomNumber(number)}. Check the number and try again.`
      : errorText(code, err.message));
    error.dataset.code = notFound ? ERROR_CODES.ROOM_NOT_FOUND : code;
    busy(joinForm, false, 'Join');
  }
});

// Show what was typed as it is read: "482913075" becomes "482 913 075" on blur.
numberInput.addEventListener('blur', () => {
  const number = normalizeRoomNumber(numberInput.value);
  if (number) numberInput.value = formatRoomNumber(number);
});

for (const el of document.querySelectorAll('time[data-local]')) {
  const date = new Date(el.getAttribute('datetime'));
  if (!Number.isNaN(date.getTime())) {
    el.textContent = date.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  }
}
