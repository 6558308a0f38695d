// Health: queue, VM slots against the cap, the last hour as SVG charts, store and disk.

import { api } from './api.js';
import { h, svg, fmtBytes } from './util.js';

function barChart(title, values, { unit = '', stacked = null } = {}) {
  const W = 300, H = 80, n = values.length;
  const max = Math.max(1, ...values.map((v, i) => (v || 0) + (stacked ? stacked[i] || 0 : 0)));
  const bw = W / n;
  const bars = [];
  values.forEach((v, i) => {
    const a = ((v || 0) / max) * H;
    if (a > 0) bars.push(svg('rect', { x: (i * bw).toFixed(1), y: (H - a).toFixed(1), width: Math.max(1, bw - 1).toFixed(1), height: a.toFixed(1), class: 'bar' }));
    if (stacked && stacked[i]) {
      const b = (stacked[i] / max) * H;
      bars.push(svg('rect', { x: (i * bw).toFixed(1), y: (H - a - b).toFixed(1), width: Math.max(1, bw - 1).toFixed(1), height: b.toFixed(1), class: 'bar bad' }));
    }
  });
  const total = values.reduce((a, v, i) => a + (v || 0) + (stacked ? stacked[i] || 0 : 0), 0);
  const id = `c${Math.random().toString(36).slice(2, 8)}`;
  return h('figure', { class: 'chart' },
    svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': id, preserveAspectRatio: 'none' },
      svg('title', { id }, `${title}: maximum ${max.toFixed(unit ? 2 : 0)}${unit} per minute`),
      svg('line', { x1: 0, y1: H, x2: W, y2: H, class: 'axis' }), bars),
    h('figcaption', {}, h('strong', { text: title }), ` — the last 60 minutes, oldest left; max ${max.toFixed(unit ? 2 : 0)}${unit}` + (unit ? '' : `, total ${total}`)));
}

function tile(label, value, extra) {
  return h('div', { class: 'tile' }, h('div', { class: 'tile-v', text: value }), h('div', { class: 'tile-l', text: label }), extra ? h('div', { class: 'muted', text: extra }) : null);
}

export async function render(main) {
  const tiles = h('div', { class: 'tiles' });
  const charts = h('div', { class: 'charts' });
  const status = h('section', { class: 'card', 'aria-labelledby': 'hs-h' });
  main.append(h('h1', { text: 'Health' }), tiles, charts, status);

  async function refresh() {
    const [stats, health, hist, config] = await Promise.all([
      api('/stats'), api('/health'), api('/stats/history'), api('/config').catch(() => ({})),
    ]);
    const cap = config.MAX_CONCURRENT_VMS ? config.MAX_CONCURRENT_VMS.value : 0;
    tiles.replaceChildren(
      tile('Queued', String(stats.counts.pending), stats.oldest_pending_age_s !== null ? `oldest ${Math.round(stats.oldest_pending_age_s)} s` : 'none waiting'),
      tile('Running VMs', cap ? `${stats.running_vms} / ${cap}` : String(stats.running_vms), 'of the VM cap'),
      tile('Running requests', String(stats.counts.running)),
      tile('Agents', String(stats.agents)),
      tile('Total requests', String(stats.total)));
    const b = hist.buckets;
    charts.replaceChildren(
      barChart('Finished per minute (done; failed stacked)', b.map((x) => x.done), { stacked: b.map((x) => x.failed) }),
      barChart('First-byte latency, median', b.map((x) => x.first_byte_p50_s), { unit: ' s' }));
    const disk = health.disk || {};
    status.replaceChildren(h('h2', { id: 'hs-h' }, 'Store and disk ', h('span', { class: `chip ${health.status === 'ok' ? 'st-done' : 'st-failed'}`, text: health.status })),
      h('dl', { class: 'fields' },
        h('dt', { text: 'Database' }), h('dd', { text: `${health.database}, schema v${health.schema_version}` }),
        h('dt', { text: 'Disk' }), h('dd', { text: `${disk.status}: ${fmtBytes(disk.free_bytes)} free (minimum ${fmtBytes(disk.min_free_bytes)})` }),
        h('dt', { text: 'Version' }), h('dd', { text: health.version }),
        h('dt', { text: 'Accelerator' }), h('dd', { text: health.accelerator ? `${health.accelerator.setting} (${(health.accelerator.hosts || []).map((x) => `${x.host}: ${x.accel}`).join(', ') || 'no probe yet'})` : '–' }),
        health.reasons && health.reasons.length ? [h('dt', { text: 'Reasons' }), h('dd', { text: health.reasons.join('; ') })] : null));
  }
  await refresh();
  const t = setInterval(() => refresh().catch(() => {}), 15000);
  return () => clearInterval(t);
}
