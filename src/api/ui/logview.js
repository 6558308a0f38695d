// A log viewer that stays smooth at 100 000+ lines: lines live in plain
// arrays, and only the rows in view (plus a margin) exist in the DOM, each
// built from text nodes. Its rows have a fixed height; long lines scroll
// sideways instead of wrapping.

import { h } from './util.js';
import { parseAnsi } from './ansi.js';

const TYPES = ['boot', 'command', 'stdout', 'stderr', 'system'];
const OVERSCAN = 20;
// Output that is not valid UTF-8 comes base64-encoded; a character split
// between two chunks makes both of them so. One streaming decoder per log
// type joins such halves instead of showing two replacement characters.
function decode(entry, decoders, t) {
  if (!decoders[t]) decoders[t] = new TextDecoder('utf-8');
  if (entry.encoding !== 'base64') return decoders[t].decode() + entry.output;
  const bin = atob(entry.output);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return decoders[t].decode(bytes, { stream: true });
}

export class LogView {
  constructor() {
    this.types = [];   // type index per line
    this.texts = [];   // raw text per line (ANSI codes kept, no newline)
    this.times = [];   // timestamp per line
    this.open = {};    // type -> index of its line still missing its newline
    this.decoders = {};
    this.bootLines = 0;
    this.view = [];    // indices of the lines shown, after folding and search
    this.show = { boot: false, command: true, stdout: true, stderr: true, system: true };
    this.query = '';
    this.follow = true;
    this.pending = 0;
    this.rowH = 18;
    this.rows = [];
    this.frame = 0;

    this.scroll = h('div', { class: 'log-scroll', tabindex: '0', role: 'log', 'aria-label': 'Log output' });
    this.spacer = h('div', { class: 'log-spacer' });
    this.body = h('div', { class: 'log-rows' });
    this.spacer.append(this.body);
    this.scroll.append(this.spacer);
    // only a scroll away from the end stops following: growing content never
    // moves scrollTop, and following itself always lands on the end
    this.scroll.addEventListener('scroll', () => {
      const atEnd = this.scroll.scrollTop + this.scroll.clientHeight >= this.scroll.scrollHeight - this.rowH * 2;
      if (!atEnd && this.follow) this.setFollow(false);
      this.schedule();
    });

    const ids = `lv${Math.random().toString(36).slice(2, 8)}`;
    this.countEl = h('span', { class: 'muted', 'aria-live': 'polite' });
    this.bootToggle = h('input', { type: 'checkbox', id: `${ids}-boot`, onchange: (e) => this.setShow('boot', e.target.checked) });
    this.sysToggle = h('input', { type: 'checkbox', id: `${ids}-sys`, checked: true, onchange: (e) => this.setShow('system', e.target.checked) });
    this.followToggle = h('input', { type: 'checkbox', id: `${ids}-follow`, checked: true, onchange: (e) => this.setFollow(e.target.checked) });
    this.search = h('input', { type: 'search', id: `${ids}-q`, placeholder: 'Search the log', oninput: (e) => this.setQuery(e.target.value) });
    this.toolbar = h('div', { class: 'log-tools' },
      h('label', { for: `${ids}-q`, class: 'sr-only', text: 'Search the log' }), this.search,
      h('span', { class: 'check' }, this.bootToggle, h('label', { for: `${ids}-boot`, text: 'Boot lines' })),
      h('span', { class: 'check' }, this.sysToggle, h('label', { for: `${ids}-sys`, text: 'System lines' })),
      h('span', { class: 'check' }, this.followToggle, h('label', { for: `${ids}-follow`, text: 'Follow' })),
      h('button', { type: 'button', onclick: () => this.jumpToEnd(), text: 'Jump to end' }),
      this.countEl);
    this.el = h('div', { class: 'logview' }, this.toolbar, this.scroll);
  }

  matches(i) {
    if (!this.show[TYPES[this.types[i]]]) return false;
    return !this.query || this.texts[i].toLowerCase().includes(this.query);
  }

  addEntry(entry) {
    const t = Math.max(0, TYPES.indexOf(entry.log_type));
    const parts = decode(entry, this.decoders, t).replace(/\r/g, '').split('\n');
    for (let p = 0; p < parts.length; p++) {
      const last = p === parts.length - 1;
      if (last && parts[p] === '') { delete this.open[t]; break; }
      if (p === 0 && this.open[t] !== undefined) {
        const i = this.open[t];
        this.texts[i] += parts[p];
        // a line that grew may now match a search it did not
        if (this.query && !this.view.includes(i) && this.matches(i)) this.rebuild();
      } else {
        const i = this.texts.length;
        this.types.push(t);
        if (t === 0) this.bootLines++;
        this.texts.push(parts[p]);
        this.times.push(entry.timestamp);
        if (this.matches(i)) this.view.push(i);
      }
      if (last) this.open[t] = this.texts.length - 1;
    }
    this.schedule();
  }

  // fixed line text for downloads and tests
  lineCount() { return this.texts.length; }

  rebuild() {
    const v = [];
    for (let i = 0; i < this.texts.length; i++) if (this.matches(i)) v.push(i);
    this.view = v;
    this.schedule();
  }

  setShow(type, on) { this.show[type] = on; this.rebuild(); }
  setQuery(q) { this.query = q.toLowerCase(); this.rebuild(); }

  setFollow(on) {
    this.follow = on;
    this.followToggle.checked = on;
    if (on) this.schedule();
  }

  jumpToEnd() { this.setFollow(true); }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    const n = this.view.length;
    const booted = this.bootLines;
    this.countEl.textContent = `${n} of ${this.texts.length} lines` + (!this.show.boot && booted ? ` (${booted} boot lines folded)` : '');
    this.spacer.style.height = `${n * this.rowH}px`;
    if (this.follow) this.scroll.scrollTop = this.scroll.scrollHeight;
    const top = this.scroll.scrollTop;
    const first = Math.max(0, Math.floor(top / this.rowH) - OVERSCAN);
    const count = Math.min(n - first, Math.ceil((this.scroll.clientHeight || 600) / this.rowH) + 2 * OVERSCAN);
    this.body.style.transform = `translateY(${first * this.rowH}px)`;
    while (this.rows.length < count) {
      const r = h('div', { class: 'log-row' });
      this.rows.push(r);
      this.body.append(r);
    }
    for (let k = 0; k < this.rows.length; k++) {
      const row = this.rows[k];
      if (k >= count) { row.hidden = true; row.dataset.i = ''; continue; }
      row.hidden = false;
      const i = this.view[first + k];
      const key = `${i}:${this.texts[i].length}`;
      if (row.dataset.i === key) continue;
      row.dataset.i = key;
      row.className = `log-row lt-${TYPES[this.types[i]]}`;
      row.replaceChildren();
      for (const [text, cls] of parseAnsi(this.texts[i])) {
        if (cls) row.append(h('span', { class: cls, text }));
        else row.append(document.createTextNode(text));
      }
    }
  }

  text() {
    return this.texts.map((t, i) => `${TYPES[this.types[i]]}\t${t.replace(/\x1b\[[0-9;?]*[@-~]/g, '')}`).join('\n') + '\n';
  }
}
