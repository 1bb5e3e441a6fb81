import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis, type ClusterOptions } from 'ioredis';
import { requireBinary } from './binaries.js';
import { freePorts, HOST, onPort, running, sleep } from './redis-processes.js';

// Checked when a test file imports this harness: without the programs the file fails at once with what to install.
const REDIS_SERVER = requireBinary('redis-server');
const REDIS_CLI = requireBinary('redis-cli');

const MASTERS = 3;
const NODES = MASTERS * 2; // one replica per master
const SLOTS = 16384;

/** One redis-server of the cluster. `port` is its client port; its cluster bus listens on `busPort`. */
export interface RedisClusterNode {
  host: string;
  port: number;
  busPort: number;
  /** False once the harness has killed it. */
  alive: boolean;
}

/** Who serves a range of hash slots right now, as `CLUSTER SLOTS` on a live node reports it. */
export interface SlotRange {
  start: number;
  end: number;
  /** Client port of the master. */
  master: number;
  /** Client ports of its replicas. */
  replicas: number[];
}

/** What {@link TestRedisCluster.killMaster} did. */
export interface KilledMaster {
  /** The slot the key (or slot number) maps to. */
  slot: number;
  /** Client port of the master that was killed with SIGKILL. */
  port: number;
}

/** A real 3-master, 3-replica Redis Cluster on loopback, owned by one test file. */
export interface TestRedisCluster {
  /** All six nodes, in start order (dead ones stay in the list with `alive: false`). */
  readonly nodes: readonly RedisClusterNode[];
  /** `[{ host, port }, …]` of the live nodes: the startup nodes for `new Cluster(...)`. */
  startupNodes(): { host: string; port: number }[];
  /**
   * A new ioredis `Cluster` on the live nodes, closed by `stop()`. The defaults refresh the slot map quickly
   * (tests kill masters); `options` are merged over them.
   */
  createClient(options?: ClusterOptions): Cluster;
  /** The slot of a key, by `CLUSTER KEYSLOT` (hash tags `{…}` count, as in Redis). */
  keySlot(key: string): Promise<number>;
  /** The slot map as a live node sees it. */
  slots(): Promise<SlotRange[]>;
  /** `kill -9` the master that owns the slot of `slotOrKey` (a slot number or a key). */
  killMaster(slotOrKey: number | string): Promise<KilledMaster>;
  /**
   * Wait until a replica has been promoted for every slot whose master was killed, and every live node says
   * `cluster_state:ok` and agrees on it. Resolves with the new slot map.
   * @default timeoutMs 15000
   */
  waitForFailover(timeoutMs?: number): Promise<SlotRange[]>;
  /** Send a signal to the node on `port` (`SIGSTOP` pauses it, `SIGCONT` resumes it; use `killMaster` to kill). */
  signal(port: number, signal: 'SIGSTOP' | 'SIGCONT'): void;
  /** Kill every node (SIGKILL), close the clients made by `createClient`, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

interface Options {
  /**
   * `cluster-node-timeout`: how long a master may be unreachable before its replica takes over.
   * @default 1000
   */
  nodeTimeoutMs?: number;
  /** Extra `redis-server` arguments for every node. */
  extraArgs?: string[];
}

const infoField = (info: string, field: string) => new RegExp(`^${field}:(.*)\\r?$`, 'm').exec(info)?.[1];

type SlotsReply = [number, number, ...[host: string, port: number, nodeId: string, info: unknown[]][]][];

