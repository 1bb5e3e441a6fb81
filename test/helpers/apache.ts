import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary } from './binaries.js';
import { freePort, repoRoot, substitute } from './nginx.js';
import { superviseProxy, type RunningProxy } from './proxy-process.js';

/** Where Debian's apache2 package keeps its modules. */
const MODULES = '/usr/lib/apache2/modules';

/**
 * deploy/apache/websocket.conf as the tests run it: the only changes are the virtual host's address (loopback, a
 * free port), the upstream's port and the two 60 s timeouts, scaled down to `timeoutS`.
 */
export function documentedApacheConfig(listenPort: number, upstreamPort: number, timeoutS: number): string {
  let conf = readFileSync(join(repoRoot, 'deploy/apache/websocket.conf'), 'utf8');
  conf = substitute(conf, '<VirtualHost *:80>', `<VirtualHost 127.0.0.1:${listenPort}>`);
  conf = substitute(conf, 'http://127.0.0.1:3000/', `http://127.0.0.1:${upstreamPort}/`, 2);
  conf = substitute(conf, 'Timeout 60', `Timeout ${timeoutS}`);
  return substitute(conf, 'timeout=60', `timeout=${timeoutS}`);
}

/**
 * Run Debian's apache2 in the foreground (`-DFOREGROUND`, one process tree, its own ServerRoot in a temporary
 * directory) with the modules a2enmod would enable for the documented config, `Listen 127.0.0.1:<port>` and
 * `siteConfig` as its only site. Waits until it accepts connections; `port` defaults to a free one.
 */
export async function startApacheWithConfig(
  siteConfig: (port: number) => string,
  port?: number,
): Promise<RunningProxy> {
  const bin = requireBinary('apache2');
  const listenPort = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'stabilizer-apache-'));
  mkdirSync(join(dir, 'run'));
  const modules = ['mpm_event', 'authz_core', 'proxy', 'proxy_http', 'proxy_wstunnel'];
  const conf = `
ServerRoot ${dir}
ServerName 127.0.0.1
DefaultRuntimeDir ${dir}/run
PidFile ${dir}/run/apache2.pid
ErrorLog ${dir}/error.log
LogLevel warn
Mutex file:${dir}/run
${modules.map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`).join('\n')}
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
Listen 127.0.0.1:${listenPort}
${siteConfig(listenPort)}
`;
  writeFileSync(join(dir, 'apache2.conf'), conf);
  const child = spawn(bin, ['-d', dir, '-f', join(dir, 'apache2.conf'), '-DFOREGROUND'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // SIGTERM: the parent stops its children at once, closing every tunnel (SIGWINCH would wait for them).
  return superviseProxy('apache2', bin, child, listenPort, 'SIGTERM');
}

/**
 * Start a real Apache with the documented config (deploy/apache/websocket.conf) in front of `upstreamPort`, its
 * tunnel timeout scaled down to `timeoutS` seconds. `port`: listen on this one (to restart it where it was).
 */
export function startApache(upstreamPort: number, timeoutS: number, port?: number): Promise<RunningProxy> {
  return startApacheWithConfig((p) => documentedApacheConfig(p, upstreamPort, timeoutS), port);
}
