import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

// Each test gets its own redis-server: these tests crash, pause and restart it.
let redis: TestRedis | undefined;
beforeEach(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  await closeAllNodes();
  await redis?.stop();
});
afterAll(async () => {
  await redis?.stop();
});

const clients: ProtocolClient[] = [];
function client(urls: string[]): ProtocolClient {
  const c = new ProtocolClient({ nextUrl: (i) => urls[i % urls.length]! });
  clients.push(c);
  return c;
}

describe('Redis failures', () => {
  it('Redis restarts empty: degraded, history lost, every session resumes fresh (unknown-session), never partially', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis!.url, prefix);
    const b = await startNode(redis!.url, prefix);
    const events: string[] = [];
    a.backend.on('degraded', () => void events.push('degraded'));
    a.backend.on('history-lost', () => void events.push('history-lost'));
    a.backend.on('recovered', () => void events.push('recovered'));
    const cs = [client([a.url, b.url]), client([b.url, a.url]), client([a.url, b.url])];
    for (const c of cs) await c.connect();
    for (let i = 1; i <= 10; i++) await a.manager.broadcast(i).cluster;
    await until(() => cs.every((c) => c.all.length === 10), 'before the crash');
    const epoch = a.backend.epoch;

    await redis!.restart();
    const during = a.manager.broadcast('during the outage');
    await until(() => events.includes('history-lost'), 'history lost detected');
    await expect(during.cluster).rejects.toMatchObject({ code: 'HISTORY_LOST' });
    await until(() => !a.backend.degraded && !b.backend.degraded, 'recovered');
    expect(a.backend.epoch).not.toBe(epoch);
    expect(b.backend.epoch).toBe(a.backend.epoch);
    expect(events[0]).toBe('degraded');

    // Every client was closed with 1012 and came back fresh, with a reason: the history is gone.
    await until(() => cs.every((c) => c.welcomes.length === 2 && c.connected), 'reconnected', 15_000);
    for (const c of cs) {
      expect(c.closes).toContain(1012);
      expect(c.welcomes[1]).toMatchObject({ resume: 'fresh', reason: 'unknown-session', lastSeq: 0 });
    }
    await until(() => a.manager.getConnectionCount() + b.manager.getConnectionCount() === 3, 'registered');
    for (let i = 11; i <= 15; i++) await b.manager.broadcast(i).cluster;
    await until(() => cs.every((c) => c.received[1]?.length === 5), 'after the restart');
    for (const c of cs) {
      expect(c.received).toEqual([
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        [11, 12, 13, 14, 15],
      ]);
      expect(c.anomalies).toEqual([]);
    }
  });

  it('the subscriber connection drops: missed messages are fetched from the streams, in order, once', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis!.url, prefix);
    const b = await startNode(redis!.url, prefix);
    const c = client([a.url]);
    await c.connect();
    const admin = new Redis(redis!.url);
    try {
      await b.manager.broadcast(0).cluster;
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      for (let i = 1; i <= 20; i++) await b.manager.broadcast(i).cluster;
      await until(() => c.all.length === 21, 'every message after the resubscribe');
      expect(c.all).toEqual(Array.from({ length: 21 }, (_, i) => i));
      expect(c.anomalies).toEqual([]);
      expect(c.closes).toEqual([]);
    } finally {
      admin.disconnect();
    }
  });

  it('Redis stalls (SIGSTOP): degraded, local clients stay connected, queued messages arrive after it resumes', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis!.url, prefix);
    const b = await startNode(redis!.url, prefix);
    const events: string[] = [];
    a.backend.on('degraded', (e) => void events.push(`degraded:${e.reason}`));
    a.backend.on('recovered', () => void events.push('recovered'));
    const ca = client([a.url]);
    const cb = client([b.url]);
    await ca.connect();
    await cb.connect();
    ca.send('before');
    await until(() => ca.lastAckedClientSeq === 1, 'ack before');

    redis!.pause();
    await until(() => a.backend.degraded, 'degraded', 5000);
    expect(events[0]).toMatch(/^degraded:/);
    const queued = a.manager.broadcast('queued');
    const local = a.manager.broadcast('volatile while degraded', { volatile: true });
    expect(local.delivered).toBe(1); // served locally at once
    ca.send('during');
    await new Promise((r) => setTimeout(r, 300));
    expect(ca.lastAckedClientSeq).toBe(1); // not durable yet: no ack
    expect(ca.connected).toBe(true);

    redis!.resume();
    await until(() => !a.backend.degraded, 'recovered', 10_000);
    expect(await queued.cluster).toEqual({ offset: 1, nodes: 2 });
    await until(() => ca.all.length === 1 && cb.all.length === 1, 'queued broadcast delivered');
    await until(() => ca.lastAckedClientSeq === 2, 'ack after recovery');
    expect(ca.volatile).toEqual(['volatile while degraded']);
    expect(events).toContain('recovered');
    expect([...ca.anomalies, ...cb.anomalies]).toEqual([]);
  });

  it('a resume while Redis is down is refused with a retryable close, and succeeds once it is back', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis!.url, prefix);
    const c = client([a.url]);
    await c.connect();
    await a.manager.broadcast('x').cluster;
    await until(() => c.all.length === 1, 'message');
    redis!.pause();
    await until(() => a.backend.degraded, 'degraded', 5000);
    c.drop();
    await until(() => c.closes.includes(1011), 'refused resume', 5000);
    redis!.resume();
    await until(() => c.welcomes.length === 2, 'resumed', 15_000);
    expect(c.welcomes[1]).toMatchObject({ resume: 'resumed' });
    expect(c.topicOutcomes[1]).toEqual({ c: '$all', o: 1, resume: 'resumed' });
    expect(c.anomalies).toEqual([]);
  });
});
