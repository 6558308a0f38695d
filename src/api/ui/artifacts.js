// The request page's Artifacts section (issue 16): the files collected out of
// the guest, each with a download. Names, targets and bytes are the guest's
// choice: names become text nodes, a saved file's name is sanitised, and the
// bytes are fetched with the Authorization header (the token never goes in a
// URL) and handed to the browser as an octet-stream Blob, never rendered.

import { api } from './api.js';
import { h, fmtBytes, shortId } from './util.js';

// `out/a b.txt` -> `out/a%20b.txt`: the API takes the `/` as they are
export function artifactPath(uuid, name) {
  return `/requests/${uuid}/artifacts/${String(name).split('/').map(encodeURIComponent).join('/')}`;
}

// A file name the browser may save: the last component, without control,
// bidi-override or path/shell-special characters, no leading dot, bounded.
export function safeFilename(name, fallback) {
  const base = String(name).split('/').pop() || '';
  const s = base.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\\/:*?"<>|]/g, '_')
    .replace(/^[.\s]+/, '').replace(/\s+$/, '').slice(0, 200);
  return s || fallback;
}

async function save(path, filename) {
  const res = await api(path, { raw: true });
  const blob = new Blob([await res.arrayBuffer()], { type: 'application/octet-stream' });
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export class Artifacts {
  constructor(uuid) {
    this.uuid = uuid;
    this.list = null;
    this.loading = false;
    this.msg = h('p', { class: 'error', role: 'alert' });
    this.body = h('div');
    this.el = h('section', { class: 'card', 'aria-labelledby': 'art-h' },
      h('h2', { id: 'art-h', text: 'Artifacts' }), this.body, this.msg);
  }

  // r: the request; its `artifacts` field holds the paths it asked for
  paint(r, final) {
    this.r = r;
    const asked = Array.isArray(r.artifacts) ? r.artifacts : [];
    const askedEl = asked.length
      ? h('p', { class: 'muted asked' }, 'Asked for: ', asked.map((p, i) => [i ? ', ' : '', h('code', { text: p })]))
      : h('p', { class: 'muted asked', text: 'This request asked for no artifacts.' });
    if (!final && !this.done) {
      this.body.replaceChildren(askedEl, asked.length ? h('p', { class: 'muted', text: 'Collected when the commands end.' }) : null);
      return;
    }
    if (this.list === null) {
      this.body.replaceChildren(askedEl, h('p', { class: 'muted', text: 'Loading…' }));
      this.load(r);
      return;
    }
    if (!this.list.length) {
      this.body.replaceChildren(askedEl, h('p', { class: 'empty', text: 'No artifacts.' }));
      return;
    }
    const dlBtn = (text, label, fn) => h('button', { type: 'button', text, 'aria-label': label, onclick: () => this.run(fn) });
    const rows = this.list.map((a) => h('tr', {},
      h('td', { class: 'mono art-name' }, h('span', { text: a.name }),
        a.kind === 'symlink' ? [' → ', h('span', { class: 'muted', text: a.target ?? '' })] : null),
      h('td', { class: 'num', text: a.kind === 'symlink' ? 'symlink' : fmtBytes(a.size) }),
      h('td', { class: 'mono', text: a.mode ?? '' }),
      h('td', { class: 'mono' }, a.sha256
        ? h('details', { class: 'sha' }, h('summary', { title: a.sha256, text: `${a.sha256.slice(0, 12)}…` }),
          h('code', { class: 'sha-full', text: a.sha256 }))
        : '–'),
      h('td', {}, a.kind === 'symlink' ? '' :
        dlBtn('Download', `Download ${a.name}`, () => save(artifactPath(this.uuid, a.name), safeFilename(a.name, 'artifact'))))));
    this.body.replaceChildren(askedEl,
      h('div', { class: 'table-wrap' }, h('table', { class: 'artifacts' },
        h('caption', { class: 'sr-only', text: 'Collected artifacts' }),
        h('thead', {}, h('tr', {}, ['Name', 'Size', 'Mode', 'SHA-256', 'File'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, rows))),
      h('div', { class: 'actions' }, dlBtn('Download all (.tar.gz)', 'Download all artifacts as .tar.gz',
        () => save(`/requests/${this.uuid}/artifacts.tar.gz`, `qsim-${shortId(this.uuid)}-artifacts.tar.gz`))));
  }

  async run(fn) {
    this.msg.textContent = '';
    try { await fn(); } catch (e) { this.msg.textContent = e.message; }
  }

  async load(r) {
    if (this.loading) return;
    this.loading = true;
    try {
      const list = await api(`/requests/${this.uuid}/artifacts`);
      this.list = Array.isArray(list) ? list : [];
    } catch (e) {
      this.list = [];
      this.msg.textContent = e.message;
    } finally {
      this.loading = false;
    }
    this.paint(this.r || r, true);
  }

  // the agent logged `artifacts: collected N`: the list is complete even if
  // the final status has not arrived yet
  collected(r) {
    if (this.done) return;
    this.done = true;
    if (this.list === null && !this.loading) this.paint(r, true);
  }
}
