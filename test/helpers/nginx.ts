import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireBinary } from './binaries.js';
import { superviseProxy, type RunningProxy } from './proxy-process.js';

/** A free loopback port, chosen by the OS. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** The repository root (test/helpers/../..). */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * `text` with every `from` replaced by `to`; throws unless `from` occurs exactly `count` times, so that a config
 * file that changed under the test fails it instead of silently running something else.
 */
export function substitute(text: string, from: string, to: string, count = 1): string {
  const found = text.split(from).length - 1;
  if (found !== count)
    throw new Error(`expected ${count} × ${JSON.stringify(from)} in the config, found ${found}`);
  return text.split(from).join(to);
}

/**
 * deploy/nginx/websocket.conf as the tests run it: the only changes are the listen address (loopback, a free port),
 * the upstream's port and the two 60 s timeouts, scaled down to `timeoutS`.
 */
export function documentedNginxConfig(listenPort: number, upstreamPort: number, timeoutS: number): string {
  let conf = readFileSync(join(repoRoot, 'deploy/nginx/websocket.conf'), 'utf8');
  conf = substitute(conf, 'listen 80;', `listen 127.0.0.1:${listenPort};`);
  conf = substitute(conf, 'server 127.0.0.1:3000;', `server 127.0.0.1:${upstreamPort};`);
  conf = substitute(conf, 'proxy_read_timeout 60s;', `proxy_read_timeout ${timeoutS}s;`);
  return substitute(conf, 'proxy_send_timeout 60s;', `proxy_send_timeout ${timeoutS}s;`);
}

/**
 * Run a real nginx (`daemon off`, its own prefix in a temporary directory) with `httpBlock` as the content of its
 * `http { }` block, and wait until it accepts connections on `port` (which `httpBlock` must listen on). Each proxied
 * WebSocket takes two of its `workerConnections`.
 */
export async function startNginxWithConfig(
  httpBlock: string,
  port: number,
  workerConnections = 256,
): Promise<RunningProxy> {
  const nginxBin = requireBinary('nginx');
  const dir = mkdtempSync(join(tmpdir(), 'stabilizer-nginx-'));
  const conf = `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${httpBlock}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn(nginxBin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return superviseProxy('nginx', nginxBin, child, port, 'SIGTERM');
}

/**
 * Start a real nginx with the documented config (deploy/nginx/websocket.conf) in front of `upstreamPort`, its
 * timeouts scaled down to `readTimeoutS` seconds (nginx closes a connection whose upstream sent nothing that long).
 * `port`: listen on this one (to restart it where it was). Returns its port and a stop function.
 */
export async function startNginx(
  upstreamPort: number,
  readTimeoutS: number,
  port?: number,
): Promise<RunningProxy> {
  const listenPort = port ?? (await freePort());
  return startNginxWithConfig(documentedNginxConfig(listenPort, upstreamPort, readTimeoutS), listenPort);
}
