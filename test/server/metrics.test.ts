import { readFileSync } from 'node:fs';
import * as promClient from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { closeCodeLabel, registerPrometheusMetrics } from '../../src/metrics/index.js';
import { closeAllServers, closed, openClient, startServer, waitFor } from '../helpers/server.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { cleanup, client, rawSocket, upgradeResponse } from './support.js';

afterEach(async () => {
  await closeAllServers();
  await cleanup();
});

const secret = 'metrics-test-secret-of-at-least-32-bytes!';

/** The value of one series in a scrape, e.g. `series(text, 'messages_sent_total{reliability="plain"}')`. */
function series(text: string, nameAndLabels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`websocket_stabilizer_${nameAndLabels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

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
    expect(text).toMatch(/websocket_stabilizer_disconnects_total\{reason="server-closed",code="1000"\} 1/);

    unregister();
    expect(await registry.metrics()).not.toContain('websocket_stabilizer_');
  });

  it('counts messages sent, replayed and dropped by reliability, fresh sessions by reason, disconnects by code', async () => {
    const s = await startServer({ tokens: { secret } });
    const registry = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry });
    const plain = await client(s.url);
    const plainGot: string[] = [];
    plain.on('message', (d) => void plainGot.push(d.toString()));
    const { client: proto, welcome } = await RawProtocolClient.handshake(s.url);
    const id = welcome.sessionId;
    await waitFor(() => s.manager.getConnectionCount() === 2, 'both registered');

    s.manager.broadcast('r1'); // plain 1, reliable 1
    s.manager.broadcast('v1', { volatile: true }); // plain 2, volatile 1
    await proto.waitForData(2);
    await waitFor(() => plainGot.length === 2, 'plain got both');

    proto.ws.terminate();
    await waitFor(() => !s.manager.isConnected(id), 'detached');
    expect(s.manager.sendToClient(id, 'lost', { volatile: true })).toBe('dropped'); // volatile dropped 1
    s.manager.sendToClient(id, 'm3');
    s.manager.broadcast('m4'); // plain 3
    const { client: back, welcome: w2 } = await RawProtocolClient.handshake(s.url, {
      token: welcome.token,
      sessionId: id,
      lastSeq: 1, // r1 was seq 1 (v1 had none)
    });
    await back.waitForData(2); // m3 and m4 replayed: reliable 3
    expect(w2.resume).toBe('resumed');
    back.ws.terminate();
    await waitFor(() => !s.manager.isConnected(id), 'detached again');
    // Claiming less than was acknowledged: fresh with reason gap.
    const { welcome: w3 } = await RawProtocolClient.handshake(s.url, { token: w2.token, lastSeq: 0 });
    expect(w3).toMatchObject({ resume: 'fresh', reason: 'gap' });
    const c = closed(plain);
    plain.close(3333); // an application code of the peer: reported as `other`
    await c;
    await waitFor(() => s.manager.getConnectionCount() === 1, 'plain gone');

    const text = await registry.metrics();
    expect(series(text, 'messages_sent_total{reliability="reliable"}')).toBe(3);
    expect(series(text, 'messages_sent_total{reliability="volatile"}')).toBe(1);
    expect(series(text, 'messages_sent_total{reliability="plain"}')).toBe(3);
    expect(series(text, 'messages_dropped_total{reliability="volatile"}')).toBe(1);
    expect(series(text, 'messages_dropped_total{reliability="plain"}')).toBe(0);
    expect(series(text, 'messages_replayed_total')).toBe(2);
    expect(series(text, 'fresh_sessions_total{reason="new"}')).toBe(1);
    expect(series(text, 'fresh_sessions_total{reason="gap"}')).toBe(1);
    expect(series(text, 'connects_total{mode="protocol",resume="resumed"}')).toBe(1);
    expect(series(text, 'disconnects_total{reason="client-closed",code="1006"}')).toBe(2);
    expect(series(text, 'disconnects_total{reason="client-closed",code="other"}')).toBe(1);
    expect(series(text, 'backend_degraded')).toBe(0);
    expect(series(text, 'backend_pending_operations')).toBe(0);
  });

  it('counts plain and volatile messages lost to a slow consumer', async () => {
    const s = await startServer({ maxBufferedBytes: 16 * 1024 });
    const registry = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry });
    const chunk = 'y'.repeat(256 * 1024);

    // Plain: the write that finds the socket over the cap loses the message and disconnects the client (4001).
    const slow = await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'plain registered');
    rawSocket(slow).pause();
    let failed = 0;
    for (let i = 0; i < 200 && failed === 0; i++) {
      failed += s.manager.broadcast(chunk).failed.length;
      await new Promise((r) => setImmediate(r));
    }
    expect(failed).toBe(1);
    s.manager.broadcast(chunk); // the socket is closing: not a recipient, not a drop
    const gone = closed(slow);
    rawSocket(slow).resume();
    expect((await gone).code).toBe(4001);
    await waitFor(() => s.manager.getConnectionCount() === 0, 'plain unregistered');

    // Volatile: skipped while the protocol client is over the cap; the client stays connected.
    const { client: proto } = await RawProtocolClient.handshake(s.url);
    (proto.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    let volatileDropped = 0;
    for (let i = 0; i < 200 && volatileDropped < 3; i++) {
      volatileDropped += s.manager.broadcast(chunk, { volatile: true }).dropped;
      await new Promise((r) => setImmediate(r));
    }
    expect(volatileDropped).toBe(3);
    expect(s.manager.getConnectionCount()).toBe(1);

    const text = await registry.metrics();
    expect(series(text, 'messages_dropped_total{reliability="plain"}')).toBe(1);
    expect(series(text, 'messages_dropped_total{reliability="volatile"}')).toBe(3);
    expect(series(text, 'disconnects_total{reason="slow-consumer",code="4001"}')).toBe(1);
  });

  it('counts upgrade rejections by status and reason', async () => {
    const origin = 'http://app.example';
    const s = await startServer(
      { allowedOrigins: [origin], maxConnections: 1 },
      {
        authenticate: (req) => {
          if (req.url?.includes('deny')) return false;
          if (req.url?.includes('boom')) throw new Error('auth backend down');
          return true;
        },
      },
    );
    s.manager.on('error', () => {});
    const registry = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry });
    expect((await upgradeResponse(s.port, '/ws', { Origin: 'http://evil.example:8080' })).status).toBe(403);
    expect((await upgradeResponse(s.port, '/ws', { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await upgradeResponse(s.port, '/ws?deny', { Origin: origin })).status).toBe(401);
    expect((await upgradeResponse(s.port, '/ws?boom', { Origin: origin })).status).toBe(401);
    await client(s.url, { origin });
    await waitFor(() => s.manager.getConnectionCount() === 1, 'registered');
    expect(await upgradeResponse(s.port, '/ws', { Origin: origin })).toEqual({
      status: 503,
      retryAfter: '1',
    });
    await s.manager.gracefulShutdown({ timeoutMs: 500 });
    expect((await upgradeResponse(s.port, '/ws', { Origin: origin })).status).toBe(503);

    const text = await registry.metrics();
    const rejected = (status: number, reason: string) =>
      series(text, `upgrade_rejections_total{status="${status}",reason="${reason}"}`);
    expect(rejected(403, 'origin-not-allowed')).toBe(2);
    expect(rejected(401, 'unauthorized')).toBe(1);
    expect(rejected(401, 'authenticate-failed')).toBe(1);
    expect(rejected(503, 'over-capacity')).toBe(1);
    expect(rejected(503, 'shutting-down')).toBe(1);
    expect(series(text, 'shutting_down')).toBe(1);
  });

  it('labels close codes outside the known set as other', () => {
    expect(closeCodeLabel(1000)).toBe('1000');
    expect(closeCodeLabel(1006)).toBe('1006');
    expect(closeCodeLabel(4001)).toBe('4001');
    expect(closeCodeLabel(4503)).toBe('4503');
    expect(closeCodeLabel(4499)).toBe('other');
    expect(closeCodeLabel(3000)).toBe('other');
  });
});

describe('docs/grafana-dashboard.json', () => {
  it('queries only metrics and labels that registerPrometheusMetrics exports', async () => {
    const dashboard = JSON.parse(
      readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'),
    ) as { panels: Array<{ type: string; targets?: Array<{ expr: string }> }> };
    const s = await startServer();
    const registry = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry });
    const scrape = await registry.metrics();
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    const used = new Set<string>();
    for (const expr of exprs) {
      const names = expr.match(/websocket_stabilizer_\w+/g) ?? [];
      expect(names.length, expr).toBeGreaterThan(0);
      const grouped =
        /by \(([^)]*)\)/
          .exec(expr)?.[1]
          ?.split(',')
          .map((l) => l.trim()) ?? [];
      for (const name of names) {
        used.add(name);
        expect(scrape, `${name} in a scrape`).toContain(`# TYPE ${name} `);
        const metric = registry.getSingleMetric(name) as unknown as { labelNames: string[] };
        for (const label of grouped.filter((l) => l !== 'instance'))
          expect(metric.labelNames, expr).toContain(label);
      }
    }
    // Every metric is on the dashboard.
    const exported = [...scrape.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    expect(exported.filter((name) => !used.has(name))).toEqual([]);
  });
});
