// ANSI SGR colours to class names. Returns [[text, className], ...]; every
// other escape sequence (cursor moves, titles) is dropped, never interpreted.

const CSI = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;

export function parseAnsi(text, state = { fg: null, bg: null, bold: false, ul: false }) {
  const out = [];
  let last = 0;
  const cls = () => [state.fg !== null ? `a-fg${state.fg}` : '', state.bg !== null ? `a-bg${state.bg}` : '',
    state.bold ? 'a-b' : '', state.ul ? 'a-u' : ''].filter(Boolean).join(' ');
  const push = (s) => { if (s) out.push([s, cls()]); };
  if (text.indexOf('\x1b') < 0) { push(text); return out; }
  CSI.lastIndex = 0;
  let m;
  while ((m = CSI.exec(text)) !== null) {
    push(text.slice(last, m.index));
    last = CSI.lastIndex;
    if (m[2] !== 'm') continue;
    const codes = (m[1] || '0').split(';').map((x) => parseInt(x || '0', 10));
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) Object.assign(state, { fg: null, bg: null, bold: false, ul: false });
      else if (c === 1) state.bold = true;
      else if (c === 22) state.bold = false;
      else if (c === 4) state.ul = true;
      else if (c === 24) state.ul = false;
      else if (c >= 30 && c <= 37) state.fg = c - 30;
      else if (c >= 90 && c <= 97) state.fg = c - 90 + 8;
      else if (c === 39) state.fg = null;
      else if (c >= 40 && c <= 47) state.bg = c - 40;
      else if (c >= 100 && c <= 107) state.bg = c - 100 + 8;
      else if (c === 49) state.bg = null;
      else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
        // 256 colours: the first 16 map to the palette, the rest are dropped
        const n = codes[i + 2];
        if (n < 16) state[c === 38 ? 'fg' : 'bg'] = n;
        i += 2;
      } else if ((c === 38 || c === 48) && codes[i + 1] === 2) i += 4;
    }
  }
  push(text.slice(last));
  return out;
}
