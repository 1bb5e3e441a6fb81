import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { requireBinary } from './binaries.js';
import { freePorts, HOST, onPort, running, sleep } from './redis-processes.js';

// Checked when a test file imports this harness: without redis-server the file fails at once with what to install.
// Sentinel is redis-server's own `--sentinel` mode: no other program is needed.
const REDIS_SERVER = requireBinary('redis-server');

const SENTINELS = 3;
export const MASTER_NAME = 'mymaster';

/** A real Sentinel set-up on loopback: a master, one replica and three Sentinels (quorum 2), owned by one test file. */
export interface TestRedisSentinel {
  /** Client ports of the two servers, in start order (`[master, replica]` at the start). */
  readonly serverPorts: readonly number[];
  readonly sentinelPorts: readonly number[];
  /** A new ioredis client that asks the Sentinels for the master (`{ sentinels, name }`), closed by `stop()`. */
  createClient(options?: RedisOptions): Redis;
  /** Client port of the master as the Sentinels report it now. */
  masterPort(): Promise<number>;
  /** `kill -9` the current master; resolves with its port. */
  killMaster(): Promise<number>;
  /** Wait until the Sentinels report another master than `oldPort` and it answers as a master. @default 20000 */
  waitForFailover(oldPort: number, timeoutMs?: number): Promise<number>;
  /** Send a signal to the server on `port` (`SIGSTOP` pauses it, `SIGCONT` resumes it). */
  signal(port: number, signal: 'SIGSTOP' | 'SIGCONT'): void;
  /** Kill every process (SIGKILL), close the clients, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`redis sentinel: ${what} not reached in ${timeoutMs} ms ${last}`);
    await sleep(100);
  }
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
    return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/**
 * Start a master, a replica and three Sentinels (`redis-server <conf> --sentinel`, quorum 2,
 * `down-after-milliseconds 1000`) on free loopback ports in a temp dir, without persistence. Resolves when the
 * replica is in sync and every Sentinel knows the replica and the two other Sentinels (so that a failover can be
 * elected at once).
 */
export async function startRedisSentinel(): Promise<TestRedisSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'stabilizer-redis-sentinel-'));
  const [masterPort, replicaPort, ...sentinelPorts] = await freePorts(2 + SENTINELS);
  const children = new Map<number, ChildProcess>();
  const clients = new Set<Redis>();
  let stopped = false;
  const killAll = () => {
    for (const c of children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  running.add(killAll);

  const start = (port: number, args: string[]) => {
    const child = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
    children.set(port, child);
  };
  const server = (port: number, extra: string[] = []) =>
    start(port, [
      '--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir,
      '--dbfilename', `dump-${port}.rdb`, ...extra,
    ]); // prettier-ignore

  const h: TestRedisSentinel = {
    serverPorts: [masterPort!, replicaPort!],
    sentinelPorts,
    createClient(options = {}) {
      const c = new Redis({
        sentinels: sentinelPorts.map((port) => ({ host: HOST, port })),
        name: MASTER_NAME,
        lazyConnect: true,
        sentinelRetryStrategy: (n: number) => Math.min(100 * n, 1000),
        ...options,
      });
      c.on('error', () => {});
      clients.add(c);
      return c;
    },
    async masterPort() {
      for (const port of sentinelPorts) {
        try {
          const addr = await onPort(port, (r) => r.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME));
          if (Array.isArray(addr)) return Number(addr[1]);
        } catch {
          // ask the next Sentinel
        }
      }
      throw new Error('no Sentinel answered');
    },
    async killMaster() {
      const port = await h.masterPort();
      await killAndWait(children.get(port)!);
      return port;
    },
    waitForFailover(oldPort, timeoutMs = 20_000) {
      return until('a promoted replica', timeoutMs, async () => {
        const port = await h.masterPort();
        if (port === oldPort) return undefined;
        const info = await onPort(port, (r) => r.info('replication'));
        return /^role:master/m.test(info) ? port : undefined;
      });
    },
    signal(port, signal) {
      const child = children.get(port);
      if (!child) throw new Error(`no server on port ${port}`);
      child.kill(signal);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const c of clients) c.disconnect();
      await Promise.all([...children.values()].map(killAndWait));
      running.delete(killAll);
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    server(masterPort!);
    server(replicaPort!, ['--replicaof', HOST, String(masterPort)]);
    for (const port of [masterPort!, replicaPort!])
      await until(`redis-server on ${port}`, 5000, async () =>
        (await onPort(port, (r) => r.ping())) === 'PONG' ? true : undefined,
      );
    await until('replica in sync', 10_000, async () => {
      const info = await onPort(replicaPort!, (r) => r.info('replication'));
      return /^master_link_status:up/m.test(info) ? true : undefined;
    });
    for (const port of sentinelPorts) {
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          `bind ${HOST}`,
          `dir ${dir}`,
          `sentinel monitor ${MASTER_NAME} ${HOST} ${masterPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 5000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      start(port, [conf, '--sentinel']);
    }
    for (const port of sentinelPorts) {
      await until(`sentinel on ${port} knows the replica and its peers`, 15_000, async () => {
        const replicas = (await onPort(port, (r) =>
          r.call('SENTINEL', 'replicas', MASTER_NAME),
        )) as unknown[];
        const peers = (await onPort(port, (r) => r.call('SENTINEL', 'sentinels', MASTER_NAME))) as unknown[];
        return replicas.length === 1 && peers.length === SENTINELS - 1 ? true : undefined;
      });
    }
  } catch (err) {
    await h.stop();
    throw err;
  }
  return h;
}
