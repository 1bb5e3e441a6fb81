#!/usr/bin/env node
// `npm test`'s pretest step: makes sure the real programs that the tests start themselves are installed.
//
// The tests run a private redis-server (and a Redis Cluster built with redis-cli), a real nginx and a real Apache
// httpd in front of the server and a headless Chromium. When one is missing and this process may install Debian
// packages (it runs as root, or `sudo -n` works), it runs `apt-get update` and
// `apt-get install -y --no-install-recommends <packages>`. When it may not (or
// STABILIZER_NO_INSTALL=1 is set), it exits 1 at once with one line that says what to install.
// test/helpers/binaries.ts checks the same paths when a test file starts, for runs that skip this step.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Each program: where the tests look for it (env override first), its Debian package, how to print its version. */
const DEPS = [
  {
    name: 'redis-server',
    env: 'REDIS_SERVER_PATH',
    fallback: 'redis-server',
    pkg: 'redis-server',
    version: ['--version'],
  },
  // The Redis Cluster tests create their cluster with `redis-cli --cluster create`; Debian ships it in redis-tools.
  {
    name: 'redis-cli',
    env: 'REDIS_CLI_PATH',
    fallback: 'redis-cli',
    pkg: 'redis-tools',
    version: ['--version'],
  },
  { name: 'nginx', env: 'NGINX_PATH', fallback: '/usr/sbin/nginx', pkg: 'nginx', version: ['-v'] },
  { name: 'apache2', env: 'APACHE2_PATH', fallback: '/usr/sbin/apache2', pkg: 'apache2', version: ['-v'] },
  {
    name: 'chromium',
    env: 'CHROMIUM_PATH',
    fallback: '/usr/bin/chromium',
    pkg: 'chromium',
    version: ['--version'],
  },
].map((d) => ({ ...d, path: process.env[d.env] || d.fallback }));

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** An absolute path as is; a bare name through PATH, as `spawn` would find it. */
function resolveBinary(path) {
  if (path.includes('/')) return isExecutable(path) ? path : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, path))) return join(dir, path);
  }
  return undefined;
}

const missingDeps = () => DEPS.filter((d) => resolveBinary(d.path) === undefined);

/** `[]` when we are root, `['sudo', '-n']` when passwordless sudo works, otherwise undefined. */
function privilegePrefix() {
  if (process.getuid?.() === 0) return [];
  const probe = spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' });
  return probe.status === 0 ? ['sudo', '-n'] : undefined;
}

function fail(line) {
  console.error(line);
  process.exit(1);
}

function run(prefix, args) {
  const [cmd, ...rest] = [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', ...args];
  const res = spawnSync(cmd, rest, { stdio: 'inherit' });
  if (res.status !== 0) {
    fail(`test deps: \`${args.join(' ')}\` failed (${res.error?.message ?? `exit ${res.status}`})`);
  }
}

const missing = missingDeps();
if (missing.length > 0) {
  const names = missing.map((d) => d.name).join(' ');
  const pkgs = missing.map((d) => d.pkg);
  const advice = `install with: sudo apt-get install -y ${pkgs.join(' ')}`;
  const overridden = missing.filter((d) => process.env[d.env]);
  if (overridden.length > 0) {
    fail(`missing: ${overridden.map((d) => `${d.env}=${d.path}`).join(' ')} is not an executable file`);
  }
  if (resolveBinary('apt-get') === undefined) fail(`missing: ${names} — install them (no apt-get here)`);
  const prefix = process.env.STABILIZER_NO_INSTALL === '1' ? undefined : privilegePrefix();
  if (prefix === undefined) fail(`missing: ${names} — ${advice}`);
  console.log(`test deps: installing ${pkgs.join(' ')} (apt-get)`);
  const lockWait = ['-o', 'DPkg::Lock::Timeout=300']; // a fresh VM may be running unattended-upgrades
  run(prefix, ['apt-get', ...lockWait, 'update', '-q']);
  run(prefix, ['apt-get', ...lockWait, 'install', '-y', '-q', '--no-install-recommends', ...pkgs]);
  const still = missingDeps();
  if (still.length > 0)
    fail(`missing after apt-get install: ${still.map((d) => `${d.name} (${d.path})`).join(' ')}`);
}

const versions = DEPS.map((d) => {
  const res = spawnSync(resolveBinary(d.path), d.version, { encoding: 'utf8', timeout: 30_000 });
  const out = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim().split('\n')[0];
  if (res.status !== 0)
    fail(`test deps: ${d.path} ${d.version.join(' ')} failed: ${out || res.error?.message}`);
  return out;
});
console.log(`test deps: ${versions.join(' | ')}`);
