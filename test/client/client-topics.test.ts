import { describe, expect, it, vi } from 'vitest';
import { BinaryKind, type TopicState } from '../../src/protocol/index.js';
import type { ClientError, MessageInfo } from '../../src/client/index.js';
import { FakeWebSocket } from './fake-socket.js';
import { flush, makeClient, openClient, track, useFakes } from './setup.js';

useFakes();

const all = (o = 0, reason?: TopicState['reason']): TopicState =>
  reason ? { c: '$all', o, resume: 'fresh', reason } : { c: '$all', o, resume: 'resumed' };

/** A client welcomed on `s1` as a member of `$all` at 0 and of `room` at 5, recording message infos. */
function inRoom() {
  const c = openClient();
  c.ws().sent = [];
  const infos: MessageInfo[] = [];
  c.client.on('message', (_, info) => infos.push(info));
  return { ...c, infos };
}

function openInRoom() {
  const c = makeClient();
  const infos: MessageInfo[] = [];
  c.client.on('message', (_, info) => infos.push(info));
  c.ws().welcome({ topics: [all(0, 'new'), { c: 'room', o: 5, resume: 'fresh', reason: 'new' }] });
  c.ws().sent = [];
  return { ...c, infos };
}

/** Drops the socket and answers the next connection's hello with this welcome. */
function dropAndWelcome(c: ReturnType<typeof makeClient>, welcome: Parameters<FakeWebSocket['welcome']>[0]) {
  c.ws().serverClose(1006);
  vi.advanceTimersByTime(750);
  c.ws().open();
  const hello = c.ws().frames[0];
  c.ws().welcome(welcome);
  return hello;
}

describe('topic positions and resume', () => {
  it('sends no topics in the first hello and its positions in the next one', () => {
    const first = makeClient();
    first.ws().open();
    expect(first.ws().frames).toEqual([{ t: 'hello', v: 1, lastSeq: 0 }]);
    const c = openInRoom();
    c.ws().receive({ t: 'd', c: 'room', o: 6, p: 'x' }).receive({ t: 'd', c: '$all', o: 1, p: 'y' });
    const hello = dropAndWelcome(c, {
      resume: 'resumed',
      reason: undefined,
      topics: [all(1), { c: 'room', o: 6, resume: 'resumed' }],
    });
    expect(hello).toEqual({
      t: 'hello',
      v: 1,
      token: 'tok1',
      sessionId: 's1',
      lastSeq: 0,
      topics: { $all: 1, room: 6 },
    });
  });

  it('takes its positions from the welcome and emits one stream event per topic', () => {
    const c = openInRoom();
    expect(c.client.topics).toEqual(['$all', 'room']);
    expect(c.events.stream).toEqual([
      { topic: '$all', resume: 'fresh', reason: 'new' },
      { topic: 'room', resume: 'fresh', reason: 'new' },
    ]);
    dropAndWelcome(c, {
      resume: 'resumed',
      reason: undefined,
      topics: [all(0), { c: 'room', o: 9, resume: 'fresh', reason: 'gap' }],
    });
    expect(c.events.stream.slice(2)).toEqual([
      { topic: '$all', resume: 'resumed' },
      { topic: 'room', resume: 'fresh', reason: 'gap' },
    ]);
    // room continues after the welcome's offset 9, not after the 5 the client had
    c.ws().receive({ t: 'd', c: 'room', o: 10, p: 'after gap' });
    expect(c.events.message).toEqual(['after gap']);
    expect(c.events.error).toEqual([]);
  });

  it('without topics in the welcome the client is in none', () => {
    const { client } = openClient();
    expect(client.topics).toEqual([]);
  });
});

