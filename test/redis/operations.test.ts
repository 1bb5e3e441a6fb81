import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as promClient from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerPrometheusMetrics } from '../../src/metrics/index.js';
import { createHealthHandler } from '../../src/server/index.js';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

// Its own redis-server: the test kills it.
let redis: TestRedis | undefined;
beforeEach(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await closeAllNodes();
  await redis?.stop();
});

function readyz(port: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('operations with the Redis backend', () => {
  it('answers 503 backend-degraded while redis-server is down, and 200 once the backend recovered', async () => {
    const node = await startNode(redis!.url, uniquePrefix());
    const health = createHealthHandler(node.manager);
    node.server.on('request', (req, res) => health(req, res) || res.writeHead(404).end());
    const port = (node.server.address() as AddressInfo).port;
    expect(await readyz(port)).toEqual({
      status: 200,
      body: { status: 'ready', reasons: [], connections: 0 },
    });

    await redis!.stop();
    await until(() => node.backend.degraded, 'degraded');
    expect(await readyz(port)).toEqual({
      status: 503,
      body: { status: 'not-ready', reasons: ['backend-degraded'], connections: 0 },
    });

    await redis!.restart();
    await until(() => !node.backend.degraded, 'recovered', 15_000);
    expect((await readyz(port)).status).toBe(200);
  });

  it('exports the degraded state and the pending operations as gauges', async () => {
    const node = await startNode(redis!.url, uniquePrefix());
    const registry = new promClient.Registry();
    registerPrometheusMetrics(node.manager, { promClient, registry });
    const gauge = async (name: string) => {
      const line = (await registry.metrics())
        .split('\n')
        .find((l) => l.startsWith(`websocket_stabilizer_${name} `));
      return Number(line?.split(' ')[1]);
    };
    expect(await gauge('backend_degraded')).toBe(0);

    // Redis stops answering (SIGSTOP): a broadcast's script is sent and stays pending.
    redis!.pause();
    const pending = node.manager.broadcast('while paused').cluster!.catch(() => 'failed');
    // At least the broadcast (the node heartbeat may be waiting too).
    expect(await gauge('backend_pending_operations')).toBeGreaterThanOrEqual(1);
    redis!.resume();
    expect(await pending).not.toBe('failed');

    await redis!.stop();
    await until(() => node.backend.degraded, 'degraded');
    expect(await gauge('backend_degraded')).toBe(1);
  });
});
