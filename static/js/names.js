// People's names as the page shows them (no DOM: the call state uses these too).

export function displayName(user) {
  if (!user) return 'Someone';
  return user.displayName || user.username || 'Someone';
}

export function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || '?').slice(0, 2)).toUpperCase();
}
