// One request: fields, timeline, actions and the live log.

import { api, stream, ApiError } from './api.js';
import { h, chip, timeEl, fmtDuration, shortId, FINAL, announce } from './util.js';
import { LogView } from './logview.js';
import { Artifacts } from './artifacts.js';

// milestones the agent writes in the `system` log (src/agent/qsim-job*.c)
const MILESTONES = [
  [/^claimed by agent/, 'claimed'],
  [/^(VM started|restored from snapshot|started from the warm pool|resuming the parked VM)/, 'VM started'],
  [/^SSH ready/, 'ready'],
  [/^exit code/, 'commands exited'],
  [/^VM shut down/, 'VM shut down'],
];

function dl(pairs) {
  return h('dl', { class: 'fields' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
}

function timeline(r, marks) {
  const pts = [['submitted', Date.parse(r.created_at)]];
  for (const [name, at] of marks) if (!pts.some((p) => p[0] === name)) pts.push([name, at]);
  if (r.started_at && !pts.some((p) => p[0] === 'running')) pts.push(['running', Date.parse(r.started_at)]);
  if (r.finished_at) pts.push([r.status, Date.parse(r.finished_at)]);
  pts.sort((a, b) => a[1] - b[1]);
  return h('ol', { class: 'timeline' }, pts.map(([name, at], i) => h('li', {},
    h('span', { class: 'tl-name', text: name }),
    h('time', { dateTime: new Date(at).toISOString(), text: new Date(at).toLocaleTimeString() }),
    i > 0 ? h('span', { class: 'tl-dur muted', text: `+${fmtDuration(at - pts[i - 1][1])}` }) : null)));
}

export async function render(main, [id], { go }) {
  let r = await api(`/requests/${encodeURIComponent(id)}`);
  const uuid = r.uuid;
  const marks = [];
  const head = h('div', { class: 'page-head' });
  const info = h('section', { class: 'card', 'aria-label': 'Request details' });
  const tl = h('section', { class: 'card', 'aria-labelledby': 'tl-h' });
  const msg = h('p', { class: 'error', role: 'alert' });
  const log = new LogView();
  const arts = new Artifacts(uuid);

  const btn = (text, onclick, cls) => h('button', { type: 'button', class: cls || '', text, onclick });
  const act = async (fn) => {
    msg.textContent = '';
    try { await fn(); } catch (e) { msg.textContent = e.message; }
  };
  const cancelBtn = btn('Cancel', () => act(async () => { r = await api(`/requests/${uuid}/status`, { method: 'PUT', body: { status: 'cancelled' } }); paint(); }), 'danger');
  const holdBtn = btn('Hold', () => act(async () => {
    const to = r.status === 'hold' ? (r.started_at ? 'running' : 'pending') : 'hold';
    r = await api(`/requests/${uuid}/status`, { method: 'PUT', body: { status: to } });
    paint();
  }));
  const deleteBtn = btn('Delete', () => act(async () => {
    if (!confirm(`Delete request ${shortId(uuid)} and its log?`)) return;
    await api(`/requests/${uuid}`, { method: 'DELETE' });
    go('#/requests');
  }), 'danger');
  const dlBtn = btn('Download log', () => {
    const blob = new Blob([log.text()], { type: 'text/plain' });
    const a = h('a', { href: URL.createObjectURL(blob), download: `qsim-${uuid}.log` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });

  function paint() {
    const final = FINAL.has(r.status);
    head.replaceChildren(h('h1', {}, 'Request ', h('span', { class: 'mono', text: shortId(uuid) }), ' ', chip(r.status)),
      h('div', { class: 'actions' }, cancelBtn, holdBtn, deleteBtn, dlBtn));
    cancelBtn.disabled = final;
    holdBtn.disabled = final || r.status === 'acknowledged';
    holdBtn.textContent = r.status === 'hold' ? 'Resume' : 'Hold';
    deleteBtn.disabled = !final;
    info.replaceChildren(dl([
      ['UUID', h('span', { class: 'mono', text: uuid })],
      ['VM', r.vm_name],
      ['Commands', h('pre', { class: 'cmd', text: r.commands, tabindex: '0' })], // focusable: it may scroll
      ['Timeout', `${r.timeout} s`],
      ['Submitted', timeEl(r.created_at)],
      ['Started', r.started_at ? timeEl(r.started_at) : '–'],
      ['Finished', r.finished_at ? timeEl(r.finished_at) : '–'],
      ['Exit code', r.exit_code === null ? '–' : String(r.exit_code)],
      r.error ? ['Error', h('span', { class: 'error', text: r.error })] : null,
      ['Start mode', r.start_mode || '–'],
      ['Attempts', String(r.attempts)],
      ['Agent', r.agent_id || '–'],
      r.output_truncated ? ['Output', 'truncated at OUTPUT_LIMIT'] : null,
    ]));
    tl.replaceChildren(h('h2', { id: 'tl-h', text: 'Timeline' }), timeline(r, marks));
    arts.paint(r, final);
  }

  main.append(head, msg, h('div', { class: 'grid2' }, info, tl), arts.el,
    h('section', { 'aria-labelledby': 'log-h' }, h('h2', { id: 'log-h', text: 'Log' }), log.el));
  paint();
  log.render();

  let ended = FINAL.has(r.status);
  let refresh = 0;
  const reload = () => {
    clearTimeout(refresh);
    refresh = setTimeout(async () => {
      try { r = await api(`/requests/${uuid}`); paint(); } catch (e) { if (e instanceof ApiError && e.status === 404) msg.textContent = 'This request was deleted.'; }
    }, 100);
  };
  const stop = stream(`/requests/${uuid}/logs?follow=1`, {
    done: () => ended,
    onEvent: (type, data) => {
      if (type === 'log') {
        log.addEntry(data);
        if (data.log_type === 'system') {
          const line = data.output.trim();
          if (/^artifacts: collected /.test(line)) arts.collected(r);
          for (const [re, name] of MILESTONES) if (re.test(line)) { marks.push([name, Date.parse(data.timestamp)]); tl.replaceChildren(h('h2', { id: 'tl-h', text: 'Timeline' }), timeline(r, marks)); break; }
        }
      } else if (type === 'status') {
        if (data.status !== r.status) { r.status = data.status; paint(); reload(); }
      } else if (type === 'end') {
        ended = true;
        Object.assign(r, { status: data.status, exit_code: data.exit_code, error: data.error });
        paint();
        reload();
        announce(`request ${shortId(uuid)} ${data.status}`);
      }
    },
  });
  return () => { stop(); clearTimeout(refresh); };
}
