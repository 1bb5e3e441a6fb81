import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { WebSocketConnectionManager, type ManagerEvents } from '../../src/server/index.js';
import { waitFor } from '../helpers/server.js';

type ChatCommand = { type: 'say'; text: string };
type ChatEvent = { type: 'chat'; from: string; text: string };
type User = { name: string };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A typed manager on a real http.Server; `authenticate` takes the user name from the query string. */
async function typedServer(): Promise<{
  manager: WebSocketConnectionManager<ChatCommand, ChatEvent, User>;
  url: string;
}> {
  const manager = new WebSocketConnectionManager<ChatCommand, ChatEvent, User>();
  const server: Server = createServer((_req, res) => void res.writeHead(426).end());
  manager.attach(server, {
    path: '/ws',
    authenticate: (req) => {
      const name = new URL(req.url ?? '/', 'http://x').searchParams.get('name');
      return name ? { data: { name } } : false;
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    await manager.gracefulShutdown({ timeoutMs: 200 });
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { manager, url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws` };
}

function client(url: string): StabilizerClient<ChatEvent, ChatCommand> {
  const c = new StabilizerClient<ChatEvent, ChatCommand>(url, {
    WebSocket: WebSocket as never,
    minDelayMs: 10,
  });
  cleanups.push(async () => c.close());
  return c;
}

describe('typed manager end to end', () => {
  it('authenticate data reaches connect listeners, and a one-line listener that returns a value echoes', async () => {
    const { manager, url } = await typedServer();
    const users = new Map<string, User | undefined>();
    manager.on('connect', (e) => users.set(e.clientId, e.data));
    // Returns the BroadcastResult: a listener may return anything (this was TS2322 before).
    manager.on('message', (e) =>
      manager.broadcast({ type: 'chat', from: users.get(e.clientId)?.name ?? '?', text: e.data.text }),
    );
    const errors: Error[] = [];
    manager.on('error', (e) => void errors.push(e.error));

    const ann = client(`${url}?name=ann`);
    const got: ChatEvent[] = [];
    ann.on('message', (event) => got.push(event));
    await ann.send({ type: 'say', text: 'hi' });
    await waitFor(() => got.length === 1);

    expect(got).toEqual([{ type: 'chat', from: 'ann', text: 'hi' }]);
    expect([...users.values()]).toEqual([{ name: 'ann' }]);
    // The returned value is not mistaken for a failure: no error, the connection stays.
    expect(errors).toEqual([]);
    expect(manager.getConnectionCount()).toBe(1);
  });

  it('a listener that returns a rejecting promise still closes that connection with 1011', async () => {
    const { manager, url } = await typedServer();
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    manager.on('disconnect', (e) => void disconnects.push(e));
    manager.on('message', (e) => Promise.reject(new Error(`refused ${e.data.text}`)));
    const errors: string[] = [];
    manager.on('error', (e) => void errors.push(e.error.message));

    const bob = client(`${url}?name=bob`);
    void bob.send({ type: 'say', text: 'x' });
    await waitFor(() => disconnects.length >= 1);

    expect(disconnects[0]).toMatchObject({ code: 1011, reason: 'handler-error' });
    expect(errors[0]).toBe('refused x');
  });
});
