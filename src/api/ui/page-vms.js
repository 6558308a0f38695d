// VMs: config summary, template state, warm pool, accelerator per host, prepare.

import { api } from './api.js';
import { h, fmtBytes, fmtDuration, timeEl } from './util.js';

function templateText(t) {
  if (!t) return 'none';
  let s = t.state;
  if (t.size_bytes) s += `, ${fmtBytes(t.size_bytes)}`;
  if (t.build_s !== null && t.build_s !== undefined) s += `, built in ${fmtDuration(t.build_s * 1000)}`;
  if (t.prepare_requested) s += ' (prepare requested)';
  return s;
}

function card(v, refresh) {
  const msg = h('p', { class: 'muted', role: 'status' });
  const prepare = h('button', { type: 'button', text: 'Prepare template', disabled: !v.valid });
  prepare.addEventListener('click', async () => {
    prepare.disabled = true;
    msg.textContent = 'Prepare requested…';
    try {
      const r = await api(`/vms/${encodeURIComponent(v.name)}/prepare`, { method: 'POST' });
      msg.textContent = `Prepare requested on ${r.hosts.join(', ')}.`;
      setTimeout(refresh, 1500);
    } catch (e) {
      msg.textContent = e.message;
      prepare.disabled = false;
    }
  });
  const hosts = (v.hosts || []).map((x) => h('tr', {},
    h('td', { text: x.host + (x.stale ? ' (stale)' : '') }),
    h('td', { text: x.accel || 'not probed' }),
    h('td', { text: templateText(x.template) }),
    h('td', { text: x.warm_pool ? `${x.warm_pool.parked}/${x.warm_pool.size} parked, ${x.warm_pool.starting} starting` : '–' }),
    h('td', {}, x.heartbeat_at ? timeEl(x.heartbeat_at) : '–')));
  return h('article', { class: 'card vm', 'aria-labelledby': `vm-${v.name}` },
    h('h2', { id: `vm-${v.name}` }, v.name, ' ', h('span', { class: `chip ${v.valid ? 'st-done' : 'st-failed'}`, text: v.valid ? 'valid' : 'invalid' })),
    v.error ? h('p', { class: 'error', text: v.error }) : null,
    h('dl', { class: 'fields' },
      h('dt', { text: 'Image' }), h('dd', { text: `${v.image || '–'} (${v.format || '?'}, ${fmtBytes(v.size_bytes)})` }),
      h('dt', { text: 'Config' }), h('dd', { text: v.config || 'defaults' }),
      h('dt', { text: 'Template' }), h('dd', { text: templateText(v.template) }),
      h('dt', { text: 'Warm pool' }), h('dd', { text: v.warm_pool ? `${v.warm_pool.parked} parked, ${v.warm_pool.starting} starting, size ${v.warm_pool.size}` : '–' }),
      h('dt', { text: 'Accelerator' }), h('dd', { text: v.accelerator ? `${v.accelerator.setting} (${v.accelerator.source})` : '–' })),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { text: 'Per host' }),
      h('thead', {}, h('tr', {}, ['Host', 'Accel', 'Template', 'Warm pool', 'Heartbeat'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, hosts))),
    h('div', { class: 'actions' }, prepare), msg);
}

export async function render(main) {
  const list = h('div', { class: 'cards' });
  main.append(h('h1', { text: 'VMs' }), list);
  async function refresh() {
    const vms = await api('/vms');
    list.replaceChildren(...(vms.length ? vms.map((v) => card(v, refresh)) : [h('p', { class: 'muted', text: 'No VM published yet.' })]));
  }
  await refresh();
  const t = setInterval(() => refresh().catch(() => {}), 10000);
  return () => clearInterval(t);
}
