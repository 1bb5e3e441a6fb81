// docs/dashboard.md "Mount it", run as written (against dist/, on a free port), and the demo's dashboard.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/nginx.js';

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The first ```js block after `## Mount it`, importing the built package, listening on port 0. */
function mountSnippet(): string {
  const guide = readFileSync(new URL('../../docs/dashboard.md', import.meta.url), 'utf8');
  const code = /```js\n([\s\S]*?)```/.exec(guide.slice(guide.indexOf('## Mount it')))![1]!;
  expect(code).toContain('server.listen(3000)');
  const dist = (file: string) => new URL(`../../dist/${file}`, import.meta.url).href;
  return code
    .replace("from 'websocket-stabilizer/dashboard'", `from '${dist('dashboard.js')}'`)
    .replace("from 'websocket-stabilizer'", `from '${dist('index.js')}'`)
    .replace(
      'server.listen(3000)',
      'server.listen(0, "127.0.0.1", () => console.log(server.address().port))',
    );
}

async function run(file: string, env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise<number>((resolve) => child.stdout!.once('data', (d) => resolve(Number(String(d)))));
}

describe('docs/dashboard.md', () => {
  it('"Mount it" serves the dashboard behind its token, as written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-docs-'));
    dirs.push(dir);
    const file = join(dir, 'server.mjs');
    writeFileSync(file, mountSnippet());
    const token = 'docs-dashboard-token-0123456789';
    const port = await run(file, { DASHBOARD_TOKEN: token });
    const base = `http://127.0.0.1:${port}`;
    const refused = await fetch(`${base}/dashboard`, { signal: AbortSignal.timeout(3000) });
    expect(refused.status).toBe(401);
    await refused.text();
    const page = await fetch(`${base}/dashboard`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(3000),
    });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('EventSource');
    const other = await fetch(`${base}/other`, { signal: AbortSignal.timeout(3000) });
    expect(other.status).toBe(404);
    await other.text();
  });

  it('the demo serves it at /dashboard to this machine, and its page links to it', async () => {
    const html = readFileSync(new URL('../../examples/chat/index.html', import.meta.url), 'utf8');
    expect(html).toContain('href="/dashboard"');
    const port = await freePort();
    const server = new URL('../../examples/chat/server.mjs', import.meta.url).pathname;
    const child = spawn(process.execPath, [server], {
      env: { ...process.env, PORT: String(port), LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    let log = '';
    await new Promise<void>((resolve) =>
      child.stdout!.on('data', (d) => {
        log += String(d);
        if (log.includes('chat demo: open')) resolve();
      }),
    );
    // It says so in its log: loopback requests need no credentials.
    expect(log).toContain('"event":"dashboard.loopback"');
    const page = await fetch(`http://127.0.0.1:${port}/dashboard`, { signal: AbortSignal.timeout(3000) });
    expect(page.status).toBe(200);
    await page.text();
    const proxied = await fetch(`http://127.0.0.1:${port}/dashboard`, {
      headers: { 'x-forwarded-for': '203.0.113.7' },
      signal: AbortSignal.timeout(3000),
    });
    expect(proxied.status).toBe(401);
    await proxied.text();
  });
});
