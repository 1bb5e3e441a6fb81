import { afterEach, describe, expect, it } from 'vitest';
import { startNginx } from '../helpers/nginx.js';
import { closeAllServers, openClient, startServer, waitFor } from '../helpers/server.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((s) => s()));
  await closeAllServers();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A real nginx with proxy_read_timeout 1 s stands in for the 60 s of nginx/ALB defaults, scaled down.
describe('behind a real nginx reverse proxy', () => {
  it('the heartbeat keeps a silent client connected past the proxy idle timeout', async () => {
    const s = await startServer({ pingIntervalMs: 300, pongTimeoutMs: 2000 });
    const proxy = await startNginx(s.port, 1);
    stops.push(proxy.stop);
    const ws = await openClient(`ws://127.0.0.1:${proxy.port}/ws`);
    let closedCode: number | undefined;
    ws.on('close', (code) => (closedCode = code));
    await waitFor(() => s.manager.getConnectionCount() === 1);
    await sleep(3000); // three proxy timeouts of silence from both applications
    expect(closedCode).toBeUndefined();
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    expect(s.manager.broadcast('still here').delivered).toBe(1);
    await waitFor(() => got.length === 1);
    expect(got[0]).toBe('still here');
  });

  it('without pings in time, the same proxy cuts the connection (the control case)', async () => {
    const s = await startServer({ pingIntervalMs: 60_000, pongTimeoutMs: 10_000 });
    const proxy = await startNginx(s.port, 1);
    stops.push(proxy.stop);
    const ws = await openClient(`ws://127.0.0.1:${proxy.port}/ws`);
    let closedCode: number | undefined;
    ws.on('close', (code) => (closedCode = code));
    await waitFor(() => s.manager.getConnectionCount() === 1);
    await waitFor(() => closedCode !== undefined, 'the proxy to cut the idle connection', 10_000);
    expect(closedCode).toBe(1006);
    await waitFor(() => s.manager.getConnectionCount() === 0, 'server to notice');
  });
});
