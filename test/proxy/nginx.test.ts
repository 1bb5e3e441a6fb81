import { afterEach, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { startNginx } from '../helpers/nginx.js';
import { closeAllServers, openClient, startServer, waitFor } from '../helpers/server.js';

requireBinary('nginx'); // without it this file fails at once with what to install, before any test

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((s) => s()));
  await closeAllServers();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server with these heartbeat settings behind nginx (proxy_read_timeout 1 s), and a silent client through it. */
async function silentClientBehindNginx(config: { pingIntervalMs: number; pongTimeoutMs: number }) {
  const s = await startServer(config);
  const proxy = await startNginx(s.port, 1);
  stops.push(proxy.stop);
  const ws = await openClient(`ws://127.0.0.1:${proxy.port}/ws`);
  const state: { closedCode?: number } = {};
  ws.on('close', (code) => (state.closedCode = code));
  await waitFor(() => s.manager.getConnectionCount() === 1);
  return { s, ws, state };
}

// A real nginx with proxy_read_timeout 1 s stands in for the 60 s of nginx/ALB defaults, scaled down.
describe('behind a real nginx reverse proxy', () => {
  it('the heartbeat keeps a silent client connected past the proxy idle timeout', async () => {
    const { s, ws, state } = await silentClientBehindNginx({ pingIntervalMs: 300, pongTimeoutMs: 2000 });
    await sleep(3000); // three proxy timeouts of silence from both applications
    expect(state.closedCode).toBeUndefined();
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    expect(s.manager.broadcast('still here').delivered).toBe(1);
    await waitFor(() => got.length === 1);
    expect(got[0]).toBe('still here');
  });

  it('without pings in time, the same proxy cuts the connection (the control case)', async () => {
    const { s, state } = await silentClientBehindNginx({ pingIntervalMs: 60_000, pongTimeoutMs: 10_000 });
    await waitFor(() => state.closedCode !== undefined, 'the proxy to cut the idle connection', 10_000);
    expect(state.closedCode).toBe(1006);
    await waitFor(() => s.manager.getConnectionCount() === 0, 'server to notice');
  });
});
