import type { ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';

/** A reverse proxy started by a test: where it listens, and how to stop it. */
export interface RunningProxy {
  port: number;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

/**
 * Wait until the proxy process `child` accepts connections on `port` (at most 10 s); fail with its stderr when it
 * exits or cannot be spawned. `stopSignal` is the signal that makes it stop at once.
 */
export async function superviseProxy(
  name: string,
  bin: string,
  child: ChildProcess,
  port: number,
  stopSignal: NodeJS.Signals,
): Promise<RunningProxy> {
  let stderr = '';
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err)); // reported below, never as an unhandled 'error' event
  child.stderr?.on('data', (d) => (stderr += String(d)));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (spawnError) throw new Error(`${bin} could not be started: ${spawnError.message}`);
    if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
        child.once('exit', () => resolve());
        child.kill(stopSignal);
      }),
  };
}
