// The README's quick start, run as written (against dist/, on a free port): it must answer plain HTTP too.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The first ```js block after `## Quick start`, importing the built package, listening on port 0. */
function quickStart(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const code = /```js\n([\s\S]*?)```/.exec(section)![1]!;
  const dist = new URL('../../dist/index.js', import.meta.url).href;
  expect(code).toContain('server.listen(3000)');
  return code
    .replace("from 'websocket-stabilizer'", `from '${dist}'`)
    .replace(
      'server.listen(3000)',
      'server.listen(0, "127.0.0.1", () => console.log(server.address().port))',
    );
}

describe('README quick start', () => {
  it('answers GET / (no hanging request) and serves WebSocket clients on /ws', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quickstart-'));
    dirs.push(dir);
    const file = join(dir, 'server.mjs');
    writeFileSync(file, quickStart());
    const child = spawn(process.execPath, [file], {
      env: { ...process.env, TOKEN_SECRET: 'quick-start-secret-0123456789abcdef' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const port = await new Promise<number>((resolve) =>
      child.stdout!.once('data', (d) => resolve(Number(String(d)))),
    );
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
    expect(res.status).toBeLessThan(500);
    await res.text();
    const client = new StabilizerClient(`ws://127.0.0.1:${port}/ws`, { WebSocket: WebSocket as never });
    const first = await new Promise<unknown>((resolve) => client.on('message', resolve));
    expect(first).toEqual({ hello: client.sessionId });
    client.close();
  });
});
