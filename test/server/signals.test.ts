import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/server/index.js';
import { closed, waitFor } from '../helpers/server.js';
import { WebSocket } from 'ws';
import { cleanup, client } from './support.js';

const fixture = fileURLToPath(new URL('../fixtures/sigterm-server.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await cleanup();
});

/** Start the fixture; resolves once it prints its port. `lines` collects its JSON output. */
function startChild(env: Record<string, string> = {}): Promise<{
  child: ChildProcess;
  port: number;
  lines: Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}> {
  const child = spawn(process.execPath, [fixture], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  children.push(child);
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        if (line.event === 'listening') resolve({ child, port: line.port as number, lines, exited });
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`fixture exited early (${code}): ${stderr}`)));
  });
}

describe('closeOnSignals (child process)', () => {
  it('on SIGTERM, clients get 1001 with the retry hint and the process exits with code 0', async () => {
    expect(existsSync(dist), 'dist/index.js is missing: run `npm run build` (or `npx tsup`) first').toBe(
      true,
    );
    const { child, port, lines, exited } = await startChild();
    const url = `ws://127.0.0.1:${port}/ws`;
    const a = await client(url);
    const b = await client(url);
    await waitFor(
      () => lines.filter((l) => l.event === 'connect').length === 2,
      'both connected in the child',
    );
    const closes = [closed(a), closed(b)];

    child.kill('SIGTERM');

    for (const c of await Promise.all(closes)) {
      expect(c).toEqual({ code: CloseCode.GoingAway, reason: 'shutting down; retry-after=1500' });
    }
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(lines.find((l) => l.event === 'closed')).toMatchObject({
      stats: { closed: 2, terminated: 0, failed: 0 },
    });
  });

  it('on SIGINT too: clients get 1001 and the process exits with code 0 (the http.Server is closed)', async () => {
    const { child, port, lines, exited } = await startChild();
    const ws = await client(`ws://127.0.0.1:${port}/ws`);
    await waitFor(() => lines.some((l) => l.event === 'connect'), 'connected in the child');
    const c = closed(ws);
    child.kill('SIGINT');
    expect((await c).code).toBe(CloseCode.GoingAway);
    // The fixture never calls process.exit: a listening http.Server would keep it alive.
    expect(await exited).toEqual({ code: 0, signal: null });
  });

  it('on SIGTERM with no clients, the process exits with code 0', async () => {
    const { child, exited, lines } = await startChild();
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(lines.find((l) => l.event === 'closed')).toMatchObject({
      stats: { closed: 0, terminated: 0, failed: 0 },
    });
  });
});

/** GET a path of the child's HTTP server: status and parsed JSON body. */
async function probe(port: number, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.json() };
}

describe('closeOnSignals with drainDelayMs (child process)', () => {
  it('on SIGTERM readiness flips to 503 while clients stay connected, then after the delay they get 1012 with the retry hint', async () => {
    const { child, port, lines, exited } = await startChild({ DRAIN_DELAY_MS: '2000' });
    expect(await probe(port, '/readyz')).toEqual({
      status: 200,
      body: { status: 'ready', reasons: [], connections: 0 },
    });
    const url = `ws://127.0.0.1:${port}/ws`;
    const a = await client(url);
    await waitFor(() => lines.filter((l) => l.event === 'connect').length === 1, 'connected in the child');
    const closes = [closed(a)];

    child.kill('SIGTERM');

    let ready = await probe(port, '/readyz');
    for (let i = 0; i < 200 && ready.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
      ready = await probe(port, '/readyz');
    }
    expect(ready).toEqual({
      status: 503,
      body: { status: 'not-ready', reasons: ['draining'], connections: 1 },
    });
    // Draining: only readiness changed. The client is still connected, liveness holds, and a client that still
    // arrives (the balancer has not caught up yet) is served.
    expect(a.readyState).toBe(WebSocket.OPEN);
    expect(await probe(port, '/livez')).toEqual({ status: 200, body: { status: 'alive' } });
    const late = await client(url);
    closes.push(closed(late));

    for (const c of await Promise.all(closes)) {
      expect(c).toEqual({ code: CloseCode.ServiceRestart, reason: 'restarting; retry-after=1500' });
    }
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(lines.find((l) => l.event === 'closed')).toMatchObject({
      stats: { closed: 2, terminated: 0, failed: 0 },
    });
  });

  it('a second, different signal during the drain starts the shutdown at once', async () => {
    const { child, port, lines, exited } = await startChild({ DRAIN_DELAY_MS: '60000' });
    const a = await client(`ws://127.0.0.1:${port}/ws`);
    await waitFor(() => lines.some((l) => l.event === 'connect'), 'connected in the child');
    const closing = closed(a);
    child.kill('SIGTERM');
    let ready = await probe(port, '/readyz');
    for (let i = 0; i < 200 && ready.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
      ready = await probe(port, '/readyz');
    }
    expect(ready.status).toBe(503);
    expect(a.readyState).toBe(WebSocket.OPEN);

    child.kill('SIGINT'); // without it, the drain would last a minute (longer than this test's timeout)
    expect(await closing).toEqual({ code: CloseCode.ServiceRestart, reason: 'restarting; retry-after=1500' });
    expect(await exited).toEqual({ code: 0, signal: null });
  });
});
