// Router, login and the global event stream. Pages live in page-*.js; each
// exports render(main, params, ctx) and may return a cleanup function.

import { api, getToken, setToken, setUnauthorizedHandler, stream } from './api.js';
import { h, clear, announce, tickTimes } from './util.js';
import * as requests from './page-requests.js';
import * as request from './page-request.js';
import * as submit from './page-submit.js';
import * as vms from './page-vms.js';
import * as health from './page-health.js';

const main = document.getElementById('main');
const routes = [
  [/^#\/requests\/([0-9a-fA-F-]{8,36})$/, request, 'requests'],
  [/^#\/requests\/?$/, requests, 'requests'],
  [/^#\/submit$/, submit, 'submit'],
  [/^#\/vms$/, vms, 'vms'],
  [/^#\/health$/, health, 'health'],
];

// one stream of request events for the whole app; pages subscribe
const listeners = new Set();
let stopEvents = null;
const events = {
  on(fn) { listeners.add(fn); return () => listeners.delete(fn); },
};

function startEvents() {
  if (stopEvents) stopEvents();
  stopEvents = stream('/events', {
    onOpen: () => announce('live'),
    onDrop: (e) => announce(e ? `offline: ${e.message}` : 'reconnecting…'),
    onEvent: (type, data) => { for (const fn of listeners) fn(type, data); },
  });
}

let cleanup = null;
let loginShown = false;

function showLogin(message) {
  if (loginShown) return;
  loginShown = true;
  if (cleanup) { cleanup(); cleanup = null; }
  if (stopEvents) { stopEvents(); stopEvents = null; }
  announce('signed out');
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'card login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', text: 'Sign in' }),
    h('p', { text: message || 'This qsim server needs an API token.' }),
    h('label', { for: 'token', text: 'API token' }), input,
    h('button', { type: 'submit', class: 'primary', text: 'Sign in' }), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    try {
      await api('/stats');
      loginShown = false;
      document.getElementById('logout').classList.remove('hidden');
      startEvents();
      route();
    } catch (ex) {
      setToken(null);
      err.textContent = ex.status === 401 ? 'That token was refused.' : ex.message;
      input.focus();
    }
  });
  clear(main).append(form);
  input.focus();
}

async function route() {
  if (loginShown) return;
  if (!location.hash || location.hash === '#' || location.hash === '#/') { location.replace('#/requests'); return; }
  if (cleanup) { cleanup(); cleanup = null; }
  let page = null, params = null, nav = '';
  for (const [re, mod, name] of routes) {
    const m = location.hash.split('?')[0].match(re);
    if (m) { page = mod; params = m.slice(1); nav = name; break; }
  }
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  clear(main);
  if (!page) {
    main.append(h('h1', { text: 'Not found' }), h('p', {}, 'No page here. ', h('a', { href: '#/requests', text: 'See the requests.' })));
    return;
  }
  try {
    cleanup = (await page.render(main, params, { events, go: (hash) => { location.hash = hash; } })) || null;
  } catch (e) {
    if (e.status === 401) return;
    main.append(h('p', { class: 'error', role: 'alert', text: e.message }));
  }
  // focus moves to the new page for keyboard and screen reader users
  const heading = main.querySelector('h1');
  if (heading && document.activeElement === document.body) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

setUnauthorizedHandler(() => showLogin(getToken() ? 'Your token was refused; enter a valid one.' : undefined));
document.getElementById('logout').addEventListener('click', () => {
  setToken(null);
  location.hash = '#/requests';
  showLogin('Signed out.');
});
if (getToken()) document.getElementById('logout').classList.remove('hidden');
window.addEventListener('hashchange', route);
setInterval(() => tickTimes(main), 10000);

// no probe first: the page's own calls find out whether a token is needed (a
// 401 anywhere shows the login form), which saves a round trip per load
startEvents();
route();
