// The requests list: filters in the URL hash, cursor pages, live updates from /events.

import { api, nextLink } from './api.js';
import { h, chip, timeEl, shortId, STATUSES, announce } from './util.js';

const PAGE = 50;

function paramsOf() {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  return { status: q.get('status') || '', vm: q.get('vm_name') || '', text: q.get('q') || '' };
}

function listUrl(f, before) {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (f.status) q.set('status', f.status);
  if (f.vm) q.set('vm_name', f.vm);
  if (f.text) q.set('q', f.text);
  if (before) q.set('before', before);
  return `/requests?${q}`;
}

function firstLine(cmd) {
  const line = (cmd || '').split('\n')[0];
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
}

function row(r) {
  const tr = h('tr', { 'data-uuid': r.uuid },
    h('td', {}, h('a', { href: `#/requests/${r.uuid}`, class: 'mono', text: shortId(r.uuid), 'aria-label': `Request ${shortId(r.uuid)}` })),
    h('td', { class: 'st' }, chip(r.status)),
    h('td', { text: r.vm_name }),
    h('td', { class: 'cmd mono', text: firstLine(r.commands), title: r.commands.length > 400 ? `${r.commands.slice(0, 400)}…` : r.commands }),
    h('td', {}, timeEl(r.created_at)),
    h('td', { class: 'num', text: r.exit_code === null || r.exit_code === undefined ? '' : String(r.exit_code) }));
  return tr;
}

function matches(f, r) {
  if (f.status && r.status !== f.status) return false;
  if (f.vm && r.vm_name !== f.vm) return false;
  if (f.text && !r.commands.toLowerCase().includes(f.text.toLowerCase())) return false;
  return true;
}

export async function render(main, _params, { events }) {
  const f = paramsOf();
  const statusSel = h('select', { id: 'f-status', name: 'status' },
    h('option', { value: '', text: 'any' }), STATUSES.map((s) => h('option', { value: s, text: s, selected: s === f.status })));
  const vmSel = h('select', { id: 'f-vm', name: 'vm_name' }, h('option', { value: '', text: 'any' }));
  const textIn = h('input', { type: 'search', id: 'f-q', name: 'q', value: f.text, minlength: '3', maxlength: '256', placeholder: 'text in commands (3+ characters)' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter requests' },
    h('label', { for: 'f-status', text: 'Status' }), statusSel,
    h('label', { for: 'f-vm', text: 'VM' }), vmSel,
    h('label', { for: 'f-q', text: 'Commands contain' }), textIn,
    h('button', { type: 'submit', text: 'Filter' }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (statusSel.value) q.set('status', statusSel.value);
    if (vmSel.value) q.set('vm_name', vmSel.value);
    if (textIn.value.trim()) q.set('q', textIn.value.trim());
    location.hash = `#/requests${q.toString() ? '?' + q : ''}`;
  });
  statusSel.addEventListener('change', () => form.requestSubmit());
  vmSel.addEventListener('change', () => form.requestSubmit());

  const tbody = h('tbody');
  const more = h('button', { type: 'button', class: 'hidden', text: 'Older requests' });
  const empty = h('p', { class: 'muted hidden', text: 'No request matches.' });
  main.append(
    h('div', { class: 'page-head' }, h('h1', { text: 'Requests' }), h('a', { class: 'button primary', href: '#/submit', text: 'New request' })),
    form,
    h('div', { class: 'table-wrap' }, h('table', { class: 'requests' },
      h('caption', { class: 'sr-only', text: 'Requests, newest first' }),
      h('thead', {}, h('tr', {}, ['Request', 'Status', 'VM', 'Commands', 'Submitted', 'Exit'].map((t) => h('th', { scope: 'col', text: t })))),
      tbody)),
    empty, more);

  api('/vms').then((list) => {
    for (const v of list) vmSel.append(h('option', { value: v.name, text: v.name, selected: v.name === f.vm }));
    if (f.vm && !list.some((v) => v.name === f.vm)) vmSel.append(h('option', { value: f.vm, text: f.vm, selected: true }));
  }).catch(() => {});

  let next = null;
  async function load(url) {
    const res = await api(url, { raw: true });
    const rows = await res.json();
    for (const r of rows) if (!tbody.querySelector(`tr[data-uuid="${r.uuid}"]`)) tbody.append(row(r));
    next = nextLink(res);
    more.classList.toggle('hidden', !next);
    empty.classList.toggle('hidden', tbody.children.length > 0);
  }
  more.addEventListener('click', () => { if (next) load(next); });
  await load(listUrl(f));

  const off = events.on(async (type, ev) => {
    // the journal no longer reaches back to where the stream resumed: list afresh
    if (type === 'reset') { tbody.replaceChildren(); await load(listUrl(f)); return; }
    const tr = tbody.querySelector(`tr[data-uuid="${ev.uuid}"]`);
    if (type === 'request-deleted') { if (tr) tr.remove(); return; }
    if (type === 'request-status' && tr) {
      tr.querySelector('td.st').replaceChildren(chip(ev.status));
      if (f.status && ev.status !== f.status) tr.classList.add('stale');
      else tr.classList.remove('stale');
      try {
        const r = await api(`/requests/${ev.uuid}`);
        if (tr.isConnected) tr.replaceWith(row(r));
      } catch { /* deleted meanwhile */ }
      return;
    }
    // a status change of a row not listed: it may have been created between the list's load
    // and the stream's start (a fresh stream begins at the journal's newest event), or it
    // just entered the filter; matches() decides
    if (type === 'request-created' || (type === 'request-status' && (!f.status || f.status === ev.status))) {
      try {
        const r = await api(`/requests/${ev.uuid}`);
        if (!matches(f, r) || tbody.querySelector(`tr[data-uuid="${r.uuid}"]`)) return;
        tbody.prepend(row(r));
        empty.classList.add('hidden');
        announce(`new request ${shortId(r.uuid)}`);
      } catch { /* gone already */ }
    }
  });
  return off;
}
