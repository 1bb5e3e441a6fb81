import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { TEST_SECRET } from './in-process.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/node.mjs', import.meta.url));

/**
 * Build the server and redis entry points (ESM) into a private folder under node_modules/.cache, so the node
 * processes run the built library without racing other test files (or engineers) over dist/.
 */
export async function buildLibrary(): Promise<string> {
  const outDir = `${root}node_modules/.cache/websocket-stabilizer-redis-test/${process.pid}`;
  await build({
    config: false,
    entry: { index: `${root}src/server/index.ts`, redis: `${root}src/redis/index.ts` },
    format: ['esm'],
    outDir,
    target: 'node20',
    platform: 'node',
    external: ['ioredis', 'ws', 'zod'],
    dts: false,
    sourcemap: false,
    clean: true,
    silent: true,
  });
  if (!existsSync(`${outDir}/redis.js`)) throw new Error('build produced no redis.js');
  return outDir;
}

type Reply = { type: 'reply'; id: number; ok: boolean; result?: unknown; error?: string };
export type NodeEvent = { type: string; [k: string]: unknown };

/** A cluster node in its own process (fixtures/node.mjs), driven over IPC. */
export interface NodeProcess {
  nodeId: string;
  url: string;
  proc: ChildProcess;
  /** Every IPC message it sent (events, acked/failed stream messages, app messages). */
  events: NodeEvent[];
  request<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  /** SIGKILL: no shutdown, no cleanup. Resolves when the process is gone. */
  kill9(): Promise<void>;
  shutdown(): Promise<void>;
}

let nextRequest = 1;

export function startNodeProcess(
  dist: string,
  redisUrl: string,
  keyPrefix: string,
  nodeId: string,
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  const proc = fork(fixture, [], {
    env: {
      ...process.env,
      STABILIZER_DIST: dist,
      REDIS_URL: redisUrl,
      KEY_PREFIX: keyPrefix,
      NODE_ID: nodeId,
      TOKEN_SECRET: TEST_SECRET,
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const events: NodeEvent[] = [];
  return new Promise((resolve, reject) => {
    const node: NodeProcess = {
      nodeId,
      url: '',
      proc,
      events,
      request<T>(cmd: string, args: Record<string, unknown> = {}) {
        const id = nextRequest++;
        return new Promise<T>((res, rej) => {
          waiting.set(id, { resolve: res as (v: unknown) => void, reject: rej });
          proc.send({ ...args, cmd, id });
        });
      },
      kill9() {
        return new Promise((res) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return res();
          proc.once('exit', () => res());
          proc.kill('SIGKILL');
        });
      },
      async shutdown() {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise((res) => proc.once('exit', res));
        await node.request('shutdown').catch(() => {});
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        await node.kill9();
      },
    };
    proc.on('message', (raw) => {
      const msg = raw as NodeEvent;
      if (msg.type === 'ready') {
        node.url = `ws://127.0.0.1:${msg.port as number}/ws`;
        resolve(node);
      } else if (msg.type === 'startup-error') {
        reject(new Error(`node ${nodeId}: ${msg.code as string} ${msg.message as string}`));
      } else if (msg.type === 'reply') {
        const r = msg as unknown as Reply;
        const w = waiting.get(r.id);
        waiting.delete(r.id);
        if (r.ok) w?.resolve(r.result);
        else w?.reject(new Error(r.error));
      } else events.push(msg);
    });
    proc.once('exit', (code, signal) => {
      for (const w of waiting.values()) w.reject(new Error(`node ${nodeId} exited (${code ?? signal})`));
      waiting.clear();
      reject(new Error(`node ${nodeId} exited before it was ready`));
    });
  });
}
