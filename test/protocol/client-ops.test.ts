import { afterEach, describe, expect, it } from 'vitest';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';

// The cluster-wide client operations on the in-memory backend: one process, so they act locally, and resolve
// once they took effect. (On Redis: test/redis/cluster-ops.test.ts.)

afterEach(closeAllServers);

const authenticate = () => ({ principal: 'p1', data: { role: 'admin' } });

async function connect(url: string, s: { manager: { isConnected(id: string): boolean } }) {
  const r = await RawProtocolClient.handshake(url);
  await waitFor(() => s.manager.isConnected(r.welcome.sessionId), 'register');
  return r;
}

describe('cluster-wide client operations, in memory', () => {
  it('clusterJoin and clusterLeave act at once: sub/unsub written before they resolve, publications follow', async () => {
    const s = await startServer({}, { authenticate });
    const a = await connect(s.url, s);
    const id = a.welcome.sessionId;
    s.manager.publish('room', 'nobody hears this');
    await expect(s.manager.clusterJoin(id, 'room')).resolves.toBe(true);
    await expect(s.manager.clusterJoin(id, 'room')).resolves.toBe(false);
    s.manager.publish('room', 1);
    await a.client.waitForData(1);
    expect(a.client.frames.filter((f) => f.t === 'sub' || f.t === 'd').map((f) => f.t)).toEqual(['sub', 'd']);
    await expect(s.manager.fetchClient(id)).resolves.toEqual({
      clientId: id,
      nodeId: undefined,
      connected: true,
      session: true,
      principal: 'p1',
      data: { role: 'admin' },
      topics: ['room'],
    });
    await expect(s.manager.clusterLeave(id, 'room')).resolves.toBe(true);
    await expect(s.manager.clusterLeave(id, 'room')).resolves.toBe(false);
    await expect(s.manager.clusterLeave(id, '$all')).resolves.toBe(false);
    s.manager.publish('room', 2);
    s.manager.sendToClient(id, 'after');
    await a.client.waitForData(2);
    expect(a.client.data.map((d) => d.p)).toEqual([1, 'after']);
    expect(a.client.frames.some((f) => f.t === 'unsub' && f.c === 'room')).toBe(true);
  });

  it('bad input: unknown ids, invalid topics, a detached session with a retryable code', async () => {
    const s = await startServer({ sessionTtlMs: 60_000 });
    await expect(s.manager.clusterJoin('nobody', 'room')).rejects.toMatchObject({ code: 'UNKNOWN_CLIENT' });
    await expect(s.manager.clusterLeave('nobody', 'room')).resolves.toBe(false);
    await expect(s.manager.clusterDisconnect('nobody')).resolves.toBe(false);
    await expect(s.manager.fetchClient('nobody')).resolves.toBeUndefined();
    const a = await connect(s.url, s);
    const id = a.welcome.sessionId;
    await expect(s.manager.clusterJoin(id, '$mine')).rejects.toMatchObject({ code: 'INVALID_TOPIC' });
    await expect(s.manager.clusterJoin(id, '')).rejects.toMatchObject({ code: 'INVALID_TOPIC' });
    // Detached: a retryable code has nothing to close and keeps the session; 1000 ends it.
    await s.manager.clusterJoin(id, 'room');
    a.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1, 'detached');
    await expect(s.manager.fetchClient(id)).resolves.toMatchObject({ connected: false, topics: ['room'] });
    await expect(s.manager.clusterDisconnect(id, 4000)).resolves.toBe(false);
    expect(s.manager.getStats().sessions).toBe(1);
    await expect(s.manager.clusterDisconnect(id)).resolves.toBe(true);
    expect(s.manager.getStats().sessions).toBe(0);
    await expect(s.manager.fetchClient(id)).resolves.toBeUndefined();
  });

  it('clusterDisconnect of a connected client resolves once its socket closed with the code', async () => {
    const s = await startServer();
    const a = await connect(s.url, s);
    const id = a.welcome.sessionId;
    await expect(s.manager.clusterDisconnect(id, 4501, 'bye')).resolves.toBe(true);
    expect(s.manager.isConnected(id)).toBe(false);
    expect((await a.client.waitClose()).code).toBe(4501);
    expect(s.manager.getStats().sessions).toBe(0); // a terminal code ended the session
  });
});
