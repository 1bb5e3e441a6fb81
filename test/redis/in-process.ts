import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  WebSocketConnectionManager,
  type ManagerHooks,
  type WebSocketConfig,
} from '../../src/server/index.js';
import type { AttachOptions } from '../../src/server/upgrade/upgrade.js';
import { createRedisBackend, type RedisBackend, type RedisBackendOptions } from '../../src/redis/index.js';

/** One cluster node in this process: a manager on an http.Server, with its own Redis backend (own node id). */
export interface InProcessNode {
  manager: WebSocketConnectionManager;
  backend: RedisBackend;
  server: Server;
  url: string;
  close(): Promise<void>;
}

export const TEST_SECRET = 'redis-cluster-test-secret-0123456789abcdef';

/** A key prefix of its own per test, so tests sharing a redis-server never see each other's data. */
export const uniquePrefix = (): string => `t${randomBytes(4).toString('hex')}:`;

const open = new Set<InProcessNode>();

export async function startNode(
  redisUrl: string,
  keyPrefix: string,
  config: WebSocketConfig = {},
  backendOptions: RedisBackendOptions = {},
  attach: Omit<AttachOptions, 'path'> = {},
  hooks: ManagerHooks = {},
): Promise<InProcessNode> {
  const backend = await createRedisBackend({
    url: redisUrl,
    keyPrefix,
    nodeHeartbeatMs: 200,
    nodeTimeoutMs: 1000,
    connectTimeoutMs: 2000,
    ...backendOptions,
  });
  const manager = new WebSocketConnectionManager(
    {
      backend,
      tokens: { secret: TEST_SECRET },
      sessionTtlMs: 30_000,
      pingIntervalMs: 1000,
      pongTimeoutMs: 2000,
      ...config,
    },
    hooks,
  );
  const server = createServer();
  manager.attach(server, { path: '/ws', ...attach });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  const node: InProcessNode = {
    manager,
    backend,
    server,
    url: `ws://127.0.0.1:${port}/ws`,
    async close() {
      if (closed) return;
      closed = true;
      open.delete(node);
      await manager.gracefulShutdown({ timeoutMs: 300 });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await backend.close();
    },
  };
  open.add(node);
  return node;
}

export async function closeAllNodes(): Promise<void> {
  await Promise.all([...open].map((n) => n.close()));
}

/** Poll until `predicate` holds. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
