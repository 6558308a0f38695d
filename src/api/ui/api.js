// The REST API from the page. The token, when the server wants one, lives in
// sessionStorage only (gone with the tab) and travels in the Authorization
// header, never in a URL or a cookie. Streams use fetch() so that they can
// carry that header too (EventSource cannot).

const KEY = 'qsim-token';
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }
export function getToken() { return sessionStorage.getItem(KEY); }
export function setToken(t) { if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY); }

function headers(extra) {
  const hd = new Headers(extra || {});
  const t = getToken();
  if (t) hd.set('Authorization', `Bearer ${t}`);
  return hd;
}

async function errorOf(res) {
  let code = 'http_' + res.status;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error) { code = body.error.code; message = body.error.message; }
  } catch { /* not JSON */ }
  if (res.status === 401) onUnauthorized();
  return new ApiError(res.status, code, message);
}

export async function api(path, { method = 'GET', body, signal, raw = false } = {}) {
  const init = { method, headers: headers(), signal, cache: 'no-store' };
  if (body !== undefined) {
    init.headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await errorOf(res);
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.startsWith('application/json') ? res.json() : res.text();
}

// Link: <...>; rel="next" -> the URL, or null
export function nextLink(res) {
  const link = res.headers.get('Link');
  const m = link && link.match(/<([^>]+)>;\s*rel="next"/);
  return m ? m[1] : null;
}

/**
 * Follows a Server-Sent Events endpoint with fetch streaming. Calls
 * onEvent(type, data, id) per event; reconnects with Last-Event-ID after a
 * drop unless done() returns true or stop() was called. Returns stop().
 */
export function stream(path, { onEvent, onOpen, onDrop, done = () => false, lastId = null, retryMs = 1000 }) {
  const ctl = new AbortController();
  let stopped = false;

  async function once() {
    const hd = headers({ Accept: 'text/event-stream' });
    if (lastId !== null) hd.set('Last-Event-ID', String(lastId));
    const res = await fetch(path, { headers: hd, signal: ctl.signal, cache: 'no-store' });
    if (!res.ok) throw await errorOf(res);
    if (onOpen) onOpen();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done: eof } = await reader.read();
      if (eof) break;
      buf += value;
      let cut;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + (buf[cut] === '\r' ? 4 : 2));
        let type = 'message', data = '', id = null;
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith(':')) continue;
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'event') type = val;
          else if (field === 'data') data += (data ? '\n' : '') + val;
          else if (field === 'id') id = val;
        }
        if (id !== null) lastId = id;
        if (!data) continue;
        let parsed;
        try { parsed = JSON.parse(data); } catch { continue; }
        onEvent(type, parsed, id);
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch (e) {
        if (stopped || e.name === 'AbortError') return;
        if (e instanceof ApiError && (e.status === 401 || e.status === 404)) { if (onDrop) onDrop(e); return; }
        if (onDrop) onDrop(e);
      }
      if (stopped || done()) return;
      if (onDrop) onDrop(null);
      await new Promise((r) => setTimeout(r, retryMs));
    }
  })();
  return () => { stopped = true; ctl.abort(); };
}
