// A private redis-server for a benchmark (free loopback port, no persistence), and what it says about its own
// cost: INFO commandstats, INFO cpu, INFO memory.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { sleep } from './common.mjs';

// Killed when the benchmark exits, however it ends (an error, Ctrl-C or SIGTERM).
const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

export async function freePort() {
  const srv = createServer();
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * Start `redis-server` (REDIS_SERVER_PATH or the one on PATH) on a free port. Resolves with
 * `{ url, port, admin, stats(), stop() }` once it answers; `admin` is an ioredis client for INFO and FLUSHALL.
 */
export async function startRedisServer() {
  const port = await freePort();
  const child = spawn(
    process.env.REDIS_SERVER_PATH || 'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--loglevel',
      'warning',
    ],
    { stdio: 'ignore' },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  const spawnError = new Promise((_, reject) => child.once('error', reject));
  spawnError.catch(() => {});
  const admin = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50 });
  admin.on('error', () => {}); // refused until it listens: ioredis retries every 50 ms
  const timeout = sleep(5000).then(() => {
    throw new Error(`redis-server on ${port} did not start in 5 s`);
  });
  try {
    await Promise.race([new Promise((r) => admin.once('ready', r)), spawnError, timeout]);
  } catch (err) {
    admin.disconnect();
    child.kill('SIGKILL');
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    admin,
    /** What Redis has spent so far; subtract two readings with {@link statsDelta}. */
    stats: () => readStats(admin),
    stop() {
      admin.disconnect();
      child.kill('SIGKILL');
    },
  };
}

/**
 * One reading of Redis's own accounting:
 * - `cmdUs`: the sum of `usec` over every command in INFO commandstats. Redis 7 counts a command run by a script
 *   both on its own line and inside the script's (EVALSHA) time, so for script-heavy work this is an upper bound.
 * - `cpuUs`: the redis-server process's CPU (INFO cpu `used_cpu_user` + `used_cpu_sys`): commands, networking and
 *   everything else of its single main thread.
 * - `usedMemory`: INFO memory `used_memory` without the clients' query and output buffers (`mem_clients_normal`,
 *   `mem_clients_slaves`), which come and go with traffic: the bytes that stay.
 * - `commands`: usec and calls per command, for a breakdown.
 */
export async function readStats(admin) {
  const [commandstats, cpu, mem] = await Promise.all([
    admin.info('commandstats'),
    admin.info('cpu'),
    admin.info('memory'),
  ]);
  const commands = {};
  let cmdUs = 0;
  for (const m of commandstats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    commands[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
    if (m[1] !== 'info') cmdUs += Number(m[3]); // the benchmark's own readings are not the system's cost
  }
  const field = (text, name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    cmdUs,
    cpuUs: (field(cpu, 'used_cpu_user') + field(cpu, 'used_cpu_sys')) * 1e6,
    usedMemory:
      field(mem, 'used_memory') - field(mem, 'mem_clients_normal') - field(mem, 'mem_clients_slaves'),
    commands,
    atMs: performance.now(),
  };
}

/** `after − before`, with the commands that cost most first. */
export function statsDelta(before, after) {
  const commands = Object.entries(after.commands)
    .map(([name, a]) => {
      const b = before.commands[name] ?? { calls: 0, usec: 0 };
      return { name, calls: a.calls - b.calls, usec: a.usec - b.usec };
    })
    .filter((c) => c.calls > 0)
    .sort((x, y) => y.usec - x.usec);
  return {
    cmdUs: after.cmdUs - before.cmdUs,
    cpuUs: after.cpuUs - before.cpuUs,
    usedMemory: after.usedMemory - before.usedMemory,
    wallMs: after.atMs - before.atMs,
    commands,
  };
}