function parseSlots(reply: SlotsReply): SlotRange[] {
  return reply
    .map(([start, end, ...servers]) => ({
      start,
      end,
      master: Number(servers[0]![1]),
      replicas: servers.slice(1).map((r) => Number(r[1])),
    }))
    .sort((a, b) => a.start - b.start);
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (exited(child) || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function runCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const cli = spawn(REDIS_CLI, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (out += d.toString()));
    cli.once('error', reject);
    cli.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(' ')} exited ${code}:\n${out}`)),
    );
  });
}

/** Poll `check` until it returns a value (not undefined), or reject with the last reason after `timeoutMs`. */
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
      throw new Error(`redis cluster: ${what} not reached in ${timeoutMs} ms ${last}`);
    await sleep(100);
  }
}

/** Wait until `PING` answers on the port, or fail at once if the process died. */
function waitForPong(child: ChildProcess, port: number): Promise<void> {
  return until(`redis-server on ${port} answering PING`, 5000, async () => {
    if (exited(child))
      throw new Error(`redis-server on ${port} exited (${child.exitCode ?? child.signalCode})`);
    return (await onPort(port, (r) => r.ping())) === 'PONG' ? true : undefined;
  }).then(() => undefined);
}

/**
 * Start a Redis Cluster of three masters and three replicas (`redis-server --cluster-enabled yes`, no persistence)
 * on free loopback ports, in a fresh temp dir, joined with `redis-cli --cluster create … --cluster-replicas 1`.
 * Resolves when every node says `cluster_state:ok`, knows all six nodes, and every replica is in sync.
 * Tests should `stop()` it in `afterAll`.
 */
export async function startRedisCluster(options: Options = {}): Promise<TestRedisCluster> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), 'stabilizer-redis-cluster-'));
  const ports = await freePorts(NODES * 2);
  const nodes: RedisClusterNode[] = [];
  const children: ChildProcess[] = [];
  const clients = new Set<Cluster>();
  let stopped = false;

  const live = () => nodes.filter((n) => n.alive);

  const cluster: TestRedisCluster = {
    nodes,
    startupNodes: () => live().map(({ host, port }) => ({ host, port })),
    createClient(clientOptions = {}) {
      const c = new Cluster(cluster.startupNodes(), {
        slotsRefreshTimeout: 1000,
        slotsRefreshInterval: 1000,
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        ...clientOptions,
      });
      c.on('error', () => {}); // a killed master makes the client log node errors; tests assert on commands
      clients.add(c);
      return c;
    },
    keySlot: (key) => onPort(live()[0]!.port, (r) => r.cluster('KEYSLOT', key)),
    slots: () => firstAnswer((r) => r.cluster('SLOTS')).then(parseSlots),
    async killMaster(slotOrKey) {
      const slot = typeof slotOrKey === 'number' ? slotOrKey : await cluster.keySlot(slotOrKey);
      if (!Number.isInteger(slot) || slot < 0 || slot >= SLOTS) throw new Error(`no such slot: ${slot}`);
      const range = (await cluster.slots()).find((s) => s.start <= slot && slot <= s.end);
      if (!range) throw new Error(`slot ${slot} has no master`);
      const i = nodes.findIndex((n) => n.port === range.master);
      nodes[i]!.alive = false;
      await killAndWait(children[i]!);
      return { slot, port: range.master };
    },
    waitForFailover(timeoutMs = 15_000) {
      return until(
        'failover (every slot on a live master, cluster_state:ok everywhere)',
        timeoutMs,
        async () => {
          const alive = new Set(live().map((n) => n.port));
          for (const n of live()) {
            const info = await onPort(n.port, (r) => r.cluster('INFO'));
            if (infoField(info, 'cluster_state') !== 'ok') return undefined;
            const map = parseSlots(await onPort(n.port, (r) => r.cluster('SLOTS')));
            const covered = map.reduce((sum, s) => sum + s.end - s.start + 1, 0);
            if (covered !== SLOTS || map.some((s) => !alive.has(s.master))) return undefined;
          }
          return cluster.slots();
        },
      );
    },
    signal(port, signal) {
      const i = nodes.findIndex((n) => n.port === port);
      if (i < 0) throw new Error(`no node on port ${port}`);
      children[i]!.kill(signal);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      running.delete(killNow);
      for (const c of clients) c.disconnect();
      clients.clear();
      for (const n of nodes) n.alive = false;
      await Promise.all(children.map(killAndWait));
      rmSync(dir, { recursive: true, force: true });
    },
  };

  function killNow(): void {
    for (const child of children) if (!exited(child)) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }

  /** The answer of the first live node that answers. */
  async function firstAnswer<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    let lastErr: unknown;
    for (const n of live()) {
      try {
        return await onPort(n.port, fn);
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr instanceof Error ? lastErr : new Error('no live node answered');
  }

  try {
    for (let i = 0; i < NODES; i++) {
      const port = ports[i]!;
      const busPort = ports[NODES + i]!;
      // prettier-ignore
      const child = spawn(REDIS_SERVER, [
        '--port', String(port), '--bind', HOST, '--cluster-port', String(busPort),
        '--cluster-enabled', 'yes', '--cluster-node-timeout', String(nodeTimeoutMs),
        '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir,
        // A replica may always take over, however long it was cut off (the tests kill masters on purpose).
        '--cluster-replica-validity-factor', '0',
        '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--logfile', join(dir, `redis-${port}.log`),
        ...(options.extraArgs ?? []),
      ], { stdio: 'ignore' });
      child.once('error', () => {}); // surfaces as a dead process in waitForPong
      child.unref();
      children.push(child);
      nodes.push({ host: HOST, port, busPort, alive: true });
    }
    running.add(killNow);
    await Promise.all(children.map((c, i) => waitForPong(c, nodes[i]!.port)));
    await runCli([
      '--cluster',
      'create',
      ...nodes.map((n) => `${HOST}:${n.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await until('cluster_state:ok on all six nodes, replicas in sync', 20_000, async () => {
      for (const n of nodes) {
        const info = await onPort(n.port, (r) => r.cluster('INFO'));
        if (infoField(info, 'cluster_state') !== 'ok') return undefined;
        if (infoField(info, 'cluster_known_nodes') !== String(NODES)) return undefined;
        const repl = await onPort(n.port, (r) => r.info('replication'));
        if (infoField(repl, 'role') === 'slave' && infoField(repl, 'master_link_status') !== 'up')
          return undefined;
      }
      const map = await cluster.slots();
      return map.length === MASTERS && map.every((s) => s.replicas.length === 1) ? true : undefined;
    });
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