describe('topic publications', () => {
  it('delivers offsets in order, drops duplicates silently and carries topic and offset in the info', () => {
    const c = openInRoom();
    c.ws()
      .receive({ t: 'd', c: 'room', o: 6, p: 'a' })
      .receive({ t: 'd', c: 'room', o: 6, p: 'a again' })
      .receive({ t: 'd', c: 'room', o: 4, p: 'old' })
      .receive({ t: 'd', c: 'room', o: 7, p: 'b' });
    expect(c.events.message).toEqual(['a', 'b']);
    expect(c.infos).toEqual([
      { topic: 'room', offset: 6, reliable: true },
      { topic: 'room', offset: 7, reliable: true },
    ]);
    expect(c.events.error).toEqual([]);
  });

  it('treats an offset jump as a protocol violation and resumes from its position', () => {
    const c = openInRoom();
    const first = c.ws();
    c.ws().receive({ t: 'd', c: 'room', o: 6, p: 'a' }).receive({ t: 'd', c: 'room', o: 8, p: 'c' });
    expect(c.events.message).toEqual(['a']);
    expect(c.events.error[0]?.code).toBe('PROTOCOL_VIOLATION');
    expect(first.closedBy).toMatchObject({ code: 4502 });
    expect(c.events.close[0]).toMatchObject({ code: 4502, willReconnect: true });
    vi.advanceTimersByTime(750);
    c.ws().open();
    expect(c.ws().frames[0]).toMatchObject({ topics: { $all: 0, room: 6 } });
  });

  it('treats a publication on a topic it is not in as a protocol violation, volatile or not', () => {
    for (const m of [
      { t: 'd', c: 'other', o: 1, p: 'x' },
      { t: 'd', c: 'other', p: 'x' },
      { t: 'skip', c: 'other', o: 1 },
    ]) {
      const c = openInRoom();
      c.ws().receive(m);
      expect(c.events.message).toEqual([]);
      expect(c.events.error[0]?.code).toBe('PROTOCOL_VIOLATION');
      expect(c.ws().closedBy).toMatchObject({ code: 4502 });
    }
  });

  it('delivers a volatile publication of a member topic without moving its position', () => {
    const c = openInRoom();
    c.ws().receive({ t: 'd', c: 'room', p: 'cursor' }).receive({ t: 'd', c: 'room', o: 6, p: 'a' });
    expect(c.events.message).toEqual(['cursor', 'a']);
    expect(c.infos[0]).toEqual({ topic: 'room', reliable: false });
  });

  it('skip advances the position and delivers nothing; a skip that jumps is a violation', () => {
    const c = openInRoom();
    c.ws()
      .receive({ t: 'skip', c: 'room', o: 6 })
      .receive({ t: 'skip', c: 'room', o: 6 }) // duplicate: ignored
      .receive({ t: 'd', c: 'room', o: 7, p: 'after skip' });
    expect(c.events.message).toEqual(['after skip']);
    expect(c.events.error).toEqual([]);
    c.ws().receive({ t: 'skip', c: 'room', o: 9 });
    expect(c.events.error[0]?.code).toBe('PROTOCOL_VIOLATION');
  });

  it('never acks topic publications (only the inbox), whatever their number', () => {
    const c = openInRoom();
    for (let o = 6; o < 106; o++) c.ws().receive({ t: 'd', c: 'room', o, p: o });
    for (let o = 1; o <= 50; o++) c.ws().receive({ t: 'd', c: '$all', o, p: o });
    c.ws().receive({ t: 'skip', c: 'room', o: 106 });
    vi.advanceTimersByTime(5000);
    expect(c.events.message).toHaveLength(150);
    expect(c.ws().sent).toEqual([]);
    c.ws().data(1);
    vi.advanceTimersByTime(200);
    expect(c.ws().framesOf('ack')).toEqual([{ t: 'ack', s: 1 }]);
  });

  it('tells direct messages from publications in the info, and keeps one-argument listeners working', () => {
    const c = openInRoom();
    const plain: unknown[] = [];
    c.client.on('message', (data) => plain.push(data));
    c.ws().data(1).receive({ t: 'd', p: 'volatile' }).receive({ t: 'd', c: '$all', o: 1, p: 'broadcast' });
    expect(plain).toEqual(['m1', 'volatile', 'broadcast']);
    expect(c.infos).toEqual([
      { seq: 1, reliable: true },
      { reliable: false },
      { topic: '$all', offset: 1, reliable: true },
    ]);
  });

  it('decodes binary topic frames, reliable and volatile', () => {
    const c = openInRoom();
    const name = new TextEncoder().encode('room');
    const reliable = new Uint8Array(9 + 1 + name.length + 2);
    reliable[0] = BinaryKind.TopicReliable;
    new DataView(reliable.buffer).setFloat64(1, 6);
    reliable[9] = name.length;
    reliable.set(name, 10);
    reliable.set([1, 2], 10 + name.length);
    const volatile = new Uint8Array([BinaryKind.TopicVolatile, name.length, ...name, 3]);
    c.ws().receive(reliable).receive(volatile).receive(reliable);
    expect(c.events.message).toEqual([new Uint8Array([1, 2]), new Uint8Array([3])]);
    expect(c.infos).toEqual([
      { topic: 'room', offset: 6, reliable: true },
      { topic: 'room', reliable: false },
    ]);
  });
});

