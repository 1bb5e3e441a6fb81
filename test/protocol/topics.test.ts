import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/index.js';
import type { ManagerEvents } from '../../src/server/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, collect, openClient, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);

const secret = 'a-test-secret-that-is-long-enough-0123456789';

/** Handshake and wait until the manager has registered the session. */
async function join(url: string, s: { manager: { isConnected(id: string): boolean } }) {
  const r = await RawProtocolClient.handshake(url);
  await waitFor(() => s.manager.isConnected(r.welcome.sessionId), 'register');
  return r;
}

describe('topics', () => {
  it('a server-side join tells the client its start offset; a publication is one frame for every member', async () => {
    const s = await startServer();
    const events: Array<ManagerEvents['join'] | ManagerEvents['leave']> = [];
    s.manager.on('join', (e) => void events.push(e));
    s.manager.on('leave', (e) => void events.push(e));
    const a = await join(s.url, s);
    const b = await join(s.url, s);
    const c = await join(s.url, s);
    // No members: it takes offset 1 (as on Redis, PROTOCOL.md §2.6), nothing is stored, nothing sent.
    s.manager.publish('room', 'before anyone joined');
    expect(s.manager.join(a.welcome.sessionId, 'room')).toBe(true);
    expect(s.manager.join(a.welcome.sessionId, 'room')).toBe(false);
    s.manager.join(b.welcome.sessionId, 'room');
    await a.client.waitFor((f) => f.t === 'sub');
    expect(a.client.frames.find((f) => f.t === 'sub')).toEqual({ t: 'sub', c: 'room', o: 1 });

    const report = s.manager.publish('room', { n: 1 });
    expect(report).toEqual({ delivered: 2, buffered: 0, dropped: 0, failed: [] });
    s.manager.publish('room', { n: 2 });
    await a.client.waitForData(2);
    await b.client.waitForData(2);
    expect(a.client.data).toEqual([
      { c: 'room', o: 2, p: { n: 1 } },
      { c: 'room', o: 3, p: { n: 2 } },
    ]);
    expect(b.client.data).toEqual(a.client.data);
    expect(c.client.data).toEqual([]); // not a member
    expect(s.manager.getTopicMembers('room').sort()).toEqual(
      [a.welcome.sessionId, b.welcome.sessionId].sort(),
    );
    expect(s.manager.getClientTopics(a.welcome.sessionId)).toEqual(['room']);

    expect(s.manager.leave(b.welcome.sessionId, 'room')).toBe(true);
    await b.client.waitFor((f) => f.t === 'unsub');
    s.manager.publish('room', { n: 3 });
    await a.client.waitForData(3);
    expect(b.client.data).toHaveLength(2);
    expect(events).toEqual([
      { clientId: a.welcome.sessionId, topic: 'room', by: 'server' },
      { clientId: b.welcome.sessionId, topic: 'room', by: 'server' },
      { clientId: b.welcome.sessionId, topic: 'room', reason: 'server' },
    ]);
  });

  it('an excluded member gets a skip for the offset, live and on replay, so it never reads as a gap', async () => {
    const s = await startServer({ tokens: { secret } });
    const a = await join(s.url, s);
    const b = await join(s.url, s);
    const idA = a.welcome.sessionId;
    for (const id of [idA, b.welcome.sessionId]) s.manager.join(id, 'room');
    s.manager.publish('room', 'to all');
    s.manager.publish('room', 'not to a', { exclude: [idA] });
    await b.client.waitForData(2);
    await a.client.waitFor((f) => f.t === 'skip');
    expect(a.client.frames.filter((f) => f.t === 'skip')).toEqual([{ t: 'skip', c: 'room', o: 2 }]);
    expect(a.client.data).toEqual([{ c: 'room', o: 1, p: 'to all' }]);

    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(idA), 'detach');
    expect(s.manager.publish('room', 'again not to a', { exclude: [idA] }).buffered).toBe(0);
    expect(s.manager.broadcast('not to a either', { exclude: [idA, 'nobody'] }).buffered).toBe(0);
    expect(s.manager.broadcast('to a', { volatile: false }).buffered).toBe(1);
    expect(s.manager.publish('room', 'to a too').buffered).toBe(1);
    const again = await RawProtocolClient.handshake(s.url, {
      token: a.welcome.token,
      sessionId: idA,
      topics: { room: 2, $all: 0 },
    });
    expect(again.welcome.topics).toContainEqual({ c: 'room', o: 2, resume: 'resumed' });
    await again.client.waitForData(1);
    await again.client.waitFor((f) => f.t === 'skip');
    const stream = again.client.frames.filter((f) => f.c === 'room');
    expect(stream).toEqual([
      { t: 'skip', c: 'room', o: 3 },
      { t: 'd', c: 'room', o: 4, p: 'to a too' },
    ]);
  });

  it('a gap in one topic answers fresh/gap for that topic only; the others and the inbox resume intact', async () => {
    const s = await startServer({
      tokens: { secret },
      topics: { overrides: [{ prefix: 'small:', history: { maxMessages: 3 } }] },
    });
    const a = await join(s.url, s);
    const id = a.welcome.sessionId;
    s.manager.join(id, 'small:1');
    s.manager.join(id, 'big');
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(id), 'detach');
    for (let i = 1; i <= 5; i++) {
      s.manager.publish('small:1', `s${i}`);
      s.manager.publish('big', `b${i}`);
    }
    s.manager.sendToClient(id, 'direct');
    // The client never saw the joins: it resumes from the join offsets the session kept.
    const again = await RawProtocolClient.handshake(s.url, {
      token: a.welcome.token,
      sessionId: id,
      lastSeq: 0,
    });
    expect(again.welcome.resume).toBe('resumed');
    expect(again.welcome.topics).toEqual([
      { c: '$all', o: 0, resume: 'resumed' },
      { c: 'small:1', o: 5, resume: 'fresh', reason: 'gap' },
      { c: 'big', o: 0, resume: 'resumed' },
    ]);
    await again.client.waitForData(6);
    expect(again.client.data).toEqual([
      { s: 1, p: 'direct' },
      ...[1, 2, 3, 4, 5].map((i) => ({ c: 'big', o: i, p: `b${i}` })),
    ]);
    // After the gap the topic continues live from offset 5.
    s.manager.publish('small:1', 's6');
    await again.client.waitForData(7);
    expect(again.client.data[6]).toEqual({ c: 'small:1', o: 6, p: 's6' });
  });

  it('a join right before a drop resumes exactly from the join offset, even if the sub frame was lost', async () => {
    const s = await startServer({ tokens: { secret } });
    const a = await join(s.url, s);
    const id = a.welcome.sessionId;
    const other = await join(s.url, s);
    s.manager.join(other.welcome.sessionId, 'room');
    s.manager.publish('room', 'old 1');
    s.manager.publish('room', 'old 2');
    s.manager.join(id, 'room');
    a.client.ws.terminate(); // the sub frame may or may not have arrived
    s.manager.publish('room', 'new 3');
    await waitFor(() => !s.manager.isConnected(id), 'detach');
    s.manager.publish('room', 'new 4');
    const again = await RawProtocolClient.handshake(s.url, { token: a.welcome.token, sessionId: id });
    expect(again.welcome.topics).toContainEqual({ c: 'room', o: 2, resume: 'resumed' });
    await again.client.waitForData(2);
    expect(again.client.data).toEqual([
      { c: 'room', o: 3, p: 'new 3' },
      { c: 'room', o: 4, p: 'new 4' },
    ]);
  });

  it('client subscriptions: refused without a hook, by the hook, for bad names and over the limit; never closed', async () => {
    const refused = await startServer();
    const r = await join(refused.url, refused);
    r.client.send({ t: 'sub', c: 'room' });
    expect(await r.client.waitFor((f) => f.t === 'unsub')).toMatchObject({
      c: 'room',
      code: ErrorCode.TopicForbidden,
    });

    const s = await startServer(
      { topics: { maxPerConnection: 2, maxNameLength: 10 } },
      {},
      { authorizeSubscribe: ({ topic }) => topic !== 'secret' },
    );
    const a = await join(s.url, s);
    const answers = (c: string) => a.client.waitFor((f) => (f.t === 'sub' || f.t === 'unsub') && f.c === c);
    a.client.send({ t: 'sub', c: 'one' });
    expect(await answers('one')).toEqual({ t: 'sub', c: 'one', o: 0 });
    a.client.send({ t: 'sub', c: 'secret' });
    expect(await answers('secret')).toMatchObject({ t: 'unsub', code: ErrorCode.TopicForbidden });
    a.client.send({ t: 'sub', c: '$all' });
    expect(await answers('$all')).toMatchObject({ t: 'unsub', code: ErrorCode.InvalidTopic });
    a.client.send({ t: 'sub', c: 'x'.repeat(11) });
    expect(await answers('x'.repeat(11))).toMatchObject({ t: 'unsub', code: ErrorCode.InvalidTopic });
    a.client.send({ t: 'sub', c: 'two' });
    await answers('two');
    a.client.send({ t: 'sub', c: 'three' });
    expect(await answers('three')).toMatchObject({ t: 'unsub', code: ErrorCode.TopicLimit });
    expect(a.client.closeInfo).toBeUndefined();
    expect(s.manager.getClientTopics(a.welcome.sessionId)).toEqual(['one', 'two']);
    a.client.send({ t: 'unsub', c: 'one' });
    await waitFor(() => s.manager.getClientTopics(a.welcome.sessionId).length === 1, 'unsubscribed');
    expect(() => s.manager.join(a.welcome.sessionId, '')).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidTopic }),
    );
    expect(() => s.manager.join('nobody', 'one')).toThrow(
      expect.objectContaining({ code: ErrorCode.UnknownClient }),
    );
  });

  it('plain sockets can be members: bare payloads, and they leave the topic when they close', async () => {
    const s = await startServer({}, { authenticate: () => ({ clientId: 'plain-1' }) });
    const ws = await openClient(s.url);
    await waitFor(() => s.manager.isConnected('plain-1'), 'register');
    const got = collect(ws);
    s.manager.join('plain-1', 'room');
    s.manager.publish('room', { hi: 1 });
    await waitFor(() => got.length === 1, 'message');
    expect(got[0]!.toString()).toBe('{"hi":1}');
    const left: string[] = [];
    s.manager.on('leave', (e) => void left.push(`${e.clientId}:${e.reason}`));
    ws.close();
    await waitFor(() => left.length === 1, 'leave');
    expect(left).toEqual(['plain-1:disconnect']);
    expect(s.manager.getTopicMembers('room')).toEqual([]);
  });

  it('stores a publication once whatever the audience; a topic without members is dropped with its history', async () => {
    const s = await startServer();
    const clients = await Promise.all(Array.from({ length: 20 }, () => join(s.url, s)));
    const table = s.manager.topics.table;
    for (let t = 0; t < 5; t++) for (const c of clients) s.manager.join(c.welcome.sessionId, `t${t}`);
    for (let i = 0; i < 10; i++) for (let t = 0; t < 5; t++) s.manager.publish(`t${t}`, { i });
    for (let t = 0; t < 5; t++) expect(table.get(`t${t}`)!.history.size).toBe(10); // not 10 × 20
    for (const c of clients) s.manager.leave(c.welcome.sessionId, 't0');
    expect(table.get('t0')).toBeUndefined();
  });
});
