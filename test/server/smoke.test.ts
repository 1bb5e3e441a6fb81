import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, closed, collect, openClient, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);

describe('smoke', () => {
  it('registers, broadcasts and disconnects a plain client', async () => {
    const s = await startServer();
    const ws = await openClient(s.url);
    const got = collect(ws);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'register');
    const res = s.manager.broadcast({ hello: 'world' });
    expect(res.delivered).toBe(1);
    await waitFor(() => got.length === 1, 'message');
    expect(JSON.parse(got[0] as string)).toEqual({ hello: 'world' });
    const id = s.manager.getActiveConnections()[0]!;
    const c = closed(ws);
    expect(await s.manager.disconnect(id, 1000, 'bye')).toBe(true);
    expect((await c).code).toBe(1000);
    expect(s.manager.getConnectionCount()).toBe(0);
  });
});
