import { WebSocket } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
const clients: ProtocolClient[] = [];
const plain: WebSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  for (const ws of plain.splice(0)) ws.terminate();
  await closeAllNodes();
});

function client(urls: string[], reconnect = true): ProtocolClient {
  const c = new ProtocolClient({ nextUrl: (i) => urls[i % urls.length]!, reconnect });
  clients.push(c);
  return c;
}

/** The same session, continued by a new client object pointed at other URLs. */
function continueOn(c: ProtocolClient, urls: string[]): ProtocolClient {
  const next = client(urls);
  Object.assign(next, {
    token: c.token,
    sessionId: c.sessionId,
    lastSeq: c.lastSeq,
    topics: { ...c.topics },
  });
  next.received[0]!.push(...c.all);
  c.stop();
  return next;
}

function openPlain(url: string): Promise<{ ws: WebSocket; got: Array<string | Buffer> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    plain.push(ws);
    const got: Array<string | Buffer> = [];
    ws.on('message', (d, isBinary) => got.push(isBinary ? (d as Buffer) : d.toString()));
    ws.once('open', () => resolve({ ws, got }));
    ws.once('error', reject);
  });
}

describe('sessions across nodes', () => {
  it('trimmed broadcasts make the resume on another node fresh with reason gap for $all, never partial', async () => {
    const prefix = uniquePrefix();
    const config = { replay: { maxMessages: 3 } };
    const a = await startNode(redis.url, prefix, config);
    const b = await startNode(redis.url, prefix, config);
    const c = client([a.url], false);
    const first = await c.connect();
    await a.manager.broadcast(1).cluster;
    await until(() => c.all.length === 1, 'first');
    c.stop();
    await until(() => a.manager.getConnectionCount() === 0, 'detached');
    for (let i = 2; i <= 6; i++) await a.manager.broadcast(i).cluster; // 5 > 3: offset 2 is trimmed
    const next = continueOn(c, [b.url]);
    const w = await next.connect();
    // The session (inbox) resumes; the broadcast topic cannot, and says so: it continues from offset 6.
    expect(w).toMatchObject({ resume: 'resumed', sessionId: first.sessionId });
    expect(next.topicOutcomes).toEqual([{ c: '$all', o: 6, resume: 'fresh', reason: 'gap' }]);
    await b.manager.broadcast(7).cluster;
    await until(() => next.all.length === 2, 'live after the gap');
    expect(next.all).toEqual([1, 7]);
    expect(next.anomalies).toEqual([]);
  });

  it('evicted direct messages make the resume on another node fresh with reason gap, never partial', async () => {
    const prefix = uniquePrefix();
    const config = { replay: { maxMessages: 3 } };
    const a = await startNode(redis.url, prefix, config);
    const b = await startNode(redis.url, prefix, config);
    const c = client([a.url], false);
    const first = await c.connect();
    await a.backend.send(first.sessionId, 1);
    await until(() => c.all.length === 1, 'first');
    c.stop();
    await until(() => a.manager.getConnectionCount() === 0, 'detached');
    for (let i = 2; i <= 6; i++) await a.backend.send(first.sessionId, i); // 5 > 3: message 2 is evicted
    const next = continueOn(c, [b.url]);
    const w = await next.connect();
    expect(w).toMatchObject({ resume: 'fresh', reason: 'gap', lastSeq: 0 });
    expect(w.sessionId).not.toBe(first.sessionId);
    expect(next.anomalies).toEqual([]);
    // Once the client confirms the welcome (any frame), the old session is gone everywhere.
    next.ws!.send('{"t":"ping"}');
    let outcome: unknown;
    for (let i = 0; i < 50 && !(outcome instanceof Error); i++) {
      outcome = await b.backend.send(first.sessionId, 'x').catch((e: unknown) => e);
      if (!(outcome instanceof Error)) await new Promise((r) => setTimeout(r, 20));
    }
    expect(outcome).toMatchObject({ code: 'UNKNOWN_CLIENT' });
  });

  it('a session past its TTL resumes fresh with reason expired on any node', async () => {
    const prefix = uniquePrefix();
    const config = { sessionTtlMs: 300 };
    const a = await startNode(redis.url, prefix, config);
    const b = await startNode(redis.url, prefix, config);
    const c = client([a.url], false);
    await c.connect();
    c.stop();
    await until(() => a.manager.getConnectionCount() === 0, 'detached');
    await new Promise((r) => setTimeout(r, 900)); // TTL, then a heartbeat reaps it in Redis
    const w = await continueOn(c, [b.url]).connect();
    expect(w).toMatchObject({ resume: 'fresh', reason: 'expired' });
  });

  it('a graceful shutdown keeps the sessions in Redis: clients resume on the remaining node', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const cs = [client([a.url, b.url]), client([a.url, b.url])];
    for (const c of cs) await c.connect();
    for (let i = 1; i <= 5; i++) await b.manager.broadcast(i).cluster;
    await until(() => cs.every((c) => c.all.length === 5), 'before');
    const closing = a.close();
    for (let i = 6; i <= 10; i++) await b.manager.broadcast(i).cluster; // during the handover
    await closing;
    await until(() => cs.every((c) => c.welcomes.length === 2 && c.connected), 'resumed on b');
    for (let i = 11; i <= 12; i++) await b.manager.broadcast(i).cluster;
    await until(() => cs.every((c) => c.all.length === 12), 'all');
    for (const c of cs) {
      expect(c.welcomes[1]).toMatchObject({ resume: 'resumed', url: b.url });
      expect(c.all).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(c.anomalies).toEqual([]);
    }
  });

  it('a session resumed on another node closes its older socket with 4501', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const old = client([a.url], false);
    await old.connect();
    const twin = client([b.url], false);
    Object.assign(twin, { token: old.token, sessionId: old.sessionId, lastSeq: 0 });
    expect((await twin.connect()).resume).toBe('resumed');
    await until(() => old.closes.includes(4501), 'old socket replaced');
    await a.manager.broadcast('after').cluster;
    await until(() => twin.all.length === 1, 'delivered to the new socket');
  });

  it('plain sockets on every node get broadcasts as they are (text, JSON, binary), honouring exclude', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const pa = await openPlain(a.url);
    const pb = await openPlain(b.url);
    const pc = await openPlain(b.url);
    await until(
      () => a.manager.getConnectionCount() === 1 && b.manager.getConnectionCount() === 2,
      'registered',
    );
    const excluded = b.manager.getActiveConnections()[1]!;
    const proto = client([b.url]);
    await proto.connect();
    await a.manager.broadcast('text', { exclude: [excluded] }).cluster;
    await a.manager.broadcast({ json: true }, { exclude: [excluded] }).cluster;
    await b.manager.broadcast(Buffer.from([1, 2, 3]), { exclude: [excluded] }).cluster;
    await until(() => pa.got.length === 3 && pb.got.length + pc.got.length === 3, 'plain deliveries');
    expect(pa.got.slice(0, 2)).toEqual(['text', '{"json":true}']);
    expect(Buffer.from(pa.got[2] as Buffer)).toEqual(Buffer.from([1, 2, 3]));
    expect([...pb.got, ...pc.got]).toHaveLength(3); // one of the two b sockets was excluded
    await until(() => proto.all.length === 2, 'protocol text messages');
    expect(proto.all).toEqual(['text', { json: true }]);
    expect(proto.anomalies).toEqual(['unexpected binary frame']); // the raw test client does not decode binary
  });
});
