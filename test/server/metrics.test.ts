import * as promClient from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { registerPrometheusMetrics } from '../../src/metrics/index.js';
import { closeAllServers, closed, openClient, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);

describe('Prometheus metrics', () => {
  it('counts connects, messages and disconnects by reason, and reads gauges at scrape time', async () => {
    const s = await startServer();
    const registry = new promClient.Registry();
    const unregister = registerPrometheusMetrics(s.manager, { promClient, registry });
    let received = 0;
    s.manager.on('message', () => {
      received++;
    });
    const ws = await openClient(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 1);
    ws.send('one');
    ws.send('two');
    await waitFor(() => s.manager.getConnectionCount() === 1);
    await waitFor(() => received === 2, 'two messages');
    let text = await registry.metrics();
    expect(text).toMatch(/websocket_stabilizer_connections 1/);
    expect(text).toMatch(/websocket_stabilizer_connects_total\{mode="plain",resume="fresh"\} 1/);
    expect(text).toMatch(/websocket_stabilizer_messages_received_total\{reliable="false"\} 2/);

    const c = closed(ws);
    await s.manager.disconnect(s.manager.getActiveConnections()[0]!, 1000);
    await c;
    text = await registry.metrics();
    expect(text).toMatch(/websocket_stabilizer_connections 0/);
    expect(text).toMatch(/websocket_stabilizer_disconnects_total\{reason="server-closed"\} 1/);

    unregister();
    expect(await registry.metrics()).not.toContain('websocket_stabilizer_');
  });
});