describe('subscribe and unsubscribe', () => {
  it('subscribe sends sub once and resolves with the offset of the server sub', async () => {
    const c = inRoom();
    const a = c.client.subscribe('news');
    const b = c.client.subscribe('news');
    expect(c.ws().frames).toEqual([{ t: 'sub', c: 'news' }]);
    c.ws().receive({ t: 'sub', c: 'news', o: 12 });
    await expect(a).resolves.toBe(12);
    await expect(b).resolves.toBe(12);
    expect(c.events.subscribed).toEqual([{ topic: 'news', offset: 12 }]);
    expect(c.client.topics).toEqual(['news']);
    c.ws().receive({ t: 'd', c: 'news', o: 13, p: 'n' });
    expect(c.infos).toEqual([{ topic: 'news', offset: 13, reliable: true }]);
    // already a member: at once, with its position, nothing written
    await expect(c.client.subscribe('news')).resolves.toBe(13);
    expect(c.ws().frames).toHaveLength(1);
  });

  it('rejects with the code of a refusing unsub and forgets the topic', async () => {
    const c = inRoom();
    const r = track(c.client.subscribe('secret'));
    c.ws().receive({ t: 'unsub', c: 'secret', code: 'TOPIC_FORBIDDEN', message: 'no' });
    await flush();
    expect(r.state).toBe('rejected');
    expect((r.error as ClientError).code).toBe('TOPIC_FORBIDDEN');
    expect((r.error as ClientError).name).toBe('ClientError');
    expect(c.events.unsubscribed).toEqual([{ topic: 'secret', reason: 'refused', code: 'TOPIC_FORBIDDEN' }]);
    expect(c.client.topics).toEqual([]);
    expect(c.ws().readyState).toBe(1);
    // not wanted any more: a fresh session does not subscribe to it again
    dropAndWelcome(c, { sessionId: 's2', reason: 'expired', topics: [all(0, 'expired')] });
    expect(c.ws().framesOf('sub')).toEqual([]);
  });

  it.each([
    ['', 'empty'],
    ['$all', 'reserved'],
    ['$x', 'reserved'],
    ['a\nb', 'control'],
    ['x'.repeat(256), 'long'],
  ])('rejects the invalid name %j (%s) at once with INVALID_TOPIC and writes nothing', async (name) => {
    const c = inRoom();
    const r = track(c.client.subscribe(name));
    await flush();
    expect((r.error as ClientError).code).toBe('INVALID_TOPIC');
    expect(c.ws().sent).toEqual([]);
  });

  it('sends a subscribe made while offline after the welcome', async () => {
    const c = makeClient();
    const r = track(c.client.subscribe('room'));
    c.ws().open();
    expect(c.ws().frames).toEqual([{ t: 'hello', v: 1, lastSeq: 0 }]);
    c.ws().welcome({ topics: [all(0, 'new')] });
    expect(c.ws().framesOf('sub')).toEqual([{ t: 'sub', c: 'room' }]);
    await flush();
    expect(r.state).toBe('pending');
    c.ws().receive({ t: 'sub', c: 'room', o: 3 });
    await flush();
    expect(r.state).toBe('resolved');
  });

  it('resolves a subscribe whose answer was lost from the resumed welcome, without sending it again', async () => {
    const c = inRoom();
    const r = c.client.subscribe('room');
    dropAndWelcome(c, {
      resume: 'resumed',
      reason: undefined,
      topics: [all(0), { c: 'room', o: 4, resume: 'resumed' }],
    });
    await expect(r).resolves.toBe(4);
    expect(c.ws().framesOf('sub')).toEqual([]);
  });

  it('subscribes again by itself on a fresh session, and drops the topics the server had joined', () => {
    const c = inRoom();
    void c.client.subscribe('room');
    c.ws().receive({ t: 'sub', c: 'room', o: 3 }).receive({ t: 'sub', c: 'lobby', o: 0 });
    dropAndWelcome(c, { sessionId: 's2', reason: 'expired', topics: [all(0, 'expired')] });
    expect(c.ws().framesOf('sub')).toEqual([{ t: 'sub', c: 'room' }]);
    expect(c.events.stream).toEqual([
      { topic: '$all', resume: 'fresh', reason: 'expired' },
      { topic: 'room', resume: 'fresh', reason: 'expired' },
    ]);
    expect(c.events.unsubscribed).toEqual([{ topic: 'lobby', reason: 'server' }]);
    expect(c.client.topics).toEqual(['$all']);
    c.ws().receive({ t: 'sub', c: 'room', o: 40 }).receive({ t: 'd', c: 'room', o: 41, p: 'hi' });
    expect(c.client.topics).toEqual(['$all', 'room']);
    expect(c.events.message).toEqual(['hi']);
  });

  it('reports server-side joins and leaves; a leave also ends the app subscription', () => {
    const c = inRoom();
    void c.client.subscribe('room');
    c.ws().receive({ t: 'sub', c: 'room', o: 0 }).receive({ t: 'sub', c: 'vip', o: 7 });
    expect(c.events.subscribed).toEqual([
      { topic: 'room', offset: 0 },
      { topic: 'vip', offset: 7 },
    ]);
    c.ws()
      .receive({ t: 'd', c: 'vip', o: 8, p: 'v' })
      .receive({ t: 'unsub', c: 'vip' })
      .receive({ t: 'unsub', c: 'room' });
    expect(c.events.message).toEqual(['v']);
    expect(c.events.unsubscribed).toEqual([
      { topic: 'vip', reason: 'server' },
      { topic: 'room', reason: 'server' },
    ]);
    expect(c.client.topics).toEqual([]);
    dropAndWelcome(c, { sessionId: 's2', topics: [all(0, 'new')] });
    expect(c.ws().framesOf('sub')).toEqual([]);
  });

  it('a resumed welcome without a topic the app had subscribed means the server made it leave', () => {
    const c = inRoom();
    void c.client.subscribe('room');
    c.ws().receive({ t: 'sub', c: 'room', o: 0 });
    dropAndWelcome(c, { resume: 'resumed', reason: undefined, topics: [all(0)] });
    expect(c.events.unsubscribed).toEqual([{ topic: 'room', reason: 'server' }]);
    expect(c.ws().framesOf('sub')).toEqual([]);
  });

  it('unsubscribe sends unsub, delivers nothing more from the topic and reports the answer', () => {
    const c = inRoom();
    void c.client.subscribe('room');
    c.ws().receive({ t: 'sub', c: 'room', o: 0 });
    c.client.unsubscribe('room');
    c.client.unsubscribe('room');
    c.client.unsubscribe('never-joined');
    expect(c.ws().frames.slice(1)).toEqual([{ t: 'unsub', c: 'room' }]);
    c.ws().receive({ t: 'd', c: 'room', o: 1, p: 'in flight' }).receive({ t: 'unsub', c: 'room' });
    expect(c.events.message).toEqual([]);
    expect(c.events.unsubscribed).toEqual([{ topic: 'room', reason: 'client' }]);
    expect(c.client.topics).toEqual([]);
  });

  it('an unsubscribe made while offline is sent after the welcome if the topic is still listed', () => {
    const c = inRoom();
    void c.client.subscribe('room');
    c.ws().receive({ t: 'sub', c: 'room', o: 0 }).serverClose(1006);
    c.client.unsubscribe('room');
    vi.advanceTimersByTime(750);
    c.ws().welcome({
      resume: 'resumed',
      reason: undefined,
      topics: [all(0), { c: 'room', o: 0, resume: 'resumed' }],
    });
    expect(c.ws().framesOf('unsub')).toEqual([{ t: 'unsub', c: 'room' }]);
    c.ws().receive({ t: 'unsub', c: 'room' });
    expect(c.events.unsubscribed).toEqual([{ topic: 'room', reason: 'client' }]);
    // next time it is not listed: nothing to send
    dropAndWelcome(c, { resume: 'resumed', reason: undefined, topics: [all(0)] });
    expect(c.ws().framesOf('unsub')).toEqual([]);
    expect(c.ws().framesOf('sub')).toEqual([]);
  });

  it('subscribing again while the unsub is in flight ends subscribed', async () => {
    const c = inRoom();
    void c.client.subscribe('room');
    c.ws().receive({ t: 'sub', c: 'room', o: 0 });
    c.client.unsubscribe('room');
    const again = track(c.client.subscribe('room'));
    c.ws().receive({ t: 'unsub', c: 'room' });
    expect(c.ws().frames.slice(1)).toEqual([
      { t: 'unsub', c: 'room' },
      { t: 'sub', c: 'room' },
    ]);
    c.ws().receive({ t: 'sub', c: 'room', o: 2 });
    await flush();
    expect(again.state).toBe('resolved');
    expect(c.client.topics).toEqual(['room']);
  });

  it('does not leave a $ topic: its messages keep coming', () => {
    const c = openInRoom();
    c.client.unsubscribe('$all');
    c.ws().receive({ t: 'd', c: '$all', o: 1, p: 'still here' });
    expect(c.ws().sent).toEqual([]);
    expect(c.events.message).toEqual(['still here']);
  });

  it('sends a subscribe again when the socket dropped before its answer', async () => {
    const c = inRoom();
    const r = track(c.client.subscribe('room'));
    dropAndWelcome(c, { sessionId: 's2', reason: 'gap', topics: [all(0, 'gap')] });
    expect(c.ws().framesOf('sub')).toEqual([{ t: 'sub', c: 'room' }]);
    c.ws().receive({ t: 'sub', c: 'room', o: 8 });
    await flush();
    expect(r.state).toBe('resolved');
    expect(c.client.topics).toEqual(['$all', 'room']);
  });

  it('an unsubscribe does not cancel a pending subscribe: it resolves, then the leave follows', async () => {
    const c = makeClient();
    const r = track(c.client.subscribe('room'));
    c.client.unsubscribe('room');
    c.ws().welcome({ topics: [all(0, 'new')] });
    expect(c.ws().frames.slice(1)).toEqual([
      { t: 'sub', c: 'room' },
      { t: 'unsub', c: 'room' },
    ]);
    c.ws().receive({ t: 'sub', c: 'room', o: 1 }).receive({ t: 'unsub', c: 'room' });
    await flush();
    expect(r.state).toBe('resolved');
    expect(c.events.unsubscribed).toEqual([{ topic: 'room', reason: 'client' }]);
    expect(c.client.topics).toEqual(['$all']);
  });

  it('close() rejects pending subscribes with CLIENT_CLOSED, and so does subscribe on a closed client', async () => {
    const c = inRoom();
    const r = track(c.client.subscribe('room'));
    c.client.close();
    const late = track(c.client.subscribe('other'));
    await flush();
    expect((r.error as ClientError).code).toBe('CLIENT_CLOSED');
    expect((late.error as ClientError).code).toBe('CLIENT_CLOSED');
  });
});
