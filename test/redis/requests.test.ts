/**
 * Request/reply on the Redis backend: requests and replies ride the Redis-sequenced session inbox, so they
 * survive drops and resumes there too, and a reply follows its client to another node.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { withRequests } from '../../src/client/request.js';
import { decodePayload, encodePayload } from '../../src/redis/codec.js';
import { Payload } from '../../src/server/index.js';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
const clients: StabilizerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await closeAllNodes();
});

function client(url: string): StabilizerClient {
  const c = new StabilizerClient(url, {
    WebSocket: WebSocket as never,
    minDelayMs: 10,
    maxDelayMs: 50,
  });
  clients.push(c);
  return c;
}

describe('request/reply on Redis', () => {
  it('stores requests and replies so that every node frames them exactly like the original', () => {
    const originals = [
      new Payload({ a: [1, 'two'] }, { q: 7 }),
      new Payload('text\nwith a newline', { r: 3 }),
      new Payload('request handler failed', { r: 4, e: 'HANDLER_ERROR' }),
      new Payload(null, { r: 5 }),
    ];
    for (const original of originals) {
      const copy = decodePayload(encodePayload(original));
      expect(copy.rpc).toEqual(original.rpc);
      expect(copy.reliableText(12)).toBe(original.reliableText(12));
      expect(copy.reliableFrameHead(12).equals(original.reliableFrameHead(12))).toBe(true);
    }
    expect(originals[2]!.reliableText(1)).toBe(
      '{"t":"d","s":1,"p":"request handler failed","r":4,"e":"HANDLER_ERROR"}',
    );
  });

  it('single node: both directions, and a request in flight across a drop is handled and answered once', async () => {
    const node = await startNode(redis.url, uniquePrefix());
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    node.manager.onRequest(async (req) => {
      runs++;
      if (req === 'slow') await gate;
      return { echo: req };
    });
    const c = client(node.url);
    await until(() => c.state === 'open', 'welcome');
    const rpc = withRequests(c);
    rpc.onRequest((q) => `client got ${String(q)}`);
    await expect(rpc.request('fast')).resolves.toEqual({ echo: 'fast' });
    await expect(node.manager.request(c.sessionId!, 'hi')).resolves.toBe('client got hi');

    const id = c.sessionId!;
    const resumed: string[] = [];
    c.on('resumed', ({ sessionId }) => resumed.push(sessionId));
    const slow = rpc.request('slow');
    await until(() => runs === 2, 'handler started');
    node.manager.connections.get(id)!.terminate('socket-error');
    release();
    await expect(slow).resolves.toEqual({ echo: 'slow' });
    expect(resumed).toEqual([id]);
    expect(runs).toBe(2);
  });

  it('two nodes: the reply reaches the client on the node it moved to while the handler ran', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let runs = 0;
    a.manager.onRequest(async () => {
      runs++;
      await gate;
      return 'from a';
    });
    b.manager.onRequest(() => 'from b');
    let target = a.url;
    const c = new StabilizerClient(a.url, { WebSocket: WebSocket as never, minDelayMs: 10, maxDelayMs: 50 });
    clients.push(c);
    // The client's URL is fixed; reconnect it to b by swapping the URL its next socket opens.
    Object.defineProperty(c, 'url', { get: () => target });
    await until(() => c.state === 'open', 'welcome');
    const id = c.sessionId!;
    const rpc = withRequests(c);
    const reply = rpc.request('q');
    await until(() => runs === 1, 'handler started');
    target = b.url;
    const resumed: string[] = [];
    c.on('resumed', ({ sessionId }) => resumed.push(sessionId));
    a.manager.connections.get(id)!.terminate('socket-error');
    await until(() => resumed.length === 1 && b.manager.connections.has(id), 'resumed on b');
    release();
    await expect(reply).resolves.toBe('from a');
    expect(runs).toBe(1);
  });
});
