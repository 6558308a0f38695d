// Browser tests of the web dashboard (issue 17): Playwright drives Debian's
// chromium, headless, against a real `qsimd all` running the tiny guest, and
// a second `qsimd api` with tokens for the login. TAP output; screenshots of
// each page go to OUTDIR.
//
// Usage: node test-dashboard.mjs QSIMD SOURCE_ROOT OUTDIR

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const [QSIMD, SRC, OUTDIR] = process.argv.slice(2);
const CHROMIUM = process.env.QSIM_CHROMIUM || '/usr/bin/chromium';
const IMAGES = path.join(SRC, 'vm_images');
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
// hang guards only: a loaded 2-core TCG host is slow
const LONG = 180_000;

let n = 0, failed = 0;
function tap(ok, what, detail = '') {
  n++;
  if (ok) console.log(`ok ${n} - ${what}`);
  else {
    failed++;
    console.log(`not ok ${n} - ${what}`);
    for (const l of String(detail).split('\n').slice(0, 30)) console.log(`# ${l}`);
  }
}
async function check(what, fn) {
  try { await fn(); tap(true, what); } catch (e) { tap(false, what, e.stack || e); }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

if (!fs.existsSync(path.join(IMAGES, 'tiny.qcow2'))) {
  if (process.env.QSIM_REQUIRE_VM) { console.log('Bail out! tiny guest image missing'); process.exit(1); }
  console.log('1..0 # SKIP tiny guest image not built');
  process.exit(0);
}
if (!fs.existsSync(CHROMIUM)) {
  if (process.env.QSIM_REQUIRE_VM) { console.log(`Bail out! ${CHROMIUM} missing (data/install-deps.sh installs chromium)`); process.exit(1); }
  console.log(`1..0 # SKIP ${CHROMIUM} not installed`);
  process.exit(0);
}

const freePort = () => new Promise((res) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qsim-ui-'));
const children = [];

async function startQsimd(name, mode, extra) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(path.join(dir, 'configs'), { recursive: true });
  fs.copyFileSync(path.join(SRC, 'vm_configs', 'tiny.conf'), path.join(dir, 'configs', 'tiny.conf'));
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QSIM_') && !k.startsWith('SQLITE_SIM_')));
  Object.assign(env, {
    QSIM_DB_PATH: path.join(dir, 'qsim.db'), QSIM_API_PORT: String(port), QSIM_VM_IMAGES_DIR: IMAGES,
    QSIM_VM_CONFIG_DIR: path.join(dir, 'configs'), QSIM_RUN_DIR: path.join(dir, 'run'), QSIM_STATE_DIR: path.join(dir, 'state'),
    QSIM_AGENT_COUNT: '2', QSIM_MAX_CONCURRENT_VMS: '2', QSIM_LOG_LEVEL: 'INFO', ...extra,
  });
  if (process.env.QSIM_REQUIRE_VM) env.QSIM_REQUIRE_VM = process.env.QSIM_REQUIRE_VM;
  const log = fs.openSync(path.join(dir, 'qsimd.log'), 'w');
  const child = spawn(QSIMD, [mode], { env, stdio: ['ignore', log, log] });
  children.push(child);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try { const r = await fetch(`${base}/health`); if (r.ok) return { base, dir, child, env }; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name}: qsimd did not answer /health; log:\n${fs.readFileSync(path.join(dir, 'qsimd.log'), 'utf8').slice(-3000)}`);
}

async function post(base, commands, timeout = 120, token, artifacts) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(`${base}/requests`, { method: 'POST', headers, body: JSON.stringify({ vm_name: 'tiny', commands, timeout, artifacts }) });
  if (r.status !== 201) throw new Error(`POST /requests: ${r.status} ${await r.text()}`);
  return (await r.json()).uuid;
}

async function getReq(base, uuid) { return (await fetch(`${base}/requests/${uuid}`)).json(); }

const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

// Downloads the artifact NAME from a request page (fetch with the token, then a
// Blob): the saved bytes must hash to the sha256 the page shows.
async function checkArtifactDownload(page, name, outName) {
  const row = page.locator('table.artifacts tr', { has: page.locator('td.art-name > span', { hasText: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
  const shown = await row.locator('.sha summary').getAttribute('title');
  assert(/^[0-9a-f]{64}$/.test(shown || ''), `sha256 shown for ${name}: ${shown}`);
  const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: `Download ${name}` }).click()]);
  const saved = path.join(OUTDIR, outName);
  await download.saveAs(saved);
  assert(sha256(saved) === shown, `downloaded ${name} hashes to ${sha256(saved)}, the page shows ${shown}`);
  return { download, saved };
}

let browser;
const pageState = new WeakMap();

// A page that records dialogs, CSP violations, page errors and the
// guest-controlled marker an injected script would set.
async function newPage(ctx) {
  const page = await ctx.newPage();
  const st = { dialogs: [], errors: [] };
  pageState.set(page, st);
  page.on('dialog', (d) => { st.dialogs.push(`${d.type()}: ${d.message()}`); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => st.errors.push(String(e)));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
  return page;
}

async function pageChecks(page, name) {
  await page.screenshot({ path: path.join(OUTDIR, `dashboard-${name}.png`), fullPage: true });
  const csp = await page.evaluate(() => window.__csp);
  assert(csp.length === 0, `CSP violations on ${name}: ${csp.join('; ')}`);
  const st = pageState.get(page);
  assert(st.errors.length === 0, `page errors on ${name}: ${st.errors.join('; ')}`);
  await page.evaluate(AXE + '\n;0');
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert(bad.length === 0, `axe on ${name}: ${bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((x) => x.target.join(' ')).join(', ')}`).join('\n')}`);
}

