import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { requireBinary } from '../helpers/binaries.js';

// Checked when a test file imports this harness: without redis-server the file fails at once with what to install.
const REDIS_SERVER = requireBinary('redis-server');

/** A redis-server owned by one test file, on a free loopback port, without persistence. */
export interface TestRedis {
  url: string;
  port: number;
  /** Stop it (SIGKILL) and wait until the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** Crash it (SIGKILL) and start a new, empty one on the same port: the history is gone. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: Redis stays connected but answers nothing meanwhile. */
  pause(): void;
  resume(): void;
}

const running = new Set<TestRedis>();
process.once('exit', () => {
  for (const r of running) void r.stop();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Resolve once `PING` on the port answers `+PONG`; reject at once if the process has died meanwhile. */
function waitForPong(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = createConnection({ port, host: '127.0.0.1' });
      let buf = '';
      const retry = () => {
        sock.destroy();
        const died = exitReason(child);
        if (died !== undefined) reject(new Error(`redis-server on ${port} ${died}`));
        else if (Date.now() > deadline) reject(new Error(`redis on ${port} did not start`));
        else setTimeout(attempt, 20);
      };
      sock.once('error', retry);
      sock.on('data', (d) => {
        buf += d.toString();
        if (buf.includes('+PONG') || buf.includes('-NOAUTH')) {
          sock.destroy();
          resolve();
        } else if (buf.includes('-')) retry(); // e.g. -LOADING
      });
      sock.once('connect', () => sock.write('PING\r\n'));
    };
    attempt();
  });
}

const spawnErrors = new WeakMap<ChildProcess, Error>();

/** Why the process is gone (a spawn error or its exit), or undefined while it runs. */
function exitReason(child: ChildProcess): string | undefined {
  const err = spawnErrors.get(child);
  if (err) return `could not be started: ${err.message}`;
  if (child.exitCode !== null) return `exited with code ${child.exitCode}`;
  if (child.signalCode !== null) return `was killed by ${child.signalCode}`;
  return undefined;
}

function launch(port: number, extraArgs: string[]): ChildProcess {
  const child = spawn(
    REDIS_SERVER,
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
      ...extraArgs,
    ],
    { stdio: 'ignore' },
  );
  // A spawn failure (ENOENT, EACCES) is reported by waitForPong, never as an unhandled 'error' event.
  child.once('error', (err) => spawnErrors.set(child, err));
  child.unref();
  return child;
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (exitReason(child) !== undefined || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/**
 * Start a private redis-server (`redis-server --port N --bind 127.0.0.1 --save '' --appendonly no`) on a free
 * port. The Redis on 6379 is never touched. Tests that use it should `stop()` it in `afterAll`.
 * `extraArgs` are appended to the command line (e.g. `['--requirepass', 'x']`).
 */
export async function startRedis(extraArgs: string[] = []): Promise<TestRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    let child = launch(port, extraArgs);
    let paused = false;
    try {
      await waitForPong(child, port, 5000);
    } catch (err) {
      await killAndWait(child);
      if (attempt < 3 && !spawnErrors.has(child)) continue; // the port was taken meanwhile: try another
      throw err;
    }
    const r: TestRedis = {
      url: `redis://127.0.0.1:${port}`,
      port,
      async stop() {
        running.delete(r);
        if (paused) child.kill('SIGCONT');
        paused = false;
        await killAndWait(child);
      },
      async restart() {
        await killAndWait(child);
        child = launch(port, extraArgs);
        await waitForPong(child, port, 5000);
      },
      pause() {
        paused = true;
        child.kill('SIGSTOP');
      },
      resume() {
        paused = false;
        child.kill('SIGCONT');
      },
    };
    running.add(r);
    return r;
  }
}
