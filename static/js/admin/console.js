// The room console in Django admin (templates/admin/rooms/room/change_form.html):
// fetches a fresh copy of itself every few seconds and puts it in place, so
// an operator sees people come and go and connections change while looking.
// The server renders the fragment (escaped by Django's templates); this only
// moves it into the page. No timers while the tab is hidden, and none while
// the operator's focus is on one of the console's buttons (a click must not
// land on a row that has just been replaced).

const section = document.querySelector('[data-console-url]');

if (section) {
  const url = section.dataset.consoleUrl;
  const every = Number(section.dataset.refreshMs) || 3000;
  let timer = null;

  const schedule = () => {
    clearTimeout(timer);
    timer = document.hidden ? null : setTimeout(refresh, every);
  };

  async function refresh() {
    if (section.contains(document.activeElement) && document.activeElement !== section) {
      schedule();
      return;
    }
    try {
      const response = await fetch(url, {
        credentials: 'same-origin',
        headers: { Accept: 'text/html' },
        cache: 'no-store',
      });
      // Signed out meanwhile: the admin redirects to its login page; keep what is shown.
      if (response.ok && !response.redirected) {
        section.innerHTML = await response.text();
        section.dataset.state = 'live';
      } else {
        section.dataset.state = 'stale';
      }
    } catch {
      section.dataset.state = 'stale';
    }
    schedule();
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
    } else {
      refresh();
    }
  });
  schedule();
}
