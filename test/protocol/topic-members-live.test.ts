import { afterEach, describe, expect, it } from 'vitest';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, closed, collect, openClient, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);

const secret = 'a-test-secret-that-is-long-enough-0123456789';

async function join(url: string, s: { manager: { isConnected(id: string): boolean } }) {
  const r = await RawProtocolClient.handshake(url);
  await waitFor(() => s.manager.isConnected(r.welcome.sessionId), 'register');
  return r;
}

/**
 * The publish path reuses a topic's member lookup between publications. Every change between two publications to
 * the same topic must reach the second one: joins, leaves, a member that drops and resumes on a new socket, a
 * socket replaced under the same session, plain sockets that come and go.
 */
describe('topic publications after the membership or the connections changed', () => {
  it('a member that joined, left, dropped, resumed or was replaced since the last publication', async () => {
    const s = await startServer({ tokens: { secret } });
    const a = await join(s.url, s);
    const b = await join(s.url, s);
    const c = await join(s.url, s);
    const [idA, idB, idC] = [a.welcome.sessionId, b.welcome.sessionId, c.welcome.sessionId];
    s.manager.join(idA, 'room');
    s.manager.join(idB, 'room');
    expect(s.manager.publish('room', 1)).toMatchObject({ delivered: 2, buffered: 0 });

    // c joins: it gets the next one.
    s.manager.join(idC, 'room');
    expect(s.manager.publish('room', 2)).toMatchObject({ delivered: 3, buffered: 0 });
    await c.client.waitForData(1);
    expect(c.client.data).toEqual([{ c: 'room', o: 2, p: 2 }]);

    // a leaves: it does not.
    s.manager.leave(idA, 'room');
    expect(s.manager.publish('room', 3)).toMatchObject({ delivered: 2, buffered: 0 });

    // b drops: buffered in the history; b resumes on a new socket and gets the next one live.
    b.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(idB), 'detach');
    expect(s.manager.publish('room', 4)).toMatchObject({ delivered: 1, buffered: 1 });
    const b2 = await RawProtocolClient.handshake(s.url, {
      token: b.welcome.token,
      sessionId: idB,
      topics: { room: 3, $all: 0 },
    });
    await waitFor(() => s.manager.isConnected(idB), 'resume');
    expect(s.manager.publish('room', 5)).toMatchObject({ delivered: 2, buffered: 0 });
    await b2.client.waitForData(2);
    expect(b2.client.data).toEqual([
      { c: 'room', o: 4, p: 4 },
      { c: 'room', o: 5, p: 5 },
    ]);

    // c resumes on a second socket while its first one is still open: the new socket replaces it (4501) and
    // gets the next publication; the replaced one does not.
    const c2 = await RawProtocolClient.handshake(s.url, {
      token: c.welcome.token,
      sessionId: idC,
      topics: { room: 5, $all: 0 },
    });
    expect((await c.client.waitClose()).code).toBe(4501);
    expect(s.manager.publish('room', 6)).toMatchObject({ delivered: 2, buffered: 0 });
    await c2.client.waitForData(1);
    expect(c2.client.data).toEqual([{ c: 'room', o: 6, p: 6 }]);
    await b2.client.waitForData(3);
    expect(b2.client.data.map((d) => d.o)).toEqual([4, 5, 6]);
    expect(a.client.data.filter((d) => d.c === 'room').map((d) => d.o)).toEqual([1, 2]);
    expect(c.client.data.map((d) => d.o)).toEqual([2, 3, 4, 5]);
  });

  it('plain sockets: one that joined after a publication gets the next, one that closed is gone from the count', async () => {
    const s = await startServer();
    const ids: string[] = [];
    s.manager.on('connect', (e) => void ids.push(e.clientId));
    const first = await openClient(s.url);
    await waitFor(() => ids.length === 1, 'first connect');
    const got1 = collect(first);
    s.manager.join(ids[0]!, 'room');
    expect(s.manager.publish('room', 'one')).toMatchObject({ delivered: 1 });

    const second = await openClient(s.url);
    await waitFor(() => ids.length === 2, 'second connect');
    const got2 = collect(second);
    s.manager.join(ids[1]!, 'room');
    expect(s.manager.publish('room', 'two')).toMatchObject({ delivered: 2 });
    await waitFor(() => got2.length === 1, 'second gets two');
    expect(got2.map(String)).toEqual(['two']);

    first.close();
    await closed(first);
    await waitFor(() => !s.manager.isConnected(ids[0]!), 'first unregistered');
    expect(s.manager.publish('room', 'three')).toEqual({ delivered: 1, buffered: 0, dropped: 0, failed: [] });
    await waitFor(() => got2.length === 2, 'second gets three');
    expect(got1.map(String)).toEqual(['one', 'two']);
    expect(got2.map(String)).toEqual(['two', 'three']);
  });
});
