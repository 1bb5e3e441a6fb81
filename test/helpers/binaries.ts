import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * The real programs that some test files start themselves. Each is looked up where scripts/ensure-test-deps.mjs
 * (the `pretest` step of `npm test`, which installs what is missing) looks: the env override, else the Debian path.
 */
const BINARIES = {
  'redis-server': { env: 'REDIS_SERVER_PATH', fallback: 'redis-server', pkg: 'redis-server' },
  // Debian ships redis-cli in redis-tools (redis-server depends on it, but an override may point elsewhere).
  'redis-cli': { env: 'REDIS_CLI_PATH', fallback: 'redis-cli', pkg: 'redis-tools' },
  nginx: { env: 'NGINX_PATH', fallback: '/usr/sbin/nginx', pkg: 'nginx' },
  apache2: { env: 'APACHE2_PATH', fallback: '/usr/sbin/apache2', pkg: 'apache2' },
  chromium: { env: 'CHROMIUM_PATH', fallback: '/usr/bin/chromium', pkg: 'chromium' },
} as const;

export type TestBinary = keyof typeof BINARIES;

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path to spawn for `name`, or a thrown Error whose one line says what to install. Call it at the top of a test
 * file (or first thing in a harness), so that a missing program fails the file at set-up, never skips its tests and
 * never surfaces as an unhandled `spawn … ENOENT` in the middle of the run.
 */
export function requireBinary(name: TestBinary): string {
  const { env, fallback, pkg } = BINARIES[name];
  const path = process.env[env] || fallback;
  const found = path.includes('/')
    ? isExecutable(path)
    : (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isExecutable(join(dir, path)));
  if (found) return path;
  const where = process.env[env]
    ? `${env}=${path} is not an executable file`
    : `${path} not ${path.includes('/') ? 'found' : 'on PATH'}`;
  throw new Error(
    `${name} is missing (${where}): run \`npm test\` (its pretest step installs it) or: sudo apt-get install -y ${pkg}`,
  );
}