try {
  fs.mkdirSync(OUTDIR, { recursive: true });
  const [a, b] = await Promise.all([
    startQsimd('all', 'all', {}),
    // login: a second server with tokens; it needs no agent
    startQsimd('auth', 'api', { QSIM_API_TOKENS: 'ui-test-token' }),
  ]);
  // the agents of the token server run in a process of their own: what the API streams
  // from them comes through the database, not through in-process signals
  {
    const log = fs.openSync(path.join(b.dir, 'agents.log'), 'w');
    children.push(spawn(QSIMD, ['agents'], { env: b.env, stdio: ['ignore', log, log] }));
  }
  console.log(`# qsimd all on ${a.base}, qsimd api (tokens) + qsimd agents on ${b.base}`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  ctx.setDefaultTimeout(LONG);

  await check('/ redirects to the dashboard, with the strict headers', async () => {
    const page = await newPage(ctx);
    const resp = await page.goto(`${a.base}/`);
    assert(page.url().startsWith(`${a.base}/ui/`), `landed on ${page.url()}`);
    const hd = resp.headers();
    assert(/default-src 'self'/.test(hd['content-security-policy'] || ''), 'CSP missing');
    assert(!/unsafe-inline/.test(hd['content-security-policy']), 'CSP allows inline');
    assert(hd['x-frame-options'] === 'DENY', 'X-Frame-Options');
    assert(hd['referrer-policy'] === 'no-referrer', 'Referrer-Policy');
    assert(hd['x-content-type-options'] === 'nosniff', 'nosniff');
    await page.getByRole('heading', { name: 'Requests' }).waitFor();
    await page.close();
  });

  let submitted;
  await check('submit from the form and watch the live log reach done', async () => {
    const page = await newPage(ctx);
    await page.goto(`${a.base}/ui/#/submit`);
    await page.getByLabel('VM').selectOption('tiny');
    await page.getByLabel(/Commands/).fill('echo hello-from-the-form; printf "\\033[32mgreen\\033[0m plain\\n"; echo to-stderr >&2; for i in 1 2 3; do echo line $i; done; ' +
      "mkdir -p /out && seq 1 500 > /out/result.txt && echo evil > '/out/<img src=x onerror=alert(9)>.txt' && ln -s /etc/passwd /out/link");
    await page.getByLabel(/Timeout/).fill('120');
    await page.getByLabel(/Artifacts to collect/).fill('/out/*\n');
    await pageChecks(page, 'submit');
    await page.getByRole('button', { name: 'Submit' }).click();
    await page.waitForURL(/#\/requests\/[0-9a-f-]{36}$/);
    submitted = page.url().split('/').pop();
    await page.locator('h1 .chip', { hasText: 'done' }).waitFor();
    await page.locator('.log-row.lt-stdout', { hasText: 'hello-from-the-form' }).waitFor();
    await page.locator('.log-row.lt-stderr', { hasText: 'to-stderr' }).waitFor();
    const green = await page.locator('.log-row span.a-fg2').first().textContent();
    assert(green === 'green', `ANSI green span holds ${JSON.stringify(green)}`);
    assert((await page.locator('.log-row', { hasText: '\u001b' }).count()) === 0, 'raw escape shown');
    await page.locator('.timeline', { hasText: 'ready' }).waitFor();
    await pageChecks(page, 'request');
    // search, folding and the download, from the keyboard where a user would
    const rowsShown = () => page.locator('.log-row:not([hidden])').count();
    await page.getByLabel('Search the log').fill('line 2');
    await page.waitForFunction(() => document.querySelectorAll('.log-row:not([hidden])').length === 1);
    assert((await page.locator('.log-row:not([hidden])').first().textContent()) === 'line 2', 'search shows the wrong line');
    await page.getByLabel('Search the log').fill('');
    const before = await rowsShown();
    await page.getByLabel('Boot lines').focus();
    await page.keyboard.press('Space');
    await page.waitForFunction((n) => document.querySelectorAll('.log-row:not([hidden])').length > n, before);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download log' }).click()]);
    const saved = path.join(OUTDIR, 'downloaded.log');
    await download.saveAs(saved);
    const text = fs.readFileSync(saved, 'utf8');
    assert(text.includes('stdout\thello-from-the-form') && text.includes('stderr\tto-stderr'), 'download lacks the output');
    await page.close();
  });

  await check('artifacts asked for in the form: listed, hostile name as text, downloads byte-exact', async () => {
    const page = await newPage(ctx);
    await page.goto(`${a.base}/ui/#/requests/${submitted}`);
    await page.locator('.asked code', { hasText: '/out/*' }).waitFor();
    await page.locator('table.artifacts td.art-name > span', { hasText: 'out/result.txt' }).waitFor();
    const list = await (await fetch(`${a.base}/requests/${submitted}/artifacts`)).json();
    assert(list.length === 3, `API lists ${JSON.stringify(list)}`);
    const hostile = 'out/<img src=x onerror=alert(9)>.txt';
    assert((await page.locator('td.art-name > span', { hasText: hostile }).count()) === 1, 'hostile name not shown as text');
    assert((await page.locator('main img').count()) === 0, 'markup from an artifact name reached the DOM');
    await page.locator('td.art-name', { hasText: 'out/link' }).locator('span.muted', { hasText: '/etc/passwd' }).waitFor();
    const { saved } = await checkArtifactDownload(page, 'out/result.txt', 'result.txt');
    assert(fs.readFileSync(saved, 'utf8').startsWith('1\n2\n3\n'), 'downloaded result.txt has the wrong content');
    assert(sha256(saved) === list.find((x) => x.name === 'out/result.txt').sha256, 'the page and the API disagree on the sha256');
    const { download } = await checkArtifactDownload(page, hostile, 'hostile.txt');
    const fname = download.suggestedFilename();
    assert(!/[<>/\\"]/.test(fname) && fname.endsWith('.txt'), `unsafe download name ${JSON.stringify(fname)}`);
    const [tgz] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /as \.tar\.gz/ }).click()]);
    const tarPath = path.join(OUTDIR, 'artifacts.tar.gz');
    await tgz.saveAs(tarPath);
    const head = fs.readFileSync(tarPath).subarray(0, 2);
    assert(head[0] === 0x1f && head[1] === 0x8b, 'artifacts.tar.gz is not gzip');
    await pageChecks(page, 'request-artifacts');
    await page.waitForTimeout(200);
    const st = pageState.get(page);
    assert(st.dialogs.length === 0, `dialogs: ${st.dialogs.join(', ')}`);
    await page.close();
  });

  await check('hostile guest output is shown as text and runs nothing', async () => {
    const uuid = await post(a.base, "echo '<img src=x onerror=alert(1)>'; echo '<script>alert(2)</script>'; echo '<b onmouseover=alert(3)>bold</b>'; seq 1 3000");
    const page = await newPage(ctx);
    await page.goto(`${a.base}/ui/#/requests/${uuid}`);
    await page.locator('h1 .chip', { hasText: 'done' }).waitFor();
    // virtualised: thousands of lines, a screenful of rows; follow mode shows the end
    await page.locator('.log-row.lt-stdout', { hasText: /^3000$/ }).waitFor();
    const rows = await page.locator('.log-row').count();
    assert(rows < 200, `${rows} row elements for 3000 lines`);
    await page.locator('.log-scroll').evaluate((el) => { el.scrollTop = 0; });
    await page.locator('.log-row.lt-stdout', { hasText: '<img src=x onerror=alert(1)>' }).waitFor();
    await page.locator('.log-row.lt-stdout', { hasText: '<script>alert(2)</script>' }).waitFor();
    assert((await page.locator('main img, main script, .log-row b').count()) === 0, 'markup from the guest reached the DOM');
    assert(!(await page.getByLabel('Follow').isChecked()), 'follow stayed on after scrolling up');
    await page.getByRole('button', { name: 'Jump to end' }).click();
    await page.locator('.log-row.lt-stdout', { hasText: /^3000$/ }).waitFor();
    assert(await page.getByLabel('Follow').isChecked(), 'Jump to end did not turn follow on');
    await page.goto(`${a.base}/ui/#/requests`);
    await page.locator('td.cmd', { hasText: '<img src=x onerror=alert(1)>' }).waitFor();
    assert((await page.locator('main img').count()) === 0, 'markup from commands reached the list');
    await page.waitForTimeout(300);
    const st = pageState.get(page);
    assert(st.dialogs.length === 0, `dialogs: ${st.dialogs.join(', ')}`);
    await page.close();
  });

  await check('a new request and its status changes appear in the list without reload', async () => {
    const page = await newPage(ctx);
    await page.goto(`${a.base}/ui/#/requests`);
    await page.getByRole('heading', { name: 'Requests' }).waitFor();
    await page.evaluate(() => { window.__noReload = true; });
    const uuid = await post(a.base, 'sleep 1; echo live-list');
    const row = page.locator(`tr[data-uuid="${uuid}"]`);
    await row.waitFor();
    await row.locator('.chip', { hasText: 'done' }).waitFor();
    assert(await page.evaluate(() => window.__noReload === true), 'the page was reloaded');
    await pageChecks(page, 'requests');
    await page.close();
  });

  await check('hold, resume and cancel a running request from its page', async () => {
    const uuid = await post(a.base, 'echo started-sleeping; sleep 300', 600);
    const page = await newPage(ctx);
    await page.goto(`${a.base}/ui/#/requests/${uuid}`);
    await page.locator('.log-row.lt-stdout', { hasText: 'started-sleeping' }).waitFor();
    await page.locator('h1 .chip', { hasText: 'running' }).waitFor();
    await page.getByRole('button', { name: 'Hold' }).click();
    await page.locator('h1 .chip', { hasText: 'hold' }).waitFor();
    assert((await getReq(a.base, uuid)).status === 'hold', 'not held');
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.locator('h1 .chip', { hasText: 'running' }).waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('h1 .chip', { hasText: 'cancelled' }).waitFor();
    const r = await getReq(a.base, uuid);
    assert(r.status === 'cancelled', `status ${r.status}`);
    await page.close();
  });

  await check('VMs and Health pages render', async () => {
    const page = await newPage(ctx);
    await page.goto(`${a.base}/ui/#/vms`);
    await page.getByRole('heading', { name: /^tiny/ }).waitFor();
    await pageChecks(page, 'vms');
    await page.getByRole('button', { name: 'Prepare template' }).click();
    await page.getByText(/Prepare requested on /).waitFor();
    await page.goto(`${a.base}/ui/#/health`);
    await page.locator('.chart svg').first().waitFor();
    await page.locator('.tile', { hasText: 'Running VMs' }).waitFor();
    await pageChecks(page, 'health');
    await page.close();
  });

  await check('narrow screen (360 px) and dark theme render without overflow', async () => {
    const small = await browser.newContext({ viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
    small.setDefaultTimeout(LONG);
    const page = await newPage(small);
    await page.goto(`${a.base}/ui/#/requests/${submitted}`);
    await page.locator('.log-row.lt-stdout', { hasText: 'hello-from-the-form' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 1, `page is ${overflow}px wider than the screen`);
    await pageChecks(page, 'request-360-dark');
    await small.close();
  });

  await check('log in with a token (sessionStorage, header only); live list from a separate qsimd agents', async () => {
    const auth = await browser.newContext();
    auth.setDefaultTimeout(LONG);
    const page = await newPage(auth);
    const seen = [];
    page.on('request', (r) => seen.push(r));
    await page.goto(`${b.base}/ui/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await pageChecks(page, 'login');
    await page.getByLabel('API token').fill('wrong-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token was refused.').waitFor();
    await page.getByLabel('API token').fill('ui-test-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Requests' }).waitFor();
    await page.locator('#live', { hasText: 'live' }).waitFor();
    assert(await page.evaluate(() => sessionStorage.getItem('qsim-token')) === 'ui-test-token', 'token not in sessionStorage');
    assert((await auth.cookies()).length === 0, 'a cookie was set');
    assert(!seen.some((r) => r.url().includes('ui-test-token')), 'the token went into a URL');
    // the stream opened after the login (the one before it got its 401)
    const ev = seen.filter((r) => r.url().endsWith('/events')).pop();
    assert(ev && (await ev.allHeaders()).authorization === 'Bearer ui-test-token', '/events without the bearer header');
    // run by `qsimd agents`, another process: the list still follows it live
    let uuid = null;
    for (let i = 0; i < 300 && !uuid; i++) {
      try { uuid = await post(b.base, 'echo from-the-agents-process; mkdir -p /out && echo token-artifact > /out/t.txt', 120, 'ui-test-token', ['/out/*']); } catch (e) {
        // 422 until the agents have published their VM catalogue
        if (!/422/.test(e.message)) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert(uuid, 'the agents process never published the tiny VM');
    const row = page.locator(`tr[data-uuid="${uuid}"]`);
    await row.waitFor();
    await row.locator('.chip', { hasText: 'done' }).waitFor();
    // an artifact download carries the token in the header, never in the URL
    await page.goto(`${b.base}/ui/#/requests/${uuid}`);
    await page.locator('table.artifacts td.art-name > span', { hasText: 'out/t.txt' }).waitFor();
    const { saved } = await checkArtifactDownload(page, 'out/t.txt', 't.txt');
    assert(fs.readFileSync(saved, 'utf8') === 'token-artifact\n', 'token download has the wrong bytes');
    const got = seen.filter((r) => r.url().includes('/artifacts/out/t.txt')).pop();
    assert(got && (await got.allHeaders()).authorization === 'Bearer ui-test-token', 'artifact fetched without the bearer header');
    assert(!seen.some((r) => r.url().includes('ui-test-token')), 'the token went into a URL');
    assert((await auth.cookies()).length === 0, 'a cookie was set');
    await auth.close();
  });
} catch (e) {
  tap(false, 'setup', e.stack || e);
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) c.kill('SIGTERM');
  const codes = await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(c.exitCode) : c.on('exit', (code) => r(code))))));
  // a clean stop (and, in the ASan build, no leak or error report from the UI's paths)
  tap(codes.every((c) => c === 0), 'each qsimd stops with exit 0 on SIGTERM', `exit codes ${codes.join(', ')}; logs in ${tmp}`);
  if (failed === 0) fs.rmSync(tmp, { recursive: true, force: true });
  else console.log(`# kept ${tmp}`);
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}
