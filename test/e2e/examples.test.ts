import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
// The examples import the built package (dist/); `npm test` builds before it runs vitest.
// @ts-expect-error -- plain ESM example without type declarations
import { createChatServer } from '../../examples/chat/app.mjs';
// @ts-expect-error -- plain ESM example without type declarations
import { createReconnectServer } from '../../examples/reconnect/app.mjs';
import type { WebSocketConnectionManager } from '../../src/server/index.js';
import { closed, openClient, waitFor } from '../helpers/server.js';

type App = { server: Server; manager: WebSocketConnectionManager };
const apps: App[] = [];
afterEach(async () => {
  for (const { server, manager } of apps.splice(0)) {
    await manager.gracefulShutdown({ timeoutMs: 200 });
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

async function listen(app: App): Promise<number> {
  apps.push(app);
  await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
  return (app.server.address() as AddressInfo).port;
}

/** Open a client with its inbox attached before the upgrade completes (the first message may come with the 101). */
async function connect(url: string): Promise<{ ws: WebSocket; got: Array<Record<string, unknown>> }> {
  const ws = new WebSocket(url);
  const got: Array<Record<string, unknown>> = [];
  ws.on('message', (d) => got.push(JSON.parse(d.toString()) as Record<string, unknown>));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, got };
}

describe('chat demo', () => {
  it('broadcasts text from plain clients as JSON, with join and leave notices, and serves /stats', async () => {
    const port = await listen(createChatServer() as App);
    const url = `ws://127.0.0.1:${port}/ws`;
    const { got: aliceGot } = await connect(url);
    await waitFor(() => aliceGot.some((m) => m.type === 'welcome'));
    const { ws: bob, got: bobGot } = await connect(url);
    await waitFor(() => aliceGot.some((m) => m.type === 'join'), 'join notice');

    bob.send('hi alice');
    await waitFor(() => aliceGot.some((m) => m.type === 'chat'));
    const chat = aliceGot.find((m) => m.type === 'chat')!;
    expect(chat.text).toBe('hi alice');
    await waitFor(() => bobGot.some((m) => m.type === 'chat'), 'sender gets it too');

    const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { connections: number };
    expect(stats.connections).toBe(2);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', reasons: [], connections: 2 });
    expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('StabilizerClient');

    bob.close();
    await waitFor(() => aliceGot.some((m) => m.type === 'leave'), 'leave notice');
    expect(aliceGot.find((m) => m.type === 'leave')!.online).toBe(1);
  });
});

describe('reconnect example', () => {
  it('restores the identity from a token, and closes 4500 for a replayed or forged one', async () => {
    const port = await listen(createReconnectServer() as App);
    const res = await fetch(`http://127.0.0.1:${port}/token?clientId=user-7`);
    const { clientId, token } = (await res.json()) as { clientId: string; token: string };
    expect(clientId).toBe('user-7');

    const { got } = await connect(`ws://127.0.0.1:${port}/ws?token=${encodeURIComponent(token)}`);
    await waitFor(() => got.length === 1);
    expect(got[0]).toMatchObject({ type: 'restored', clientId: 'user-7' });
    expect(typeof got[0]!.token).toBe('string');

    const replay = await openClient(`ws://127.0.0.1:${port}/ws?token=${encodeURIComponent(token)}`);
    expect(await closed(replay)).toEqual({ code: 4500, reason: 'TOKEN_REPLAYED' });
    const forged = await openClient(`ws://127.0.0.1:${port}/ws?token=v1.k1.e30.AAAA`);
    expect((await closed(forged)).code).toBe(4500);

    // The fresh token from the restored connection works once.
    const { got: nextGot } = await connect(
      `ws://127.0.0.1:${port}/ws?token=${encodeURIComponent(got[0]!.token as string)}`,
    );
    await waitFor(() => nextGot.length === 1);
    expect(nextGot[0]).toMatchObject({ type: 'restored', clientId: 'user-7' });
  });
});

describe('deploy/kubernetes.yaml', () => {
  const manifest = readFileSync(new URL('../../deploy/kubernetes.yaml', import.meta.url), 'utf8');
  const server = readFileSync(new URL('../../examples/chat/server.mjs', import.meta.url), 'utf8');
  const num = (text: string, re: RegExp) => Number(re.exec(text)?.[1]);

  it('probes the paths the chat demo answers', async () => {
    const paths = [...manifest.matchAll(/path: (\S+)/g)].map((m) => m[1]!);
    expect(paths.sort()).toEqual(['/livez', '/readyz']);
    const port = await listen(createChatServer() as App);
    for (const path of paths) expect((await fetch(`http://127.0.0.1:${port}${path}`)).status).toBe(200);
  });

  it('gives the pod enough grace for preStop, the drain delay and the shutdown timeout', () => {
    const graceS = num(manifest, /terminationGracePeriodSeconds: (\d+)/);
    const preStopS = num(manifest, /preStop:[\s\S]*?sleep:\s+seconds: (\d+)/);
    const drainMs = num(manifest, /name: DRAIN_DELAY_MS\s+value: '(\d+)'/);
    const shutdownMs = num(server, /timeoutMs: (\d+)/);
    expect([graceS, preStopS, drainMs, shutdownMs].every((n) => n > 0)).toBe(true);
    expect(preStopS * 1000 + drainMs + shutdownMs + 5000).toBeLessThanOrEqual(graceS * 1000);
  });
});
