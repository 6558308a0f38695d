// Submit: VM, commands, timeout, artifacts to collect; lands on the new request's live page.

import { api } from './api.js';
import { h } from './util.js';

export async function render(main, _p, { go }) {
  const vms = await api('/vms');
  const vm = h('select', { id: 's-vm', name: 'vm_name', required: true },
    vms.map((v) => h('option', { value: v.name, text: v.valid ? v.name : `${v.name} (invalid: ${v.error || 'unusable'})`, disabled: !v.valid })));
  const cmd = h('textarea', { id: 's-cmd', name: 'commands', rows: '8', required: true, spellcheck: false, placeholder: 'echo hello && uname -a' });
  const timeout = h('input', { id: 's-timeout', name: 'timeout', type: 'number', min: '1', step: '1', value: '300', required: true, inputmode: 'numeric' });
  const arts = h('textarea', { id: 's-arts', name: 'artifacts', rows: '3', spellcheck: false, placeholder: '/out/*', 'aria-describedby': 's-arts-hint' });
  const err = h('p', { class: 'error', role: 'alert' });
  const send = h('button', { type: 'submit', class: 'primary', text: 'Submit' });
  const form = h('form', { class: 'card submit', 'aria-labelledby': 'submit-h' },
    h('label', { for: 's-vm', text: 'VM' }), vm,
    h('label', { for: 's-cmd', text: 'Commands (run by the guest shell)' }), cmd,
    h('label', { for: 's-timeout', text: 'Timeout (seconds)' }), timeout,
    h('label', { for: 's-arts', text: 'Artifacts to collect (optional)' }), arts,
    h('p', { id: 's-arts-hint', class: 'muted hint', text: 'One absolute guest path or glob per line, fetched after the commands end.' }),
    h('div', {}, send), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    send.disabled = true;
    try {
      const body = { vm_name: vm.value, commands: cmd.value, timeout: Number(timeout.value) };
      const paths = arts.value.split('\n').map((l) => l.trim()).filter(Boolean);
      if (paths.length) body.artifacts = paths;
      const r = await api('/requests', { method: 'POST', body });
      go(`#/requests/${r.uuid}`);
    } catch (ex) {
      err.textContent = ex.message;
      send.disabled = false;
    }
  });
  main.append(h('h1', { id: 'submit-h', text: 'New request' }), form);
  if (!vms.length) err.textContent = 'No VM is available: no agent has published a catalogue yet.';
}
