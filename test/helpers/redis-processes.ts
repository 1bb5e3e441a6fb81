import { createServer } from 'node:net';
import { Redis } from 'ioredis';

// What the Redis Cluster and Sentinel harnesses share: free ports, a one-shot connection to one process, and the
// synchronous kill of every process still running when the test process exits (an `afterAll` that never ran).

export const HOST = '127.0.0.1';

/** Kill functions of every harness still running; each harness adds its own and removes it on `stop()`. */
export const running = new Set<() => void>();
process.once('exit', () => {
  for (const kill of running) kill();
});

/** `count` distinct free loopback ports (held open together so that none is handed out twice). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const srv = createServer();
          srv.unref();
          srv.once('error', reject);
          srv.listen(0, HOST, () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run a command on one process with a short-lived connection (no retries, no offline queue). */
export async function onPort<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  r.on('error', () => {}); // reported by the rejected command instead
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}
