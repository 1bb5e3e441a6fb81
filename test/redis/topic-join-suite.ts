import { afterEach, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { CloseCode } from '../../src/protocol/index.js';
import type { WebSocketConnectionManager } from '../../src/server/index.js';

/**
 * The local join path against every backend (issue 17, items 1, 2 and 9), with the library's own client:
 * - a `join()` followed at once by publications: every one of them reaches the member exactly once, in order,
 *   after the `sub` that tells it it joined (never a 4502), also when its connection is cut meanwhile and it
 *   resumes on another node;
 * - a join the client learns from a welcome emits `subscribed` before the topic's `stream` and publications;
 * - a publish to a topic without members takes an offset on every backend, and offsets are never reused.
 *
 * `start` gives one node of a set sharing one store: on the memory backend a single server (then "another node"
 * is the same one); on Redis, a new node of the same cluster each call.
 */
export interface JoinSuiteNode {
  manager: WebSocketConnectionManager;
  url: string;
}

export interface JoinSuiteOptions {
  /** The backend's name, in test titles. */
  name: string;
  /** Start the nodes of a new cluster (`count` of them; the memory backend starts one and repeats it). */
  start(count: number): Promise<JoinSuiteNode[]>;
  /** Wait until a publish from `node` is stored (Redis: its `cluster` promise); nothing on memory. */
  stored(report: ReturnType<WebSocketConnectionManager['publish']>): Promise<unknown>;
}

/** A client of the library that records, in order, what the application sees of its topics. */
export interface Recorded {
  client: StabilizerClient<unknown, unknown>;
  /** `subscribed T o`, `stream T resume reason`, `msg T o`, `unsubscribed T reason`, in emit order. */
  log: string[];
  /** Payloads per topic, in arrival order. */
  got: Map<string, unknown[]>;
  closes: number[];
  errors: string[];
}

const clients: Array<StabilizerClient<unknown, unknown>> = [];

export function recordClient(url: string, options: { minDelayMs?: number } = {}): Recorded {
  const delay = options.minDelayMs ?? 1;
  const client = new StabilizerClient<unknown, unknown>(url, {
    WebSocket: WebSocket as never,
    minDelayMs: delay,
    maxDelayMs: delay * 4,
    ackDelayMs: 5,
  });
  clients.push(client);
  const r: Recorded = { client, log: [], got: new Map(), closes: [], errors: [] };
  client.on('subscribed', ({ topic, offset }) => r.log.push(`subscribed ${topic} ${offset}`));
  client.on('unsubscribed', ({ topic, reason }) => r.log.push(`unsubscribed ${topic} ${reason}`));
  client.on('stream', ({ topic, resume, reason }) =>
    r.log.push(`stream ${topic} ${resume}${reason ? ` ${reason}` : ''}`),
  );
  client.on('message', (p, info) => {
    if (!info?.topic || info.topic === '$all') return;
    r.log.push(`msg ${info.topic} ${info.offset}`);
    (r.got.get(info.topic) ?? r.got.set(info.topic, []).get(info.topic)!).push(p);
  });
  client.on('close', ({ code }) => void r.closes.push(code));
  client.on('error', (e) => void r.errors.push(e.code));
  return r;
}

/** Point the client's next connection at another node (the client reconnects to `url`). */
export function moveTo(r: Recorded, url: string): void {
  (r.client as unknown as { url: string }).url = url;
}

export async function until(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function opened(r: Recorded): Promise<string> {
  await until(() => r.client.state === 'open', 'welcome');
  return r.client.sessionId!;
}

/** Exactly `want` on `topic`, in order, after its `subscribed`; no protocol violation, no error. */
function expectExact(r: Recorded, topic: string, want: unknown[]): void {
  expect(r.got.get(topic) ?? []).toEqual(want);
  const sub = r.log.findIndex((l) => l.startsWith(`subscribed ${topic} `));
  const first = r.log.findIndex((l) => l.startsWith(`msg ${topic} `));
  expect(sub).toBeGreaterThanOrEqual(0);
  if (first >= 0) expect(sub).toBeLessThan(first);
  expect(r.closes).not.toContain(CloseCode.ProtocolViolation);
  expect(r.errors).toEqual([]);
}

/** Figures of the cut runs, printed once per suite. */
export interface Figures {
  publications: number;
  lost: number;
  duplicated: number;
}

export function tally(f: Figures, got: unknown[], want: unknown[]): void {
  f.publications += want.length;
  f.lost += want.filter((w) => !got.includes(w)).length;
  f.duplicated += got.length - new Set(got).size;
}

export function topicJoinSuite(o: JoinSuiteOptions): void {
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  it(`${o.name}: join() then publish at once: every publication arrives once, in order, after subscribed`, async () => {
    const [a, b] = await o.start(2);
    const r = recordClient(a!.url);
    const id = await opened(r);
    for (let round = 0; round < 4; round++) {
      const topic = `fresh-${round}`;
      // Published before the join (no member anywhere): never delivered to it.
      await o.stored(b!.manager.publish(topic, 'before'));
      expect(a!.manager.join(id, topic)).toBe(true);
      const want: string[] = [];
      let last: ReturnType<WebSocketConnectionManager['publish']> | undefined;
      for (let n = 1; n <= 10; n++) {
        want.push(`${topic}:${n}`);
        last = a!.manager.publish(topic, `${topic}:${n}`);
      }
      // From another node, once this node's publications are stored (so after the join, in the store's order).
      await o.stored(last!);
      for (let n = 11; n <= 13; n++) {
        want.push(`${topic}:${n}`);
        await o.stored(b!.manager.publish(topic, `${topic}:${n}`));
      }
      await until(
        () => (r.got.get(topic)?.length ?? 0) >= want.length,
        `${topic}: ${want.length} publications`,
      );
      await new Promise((res) => setTimeout(res, 20)); // a duplicate would come right behind
      expectExact(r, topic, want);
      expect(r.log.find((l) => l.startsWith(`subscribed ${topic} `))).toBe(`subscribed ${topic} 1`);
    }
    expect(r.client.state).toBe('open');
    expect(r.closes).toEqual([]);
  });

  it(`${o.name}: two protocol clients and a plain socket joined in one turn: each gets exactly what followed its join`, async () => {
    const [a, b] = await o.start(2);
    const r1 = recordClient(a!.url);
    const r2 = recordClient(a!.url);
    const ids = [await opened(r1), await opened(r2)];
    let plainId: string | undefined;
    const off = a!.manager.on('connect', ({ clientId, mode }) => {
      if (mode === 'plain') plainId = clientId;
    });
    const plain = new WebSocket(a!.url);
    const plainGot: string[] = [];
    plain.on('message', (data) => plainGot.push(data.toString()));
    await until(() => plainId !== undefined, 'plain socket registered');
    off();
    try {
      await o.stored(b!.manager.publish('shared', 'before'));
      for (const id of [...ids, plainId!]) expect(a!.manager.join(id, 'shared')).toBe(true);
      const want = Array.from({ length: 10 }, (_, i) => `shared:${i + 1}`);
      for (const p of want) a!.manager.publish('shared', p);
      await until(
        () => [r1, r2].every((r) => r.got.get('shared')?.length === 10) && plainGot.length === 10,
        'every member got the 10',
      );
      await new Promise((res) => setTimeout(res, 20));
      for (const r of [r1, r2]) expectExact(r, 'shared', want);
      expect(plainGot).toEqual(want);
    } finally {
      plain.terminate();
    }
  });

  it(`${o.name}: join() then publish 10, the connection is cut in flight, resume on another node: all 10 once, in order`, async () => {
    const nodes = await o.start(3);
    const figures: Figures = { publications: 0, lost: 0, duplicated: 0 };
    const cuts = ['at-once', 'client-at-once', 'after-subscribed', 'after-3', 'after-9'] as const;
    let round = 0;
    for (const cut of cuts) {
      for (let rep = 0; rep < 2; rep++, round++) {
        const a = nodes[round % nodes.length]!;
        const b = nodes[(round + 1) % nodes.length]!;
        const r = recordClient(a.url);
        const id = await opened(r);
        const topic = `cut-${round}`;
        await o.stored(b.manager.publish(topic, 'before'));
        moveTo(r, b.url);
        expect(a.manager.join(id, topic)).toBe(true);
        const want = Array.from({ length: 10 }, (_, i) => `${topic}:${i + 1}`);
        for (const p of want) a.manager.publish(topic, p);
        const conn = () => a.manager.connections.get(id);
        if (cut === 'at-once') conn()?.terminate('socket-error');
        else if (cut === 'client-at-once') (r.client as unknown as { _ws?: WebSocket })._ws?.terminate();
        else {
          const at = cut === 'after-subscribed' ? 0 : cut === 'after-3' ? 3 : 9;
          await until(
            () =>
              r.log.some((l) => l.startsWith(`subscribed ${topic} `)) &&
              (r.got.get(topic)?.length ?? 0) >= at,
            `${cut} on ${topic}`,
          );
          conn()?.terminate('socket-error');
        }
        await until(
          () => (r.got.get(topic)?.length ?? 0) >= want.length && r.client.state === 'open',
          `${topic} (${cut}): 10 publications, got ${JSON.stringify(r.got.get(topic))} ${JSON.stringify(r.log)} closes ${JSON.stringify(r.closes)} errors ${JSON.stringify(r.errors)} state ${r.client.state}`,
        );
        await new Promise((res) => setTimeout(res, 20));
        tally(figures, r.got.get(topic) ?? [], want);
        expectExact(r, topic, want);
        r.client.close();
      }
    }
    console.log(`${o.name} join+cut figures:`, JSON.stringify(figures));
    expect(figures).toEqual({ publications: 100, lost: 0, duplicated: 0 });
  });

  it(`${o.name}: a join while the client is away reaches it at resume: subscribed, then stream, then the publications`, async () => {
    const [a, b] = await o.start(2);
    const r = recordClient(a!.url, { minDelayMs: 60_000 }); // reconnects only when told to
    const id = await opened(r);
    a!.manager.join(id, 'mine');
    await until(() => r.client.topics.includes('mine'), 'joined mine');
    a!.manager.connections.get(id)!.terminate('socket-error');
    await until(() => !a!.manager.isConnected(id) && r.client.state === 'reconnecting', 'detached');
    expect(a!.manager.join(id, 'while-away')).toBe(true);
    await o.stored(a!.manager.publish('while-away', 1));
    await o.stored(b!.manager.publish('while-away', 2));
    expect(a!.manager.leave(id, 'mine')).toBe(true);
    r.log.length = 0;
    moveTo(r, b!.url);
    r.client.reconnect();
    await until(() => (r.got.get('while-away')?.length ?? 0) === 2, 'the publications made while away');
    expect(r.log.filter((l) => !l.includes('$all'))).toEqual([
      'subscribed while-away 0',
      'stream while-away resumed',
      'unsubscribed mine server',
      'msg while-away 1',
      'msg while-away 2',
    ]);
    expect(r.client.topics.sort()).toEqual(['$all', 'while-away']);
    expect(r.errors).toEqual([]);
  });

  it(`${o.name}: a publish to a topic without members takes an offset; offsets are never reused`, async () => {
    const [a] = await o.start(1);
    const r = recordClient(a!.url, { minDelayMs: 60_000 });
    const id = await opened(r);
    await o.stored(a!.manager.publish('idle', 'nobody 1'));
    await o.stored(a!.manager.publish('idle', 'nobody 2'));
    a!.manager.join(id, 'idle');
    await until(() => r.log.includes('subscribed idle 2'), `subscribed at 2: ${JSON.stringify(r.log)}`);
    await o.stored(a!.manager.publish('idle', 'three'));
    await until(() => r.log.includes('msg idle 3'), 'offset 3');
    // The last member leaves: the topic keeps its offset.
    a!.manager.leave(id, 'idle');
    await until(() => r.log.includes('unsubscribed idle server'), 'left');
    await o.stored(a!.manager.publish('idle', 'nobody 4'));
    a!.manager.join(id, 'idle');
    await until(() => r.log.includes('subscribed idle 4'), `subscribed at 4: ${JSON.stringify(r.log)}`);
    await o.stored(a!.manager.publish('idle', 'five'));
    await until(() => r.log.includes('msg idle 5'), 'offset 5');

    // Away: the server makes it leave (the last member) and join again, then publishes. The client resumes with
    // its old position (5): what came after the new join must all arrive, none skipped as already seen.
    a!.manager.connections.get(id)!.terminate('socket-error');
    await until(() => !a!.manager.isConnected(id) && r.client.state === 'reconnecting', 'detached');
    a!.manager.leave(id, 'idle');
    a!.manager.join(id, 'idle');
    await until(() => a!.manager.getClientTopics(id).includes('idle'), 'joined while away');
    for (let n = 1; n <= 7; n++) await o.stored(a!.manager.publish('idle', `again ${n}`));
    r.client.reconnect();
    await until(() => (r.got.get('idle')?.length ?? 0) >= 9, `7 more: ${JSON.stringify(r.got.get('idle'))}`);
    await new Promise((res) => setTimeout(res, 20));
    expect(r.got.get('idle')).toEqual(['three', 'five', ...[1, 2, 3, 4, 5, 6, 7].map((n) => `again ${n}`)]);
    expect(r.log.filter((l) => l.startsWith('msg idle')).at(-1)).toBe('msg idle 12');
    expect(r.errors).toEqual([]);
  });
}
