// Tiny request/response RPC over the IPC channel of a forked child process.
import { fork } from 'node:child_process';

/** In a child: serve `handlers[cmd](args)` for each request from the parent. */
export function serve(handlers) {
  process.on('message', async (msg) => {
    if (!msg || typeof msg.id !== 'number') return;
    try {
      const fn = handlers[msg.cmd];
      if (!fn) throw new Error(`unknown command ${msg.cmd}`);
      const result = await fn(msg.args ?? {});
      process.send({ id: msg.id, ok: true, result });
    } catch (err) {
      process.send({ id: msg.id, ok: false, error: String(err?.stack ?? err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/** In the parent: fork `file` and return `{ call(cmd, args), kill() }`. */
export function spawnChild(file, { execArgv = [], env = {} } = {}) {
  const child = fork(file, [], {
    execArgv,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const waiting = new Map();
  child.on('message', (msg) => {
    const w = waiting.get(msg?.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.ok) w.resolve(msg.result);
    else w.reject(new Error(`${file}: ${msg.error}`));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.once('exit', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`${file} exited (${code ?? signal})`));
    waiting.clear();
  });
  return {
    pid: child.pid,
    call(cmd, args, timeoutMs = 300_000) {
      return new Promise((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`${file}: ${cmd} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, {
          resolve: (v) => (clearTimeout(timer), resolve(v)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        child.send({ id, cmd, args });
      });
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
