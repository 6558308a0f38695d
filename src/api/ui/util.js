// DOM helpers. Every piece of data becomes a text node: nothing here ever
// parses a string as HTML, so guest output and request fields cannot inject.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat(Infinity)) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function relTime(iso, now = Date.now()) {
  if (!iso) return '–';
  const d = (now - Date.parse(iso)) / 1000;
  if (d < 5) return 'just now';
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return `${Math.floor(d / 86400)} d ago`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export const FINAL = new Set(['done', 'failed', 'cancelled']);
export const STATUSES = ['pending', 'acknowledged', 'running', 'hold', 'done', 'failed', 'cancelled'];

export function chip(status) {
  return h('span', { class: `chip st-${STATUSES.includes(status) ? status : 'unknown'}`, text: status || '?' });
}

// <time> that keeps its relative text current (see tickTimes)
export function timeEl(iso) {
  const t = h('time', { class: 'rel', text: relTime(iso) });
  if (iso) { t.dateTime = iso; t.title = iso; }
  return t;
}

export function tickTimes(root = document) {
  const now = Date.now();
  for (const t of root.querySelectorAll('time.rel')) if (t.dateTime) t.textContent = relTime(t.dateTime, now);
}

export function shortId(uuid) { return uuid ? uuid.slice(0, 8) : ''; }

export function announce(text) {
  const live = document.getElementById('live');
  if (live) live.textContent = text;
}
