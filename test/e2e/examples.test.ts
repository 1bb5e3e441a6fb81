import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
// The examples import the built package (dist/); `npm test` builds before it runs vitest.
// @ts-expect-error -- plain ESM example without type declarations
import { createChatServer } from '../../examples/chat/app.mjs';
// @ts-expect-error -- plain ESM example without type declarations
import { createReconnectServer } from '../../examples/reconnect/app.mjs';
import type { WebSocketConnectionManager } from '../../src/server/index.js';
import { closed, openClient, waitFor } from '../helpers/server.js';

type App = { server: Server; manager: WebSocketConnectionManager };
const apps: App[] = [];
const clients: StabilizerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
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
  it('puts plain clients in the lobby, publishes their text there with presence, and serves /stats', async () => {
    const port = await listen(createChatServer() as App);
    const url = `ws://127.0.0.1:${port}/ws`;
    const { got: aliceGot } = await connect(url);
    await waitFor(() => aliceGot.some((m) => m.type === 'welcome'));
    expect(aliceGot.find((m) => m.type === 'welcome')!.rooms).toEqual(['lobby', 'random', 'dev']);
    const { ws: bob, got: bobGot } = await connect(url);
    const lobby = (got: typeof aliceGot) =>
      got.filter((m) => m.type === 'presence' && m.room === 'lobby').at(-1)?.members as
        Array<{ name: string; online: boolean }> | undefined;
    await waitFor(() => lobby(aliceGot)?.length === 2, 'presence with both');
    expect(lobby(aliceGot)!.every((m) => m.online && m.name.startsWith('guest-'))).toBe(true);

    bob.send('hi alice');
    await waitFor(() => aliceGot.some((m) => m.type === 'chat'));
    expect(aliceGot.find((m) => m.type === 'chat')).toMatchObject({ room: 'lobby', text: 'hi alice' });
    await waitFor(() => bobGot.some((m) => m.type === 'chat'), 'sender gets it too');
    // A plain client may name a room it is in; one it is not in is refused, and nobody gets that text.
    bob.send(JSON.stringify({ type: 'say', room: 'dev', text: 'not in dev' }));
    await waitFor(() => bobGot.some((m) => m.type === 'error'), 'refusal');
    expect(bobGot.find((m) => m.type === 'error')!.text).toMatch(/#dev/);
    expect(aliceGot.some((m) => m.text === 'not in dev')).toBe(false);

    const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { connections: number };
    expect(stats.connections).toBe(2);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', reasons: [], connections: 2 });
    expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('StabilizerClient');
    const bundle = await fetch(`http://127.0.0.1:${port}/client.js`);
    expect(bundle.headers.get('content-type')).toBe('text/javascript');
    expect(await bundle.text()).toContain('subscribe');

    bob.close();
    await waitFor(() => lobby(aliceGot)?.length === 1, 'presence without bob');
  });

  it('lets protocol clients subscribe to room: topics only, and publishes to members of the room alone', async () => {
    const { server, manager } = createChatServer() as App;
    const port = await listen({ server, manager });
    const open = (): Promise<StabilizerClient> => {
      const c = new StabilizerClient(`ws://127.0.0.1:${port}/ws`, { WebSocket: WebSocket as never });
      clients.push(c);
      return new Promise((resolve) => c.on('open', () => resolve(c)));
    };
    const alice = await open();
    const bob = await open();
    const got = new Map<StabilizerClient, Array<{ m: Record<string, unknown>; topic?: string }>>();
    for (const c of [alice, bob]) {
      got.set(c, []);
      c.on('message', (m, info) => got.get(c)!.push({ m: m as Record<string, unknown>, topic: info.topic }));
    }
    await waitFor(() => alice.topics.includes('room:lobby'), 'joined to the lobby by the server on connect');

    await alice.subscribe('room:dev');
    await expect(alice.subscribe('secret')).rejects.toMatchObject({ code: 'TOPIC_FORBIDDEN' });
    await expect(alice.subscribe('room:Not Valid')).rejects.toMatchObject({ code: 'TOPIC_FORBIDDEN' });
    await alice.send({ type: 'say', room: 'dev', text: 'dev only' });
    await waitFor(() => got.get(alice)!.some(({ m }) => m.text === 'dev only'), 'alice hears herself');
    expect(got.get(alice)!.find(({ m }) => m.text === 'dev only')!.topic).toBe('room:dev');
    await alice.send({ type: 'say', room: 'lobby', text: 'for everyone' });
    await waitFor(() => got.get(bob)!.some(({ m }) => m.text === 'for everyone'), 'bob hears the lobby');
    expect(got.get(bob)!.some(({ m }) => m.text === 'dev only')).toBe(false);
    expect(manager.getTopicMembers('room:dev')).toEqual([alice.sessionId]);

    // Bob's socket drops: the lobby sees him away (his session waits for a resume), then back.
    const bobInLobby = () =>
      got
        .get(alice)!
        .filter(({ m }) => m.type === 'presence' && m.room === 'lobby')
        .map(({ m }) =>
          (m.members as Array<{ id: string; online: boolean }>).find((p) => p.id === bob.sessionId),
        )
        .at(-1);
    const bobId = bob.sessionId!;
    manager.connections.get(bobId)!.terminate('socket-error');
    await waitFor(() => bobInLobby()?.online === false, 'bob away');
    await waitFor(() => manager.isConnected(bobId), 'bob resumed');
    await waitFor(() => bobInLobby()?.online === true, 'bob back');
    expect(bob.sessionId).toBe(bobId);
    expect(manager.getClientTopics(bobId)).toEqual(['room:lobby']);
    bob.close(); // 1000: his session ends, and he leaves the lobby
    await waitFor(() => bobInLobby() === undefined, 'bob gone');
  });
});

describe('reconnect example', () => {
  it('restores the identity from a token sent in the first message (never the URL), closes 4500 for a replayed or forged one', async () => {
    const port = await listen(createReconnectServer() as App);
    const res = await fetch(`http://127.0.0.1:${port}/token?clientId=user-7`);
    const { clientId, token } = (await res.json()) as { clientId: string; token: string };
    expect(clientId).toBe('user-7');
    const url = `ws://127.0.0.1:${port}/ws`;
    const hello = (t: string) => JSON.stringify({ type: 'hello', token: t });

    const { ws, got } = await connect(url);
    ws.send(hello(token));
    await waitFor(() => got.length === 1);
    expect(got[0]).toMatchObject({ type: 'restored', clientId: 'user-7' });
    expect(typeof got[0]!.token).toBe('string');

    const replay = await openClient(url);
    replay.send(hello(token));
    expect(await closed(replay)).toEqual({ code: 4500, reason: 'TOKEN_REPLAYED' });
    const forged = await openClient(url);
    forged.send(hello('v1.k1.e30.AAAA'));
    expect((await closed(forged)).code).toBe(4500);
    const noHello = await openClient(url);
    noHello.send('hi');
    expect((await closed(noHello)).code).toBe(4500);
    // A token in the URL is not read: without the hello nothing is restored.
    const inUrl = await openClient(`${url}?token=${encodeURIComponent(got[0]!.token as string)}`);
    inUrl.send('{}');
    expect((await closed(inUrl)).code).toBe(4500);

    // The fresh token from the restored connection works once.
    const next = await connect(url);
    next.ws.send(hello(got[0]!.token as string));
    await waitFor(() => next.got.length === 1);
    expect(next.got[0]).toMatchObject({ type: 'restored', clientId: 'user-7' });
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
